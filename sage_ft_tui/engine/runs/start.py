"""The one way a run starts: resolve/build the model → create the folder → warnings → launch.

The CLI (`start`, `run`, `resume`, `quickstart`, `demo`) and every wizard screen call
these two functions; nothing else calls `create_run` + `launch` itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.config.schema import RunConfig


@dataclass
class Started:
    run: Path
    pid: Optional[int] = None  # None when the run was only created
    warnings: list[str] = field(default_factory=list)


def _ensure_model(cfg: RunConfig) -> None:
    """Build tiny-demo if it is the base and not cached yet (in a child process when this
    process has no torch, so the TUI stays torch-free)."""
    from sage_ft_tui.engine.models.tiny import ensure_tiny_model, is_tiny

    if is_tiny(cfg.model.name):
        ensure_tiny_model()


def launch_run(run: Path, *, resume: bool = False) -> Started:
    """Launch an existing run's detached worker, with the warnings the user must see."""
    from sage_ft_tui.engine.runs.manage import launch, load_config, shared_gpu_warning

    run = Path(run)
    _ensure_model(load_config(run))
    warnings = [w for w in (shared_gpu_warning(run),) if w]
    pid = launch(run, resume=resume)
    return Started(run, pid, warnings)


def start_run(cfg: RunConfig, *, home: Optional[Path] = None, launch: bool = True, unique: bool = False) -> Started:
    """Create a run from `cfg` (data prepared and checked) and, by default, launch it."""
    from sage_ft_tui.engine.runs.manage import create_run

    _ensure_model(cfg)
    run = create_run(cfg, home, unique=unique)
    if not launch:
        return Started(run)
    return launch_run(run)


__all__ = ["Started", "start_run", "launch_run"]
