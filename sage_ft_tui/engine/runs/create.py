"""Making a run folder: its name, the preflight checks that refuse what cannot run, the
marker that makes it ours, config.yaml, the prepared data and the first status.

`engine/runs/start.py` is the one way a run starts; it calls `create_run` here."""

from __future__ import annotations

import os
import shutil
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Optional

from sage_ft_tui import __version__
from sage_ft_tui.engine.config.build import ignored_settings
from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.data.prepare import prepare_run_data
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import atomic_write_json
from sage_ft_tui.engine.hardware.probe import get_backend
from sage_ft_tui.engine.methods.registry import task_spec
from sage_ft_tui.engine.models.modules import check_target_modules, local_model_dir
from sage_ft_tui.engine.offline import apply_offline_env
from sage_ft_tui.engine.paths import (
    HOME_ENV,
    check_writable_dir,
    permission_error,
    runs_home,
    safe_name,
    validate_run_name,
)
from sage_ft_tui.engine.runs.chain import adapter_dir
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.runs.state import write_status
from sage_ft_tui.engine.train.attention import start_note


def default_run_name(cfg: RunConfig) -> str:
    """task-model-timestamp; the model part comes from a folder name the user did not type
    as a run name (`My Model (v2)`), so it is made safe, never refused."""
    model = safe_name(Path(cfg.model.name.rstrip("/")).name)
    return f"{cfg.task}-{model}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def new_run_dir(cfg: RunConfig, home: Optional[Path] = None, *, unique: bool = False) -> Path:
    """Make the folder for a new run; never reuses or overwrites one. A taken explicit
    name is an error, unless `unique` (then, like a default name, it gets a -2, -3...)."""
    home = check_writable_dir(Path(home) if home else runs_home(), "the runs home", HOME_ENV)
    name = validate_run_name(cfg.name or default_run_name(cfg))
    run = home / name
    if run.exists():
        if cfg.name and not unique:
            raise SageError(
                f"a run named {name!r} already exists in {home}",
                hint="choose another --name, or `sage-ft-tui clean` it first",
            )
        for i in range(2, 1000):
            run = home / f"{name}-{i}"
            if not run.exists():
                break
    try:
        run.mkdir(parents=True, exist_ok=False)
    except PermissionError:
        raise permission_error(run.parent, "the runs home", HOME_ENV) from None
    except OSError as e:
        raise SageError(
            f"cannot create the run folder {run}: {e.strerror}",
            hint="check SAGE_FT_HOME and its permissions",
            kind="disk",
        ) from None
    os.chmod(run, 0o750)
    write_marker(run)
    return run


def write_marker(run: Path) -> None:
    """Mark a folder the tool created as ours (see layout.MARKER)."""

    atomic_write_json(RunLayout(run).marker, {"tool": "sage-ft-tui", "version": __version__, "created": time.time()})


def create_run(
    cfg: RunConfig, home: Optional[Path] = None, *, prepare: bool = True, unique: bool = False, here: bool = True
) -> Path:
    """A run folder with config.yaml and, by default, the prepared data. `here=False`: the
    run is planned for another machine (--gpu/--vram/--gpus), whose hardware is checked when
    it is launched there."""

    apply_offline_env(cfg)  # data preparation loads the tokenizer here: local stays local
    preflight(cfg)
    if here:
        machine_preflight(cfg)
    run = new_run_dir(cfg, home, unique=unique)
    try:
        cfg = cfg.model_copy(update={"name": run.name})
        if prepare:
            prepare_run_data(cfg, run)
        cfg.save(RunLayout(run).config)
        extra = {"trust_remote_code": True} if cfg.model.trust_remote_code else {}
        write_status(run, state="created", created=time.time(), host=socket.gethostname(), **extra)
    except BaseException:
        # A refused run leaves nothing behind (it was ours, made a moment ago).

        shutil.rmtree(run, ignore_errors=True)
        raise
    return run


def config_warnings(cfg: RunConfig) -> list[str]:
    """What the user must be told before the run trains (printed by `start`/`run`, shown by the
    wizard): code that will run, and settings this run will not read (config.build)."""

    out = ignored_settings(cfg)
    if cfg.model.trust_remote_code:
        out.append(
            f"warning: model.trust_remote_code is true: the Python code in {cfg.model.name} runs with your "
            "permissions (set it to false unless you trust that folder's code)"
        )

    mdir = local_model_dir(cfg.model.name, cfg.model.revision)
    note = start_note(cfg.model.attn_implementation, mdir, cfg.model.name) if mdir is not None else None
    return out + ([note] if note else [])


def preflight(cfg: RunConfig) -> None:
    """Refuse settings this machine cannot run, before anything is written."""
    if cfg.model.init_adapter:
        adapter_dir(cfg.model.init_adapter)
    task_spec(cfg.task).preflight(cfg)  # the task's own checks (grpo: its reward files)
    if isinstance(cfg.lora.target_modules, list):
        mdir = local_model_dir(cfg.model.name, cfg.model.revision)
        if mdir is not None:
            check_target_modules(mdir, cfg.lora.target_modules, cfg.model.trust_remote_code, cfg.model.name)


def machine_preflight(cfg: RunConfig, *, planned_elsewhere: bool = False) -> None:
    """Refuse what this machine's hardware cannot run (checked when a run is created for
    this machine, and again when it is launched: a run planned for another machine is
    checked where it trains)."""
    if cfg.model.quantization != "none" or cfg.training.gpus or cfg.training.precision == "fp16":
        gpus = get_backend().snapshot().gpus
        if cfg.training.precision == "fp16" and not gpus:
            raise SageError(
                "training.precision fp16 needs an NVIDIA GPU, and this machine has none",
                hint=_ELSEWHERE
                if planned_elsewhere
                else "use --precision auto (or fp32, or bf16) to train here on the CPU, or create the run on the GPU "
                "server",
            )
        if cfg.model.quantization != "none" and not gpus:
            raise SageError(
                f"model.quantization {cfg.model.quantization} needs an NVIDIA GPU, and this machine has none",
                hint=_ELSEWHERE
                if planned_elsewhere
                else "use --set model.quantization=none here, or create the run on the GPU server",
            )
        have = {g.index for g in gpus}
        missing = [g for g in cfg.training.gpus or [] if g not in have]
        if missing:
            raise SageError(
                f"training.gpus: GPU {missing[0]} does not exist here (found: {sorted(have) or 'none'})",
                hint=_ELSEWHERE if planned_elsewhere else "pick GPUs from `sage-ft-tui doctor`",
            )


_ELSEWHERE = (
    "a run planned for another machine (--gpu/--gpus) trains there: copy its folder and `sage-ft-tui run` it; "
    "to train here, start a run without those flags"
)
