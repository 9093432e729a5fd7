"""The headless core. Never imports textual; modules import torch only inside functions
that need it, so the TUI can use config, events, runs and hardware without torch."""
