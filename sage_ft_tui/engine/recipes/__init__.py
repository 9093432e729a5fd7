"""Ready-made runs: quickstart (data → settings for this machine), the code quickstart, and the demo."""
