"""The `sage-ft-tui` command line (Typer), one module per command family; `app.main` is the entry point."""
