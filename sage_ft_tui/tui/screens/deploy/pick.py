"""Which run a deploy screen opens when none is given (the newest that has what it needs),
and how the deploy screens name what a server serves."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.layout import RunLayout


def pick_run(need: str = "adapter") -> Optional[str]:
    """The newest run that has what a screen needs (adapter / merged / served), or None."""
    from sage_ft_tui.engine.paths import runs_home

    home = runs_home()
    if not home.is_dir():
        return None
    marks = {
        "adapter": ("adapter", "checkpoints"),
        "merged": ("merged", "adapter"),
        "served": ("serve_info", "merged"),
    }[need]
    for mark in marks:
        runs = [p for p in home.iterdir() if getattr(RunLayout(p), mark).exists() and RunLayout(p).config.exists()]
        if runs:
            return str(max(runs, key=lambda p: getattr(RunLayout(p), mark).stat().st_mtime))
    return None


def no_run_error(what: str) -> SageError:
    return SageError(f"no run to {what} yet", hint="train one first (n: new fine-tune, d: demo on Home)")


def served_name(model: str, run_dir: Optional[Path]) -> str:
    """The served model as a user knows it: the run's name for our own merged folder or
    adapter, else the model id (an absolute path is shortened to its last part)."""
    model = str(model or "")
    if run_dir is not None and model.startswith(str(run_dir)):
        return run_dir.name
    return Path(model).name if "/" in model and Path(model).is_absolute() else model
