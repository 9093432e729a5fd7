"""The code task: a repository scanned into a text dataset (secrets and generated files skipped)."""
