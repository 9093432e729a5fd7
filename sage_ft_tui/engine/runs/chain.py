"""Starting a run from a previous run's adapter (`--from-run`, model.init_adapter):
SFT → DPO in one command, or more SFT on top of an adapter. Torch-free."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.paths import resolve_run
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.runs.state import derive_state, load_config, no_adapter_hint

ADAPTER_CONFIG = "adapter_config.json"  # peft's own file name, not a run-folder name


def adapter_dir(ref: str) -> Path:
    """model.init_adapter → the folder holding the adapter (a run folder means its adapter)."""
    p = Path(ref).expanduser()
    for cand in (p, RunLayout(p).adapter):
        if (cand / ADAPTER_CONFIG).is_file():
            return cand.resolve()
    raise SageError(
        f"model.init_adapter {ref}: no LoRA adapter there (no {ADAPTER_CONFIG})",
        hint="give a finished run (it has an adapter/ folder) or an adapter folder",
        kind="config",
    )


def from_run(ref: str, model: Optional[str] = None) -> tuple[str, str]:
    """(adapter folder, base model) of the finished run `ref` (a name or a folder)."""
    run = resolve_run(ref, "continue from it")
    if not (RunLayout(run).adapter / ADAPTER_CONFIG).is_file():
        state = derive_state(run)[0]
        gone = " (its adapter/ folder is gone)" if state == "completed" else " yet"
        raise SageError(f"run {run.name} has no adapter{gone}", hint=no_adapter_hint(run), kind="config")
    base = load_config(run).model.name
    if model and model != base:
        raise SageError(
            f"--from-run {run.name} was trained on {base}, not {model}",
            hint=f"leave --model out (it follows the run) or use --model {base}",
            kind="config",
        )
    return str(RunLayout(run).adapter.resolve()), base
