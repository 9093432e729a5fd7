"""Data: reading files row by row, the formats, the task rules, secrets, chat-template rendering, and the prepared dataset of a run."""
