"""Base models: the catalogue the user picks from, turning a reference into a local folder, and the built-in tiny-demo model."""
