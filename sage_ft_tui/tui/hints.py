"""The way forward in the app's own words: an engine hint written for the command line
(`--task preference`, `sage-ft-tui serve RUN`) is replaced, where the TUI shows it, by the
screen and key that do the same. Keyed by `SageError.code`; errors without one keep their hint."""

from __future__ import annotations

APP_HINTS = {
    "not_served": "ctrl+g starts the server (then ctrl+t on Serve comes back here)",
    "server_gone": "ctrl+g starts the server again (then ctrl+t on Serve comes back here)",
    "server_starting": "wait until the Serve screen says ready",
    "preference": "choose the Preference task on the Task step (escape goes back), or give one answer per row",
    "no_eval_split": "Start a new fine-tune with an Eval share above 0 (Hardware step); data of 60 rows or more "
    "holds out 5% by default.",
}


def app_hint(err) -> str:
    """The hint to show for `err` inside the app."""
    return APP_HINTS.get(getattr(err, "code", "") or "", getattr(err, "hint", "") or "")
