"""<run>/serve.json: what describes a run's server while it runs (mode 600: it may hold the
API key), whether that server is alive, and its printable form."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import atomic_write_json, read_json
from sage_ft_tui.engine.proc import pid_alive
from sage_ft_tui.engine.runs.layout import RunLayout


def read_serve(run: Path) -> Optional[dict]:
    info = read_json(RunLayout(run).serve_info, None)
    return info if isinstance(info, dict) else None


def server_alive(info: Optional[dict]) -> bool:
    if not info:
        return False
    return pid_alive(info.get("pid"), info.get("create_time"))


def write_serve(run: Path, info: dict) -> None:
    atomic_write_json(RunLayout(run).serve_info, info, mode=0o600)  # may hold the API key


def public(info: dict) -> dict:
    """serve.json without secrets, for printing."""
    out = {k: v for k, v in info.items() if k != "api_key"}
    out["api_key"] = "set" if info.get("api_key") else None
    return out


def refuse_if_served(run: Path) -> None:
    old = read_serve(run)
    if old and server_alive(old):
        raise SageError(
            f"run {run.name} is already being served at {old.get('url')} (pid {old.get('pid')})",
            kind="serve",
            hint=f"use it, or stop it first: `sage-ft-tui serve --stop {run.name}`",
        )
    if old:
        (RunLayout(run).serve_info).unlink(missing_ok=True)  # stale: its server is gone
