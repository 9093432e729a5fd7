"""The one way a run starts: resolve/build the model → create the folder → warnings → launch.

The CLI (`start`, `run`, `resume`, `quickstart`, `demo`) and every wizard screen call
these two functions; nothing else calls `create_run` + `launch` itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.models import tiny
from sage_ft_tui.engine.paths import CACHE_ENV, HOME_ENV, check_writable_dir, runs_home
from sage_ft_tui.engine.runs.control import check_can_train, launch, shared_gpu_warning
from sage_ft_tui.engine.runs.create import config_warnings, create_run, machine_preflight
from sage_ft_tui.engine.runs.state import load_config


@dataclass
class Started:
    run: Path
    pid: Optional[int] = None  # None when the run was only created
    warnings: list[str] = field(default_factory=list)


def _ensure_model(cfg: RunConfig) -> None:
    """Build tiny-demo if it is the base and not cached yet (in a child process when this
    process has no torch, so the TUI stays torch-free)."""
    if tiny.is_tiny(cfg.model.name):
        if not (tiny.tiny_model_dir() / "config.json").is_file():
            # one line, not a child's traceback
            check_writable_dir(tiny.tiny_model_dir().parent, "the cache", CACHE_ENV)
        tiny.ensure_tiny_model()


def launch_run(run: Path, *, resume: bool = False, force: bool = False) -> Started:
    """Launch an existing run's detached worker, with the warnings the user must see."""
    run = Path(run)
    check_can_train(run, resume=resume, force=force)  # before reading anything of a folder not ours
    cfg = load_config(run)
    machine_preflight(cfg, planned_elsewhere=True)  # it may have been created for another machine
    _ensure_model(cfg)
    warnings = [w for w in (*config_warnings(cfg), shared_gpu_warning(run)) if w]
    pid = launch(run, resume=resume, force=force)
    return Started(run, pid, warnings)


def start_run(
    cfg: RunConfig, *, home: Optional[Path] = None, launch: bool = True, unique: bool = False, here: bool = True
) -> Started:
    """Create a run from `cfg` (data prepared and checked) and, by default, launch it.
    `here=False` (only with launch=False): planned for another machine's GPUs."""
    check_writable_dir(Path(home) if home else runs_home(), "the runs home", HOME_ENV)  # before the model is built
    _ensure_model(cfg)
    run = create_run(cfg, home, unique=unique, here=here or launch)
    if not launch:
        return Started(run, warnings=config_warnings(cfg))
    return launch_run(run)


__all__ = ["Started", "start_run", "launch_run"]
