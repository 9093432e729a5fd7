"""Evaluation: base vs tuned on held-out answers (loss and perplexity on the answer tokens
only, generation scored against the references, optional judging), and run comparison.

Nothing here imports torch at module level: the TUI imports the light readers
(`report.read_report`, `compare`), the CLI subprocess does the heavy work.
"""
