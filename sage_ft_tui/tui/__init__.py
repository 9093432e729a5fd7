"""The Textual app: the App (app.py, app.tcss), the wizard flow and routes, screens and widgets. Never imports the ML stack."""
