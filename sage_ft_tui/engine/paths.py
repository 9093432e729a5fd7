"""Where runs and caches live, and safe run names."""

from __future__ import annotations

import os
import re
from pathlib import Path

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.layout import RunLayout

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def runs_home() -> Path:
    env = os.environ.get("SAGE_FT_HOME")
    return Path(env).expanduser() if env else Path.home() / ".sage" / "finetune_output"


def cache_home() -> Path:
    env = os.environ.get("SAGE_FT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "sage-ft-tui"


def validate_run_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name or "") or ".." in name:  # fullmatch: `$` lets a trailing newline through
        raise SageError(
            f"invalid run name {name!r}",
            hint="use letters, digits, '.', '_' and '-' (no '/', no '..', at most 100 characters)",
            kind="config",
        )
    return name


def resolve_run(ref: str | os.PathLike) -> Path:
    """A run given by name (under runs_home) or by path; it must exist."""
    p = Path(ref).expanduser()
    candidates = (
        [p] if (p.is_absolute() or os.sep in str(ref) or str(ref).startswith(".")) else [runs_home() / str(ref), p]
    )
    for c in candidates:
        if (RunLayout(c).config).is_file() or (RunLayout(c).status).is_file():
            return c.resolve()
    raise SageError(
        f"no run {str(ref)!r}",
        hint=f"see `sage-ft-tui list` (runs live in {runs_home()})",
        kind="config",
    )
