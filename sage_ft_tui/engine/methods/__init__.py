"""Training tasks and preference methods, one descriptor each (spec.py), found by registry.py."""
