"""Where runs and caches live, safe run names, and which folders are ours to touch."""

from __future__ import annotations

import os
import re
from pathlib import Path

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.layout import MARKER, RunLayout

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
HOME_ENV = "SAGE_FT_HOME"
CACHE_ENV = "SAGE_FT_CACHE"
LOGS_ENV = "SAGE_FT_LOGS"
TUI_ERRORS_LOG = "tui-errors.log"


def runs_home() -> Path:
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".sage" / "finetune_output"


def cache_home() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "sage-ft-tui"


def logs_home() -> Path:
    """Where the tool's own logs go (not a run's): $SAGE_FT_LOGS, else the cache home.

    Its own variable, because the cache also holds the built tiny model, which tests share
    while each test's logs stay in its tmp folder (tests/conftest.py)."""
    env = os.environ.get(LOGS_ENV)
    return Path(env).expanduser() if env else cache_home()


def tui_errors_log() -> Path:
    """The traceback of every unexpected exception in the TUI, appended (the screen shows one line)."""
    return logs_home() / TUI_ERRORS_LOG


def validate_run_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name or "") or ".." in name:  # fullmatch: `$` lets a trailing newline through
        raise SageError(
            f"invalid run name {name!r}",
            hint="use letters, digits, '.', '_' and '-' (no '/', no '..', at most 100 characters)",
            kind="config",
        )
    return name


def safe_name(text: str, limit: int = 40) -> str:
    """A run-name fragment made from something the user did not type as a name (a model
    folder such as `My Model (v2)`): odd characters become '-', never an error."""
    s = re.sub(r"[^a-z0-9._-]+", "-", text.lower().replace("_", "-"))
    s = re.sub(r"-{2,}", "-", s.replace("..", "."))[:limit].strip(".-")
    return s or "model"


def permission_error(path: os.PathLike | str, what: str, env: str = "") -> SageError:
    """The one line for a path we may not read or write."""
    where = f", or set {env} to a folder you own" if env else ""
    return SageError(
        f"permission denied: cannot use {what} {path}",
        hint=f"fix its owner/permissions (e.g. chmod u+rwx {path}){where}",
        kind="disk",
    )


def check_writable_dir(path: Path, what: str, env: str = "") -> Path:
    """Make `path` (a folder we write into) if needed; a permission problem is one line naming it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise permission_error(path, what, env) from None
    except FileExistsError:
        raise SageError(
            f"{what} {path} is a file, not a folder", hint=f"move it away or set {env}", kind="disk"
        ) from None
    except OSError as e:
        raise SageError(f"cannot create {what} {path}: {e.strerror}", hint=f"set {env}", kind="disk") from None
    if not os.access(path, os.W_OK | os.X_OK | os.R_OK):
        raise permission_error(path, what, env)
    return path


def list_dir(path: Path, what: str, env: str = "") -> list[Path]:
    """The entries of a folder ([] when it does not exist); unreadable → one line naming it."""
    try:
        return list(Path(path).iterdir())
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise SageError(f"{what} {path} is a file, not a folder", hint=f"set {env} to a folder", kind="disk") from None
    except PermissionError:
        raise permission_error(path, what, env) from None


def _inside(p: Path, home: Path) -> bool:
    try:
        p.resolve().relative_to(home.resolve())
    except (ValueError, OSError):
        return False
    return True


def not_ours(p: Path, action: str) -> SageError:
    """Why a folder that is not a run we made is refused (what it is, and why)."""
    if not p.exists():
        what = "does not exist"
    elif not p.is_dir():
        what = "is a file, not a run folder"
    elif RunLayout(p).looks_like_run():
        what = f"looks like a run but has no {MARKER} marker, so sage-ft-tui did not make it"
    else:
        what = f"is not a run folder (no {MARKER} marker)"
    return SageError(
        f"{p} {what}; refusing to {action}",
        hint=f"only runs sage-ft-tui created are touched; see `sage-ft-tui list` (runs live in {runs_home()})",
        kind="config",
    )


def resolve_run(ref: str | os.PathLike, action: str = "use it", *, home_only: bool = False) -> Path:
    """A run we made, given by name (under runs_home, never ./NAME) or by path.

    `home_only`: the run must also lie inside the runs home (for commands that delete)."""
    text = str(ref)
    p = Path(ref).expanduser()
    by_path = p.is_absolute() or os.sep in text or text.startswith(".")
    home = runs_home()
    c = p if by_path else home / text
    if not by_path and (not text or ".." in text):
        raise SageError(f"invalid run name {text!r}", hint="give a run name from `sage-ft-tui list`, or a folder path")
    if not c.exists() and not c.is_symlink():
        also = (
            f" (a folder ./{text} is not looked at; give it as ./{text})"
            if (not by_path and Path(text).exists())
            else ""
        )
        raise SageError(
            f"no run {text!r}{also}",
            hint=f"see `sage-ft-tui list` (runs live in {home})",
            kind="config",
        )
    if home_only and (c.is_symlink() or not _inside(c, home)):
        raise SageError(
            f"{c} is not inside the runs home {home}"
            + (" (it is a symlink)" if c.is_symlink() else "")
            + f"; refusing to {action}",
            hint=f"only runs under {HOME_ENV} ({home}) are deleted; remove other folders yourself",
            kind="config",
        )
    try:
        ours = RunLayout(c).is_ours()
    except PermissionError:
        raise permission_error(c, "the run folder") from None
    if not ours:
        raise not_ours(c, action)
    return c.resolve()
