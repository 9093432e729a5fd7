"""Base vs tuned, side by side: two answers to one prompt, from
`sage-ft-tui eval RUN --ask TEXT --json` in a subprocess (the adapter is attached to the
base in that process; nothing is served or merged, and this process never imports torch)."""

from __future__ import annotations

import sys
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from sage_ft_tui.engine.errors import SageError


def ask_command(run: str, question: str, max_new_tokens: int = 128) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sage_ft_tui",
        "eval",
        run,
        "--ask",
        question,
        "--json",
        "--max-new-tokens",
        str(max_new_tokens),
    ]


def ask_both_job(run: str, question: str, max_new_tokens: int = 128) -> tuple[Optional[dict], Optional[SageError]]:
    """Blocking (call it from a thread worker): the two answers, or the error to show."""
    from sage_ft_tui.engine.jobs import run_job

    out = run_job(ask_command(run, question, max_new_tokens), job="eval")
    return (out.result or {}).get("answers"), out.error


class SideBySide(Horizontal):
    """Two columns: base (left) and tuned (right)."""

    DEFAULT_CSS = """
    SideBySide { height: auto; margin: 0 0 1 0; }
    SideBySide > Static { width: 1fr; height: auto; padding: 0 1; border: round $panel; }
    """

    def __init__(self, answers: dict, **kw):
        super().__init__(**kw)
        self.answers = answers

    def compose(self) -> ComposeResult:
        for side, style in (("base", "#e5c07b"), ("tuned", "bold #98c379")):
            t = Text()
            t.append(f"{side}\n", style=style)
            t.append(self.answers.get(side) or "(empty)")
            yield Static(t, classes=f"side {side}")
