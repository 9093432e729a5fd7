"""quickstart: data (or a repository) → settings for this hardware → a ready run config."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.config.presets import apply_preset
from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.data.tasks import TASKS
from sage_ft_tui.engine.errors import SageError

DEFAULT_MODEL = "Qwen/Qwen2.5-Coder-1.5B-Instruct"


def quickstart_config(
    task: str,
    *,
    data: Optional[list[str]] = None,
    model: Optional[str] = None,
    name: Optional[str] = None,
    preset: Optional[str] = None,
    repo: Optional[Path] = None,
    hardware=None,
    gpus: Optional[int] = None,
) -> RunConfig:
    """The run config; `hardware`/`gpus`: what the preset plans for (default: this machine)."""
    if task not in TASKS:
        raise SageError(f"unknown task {task!r}", hint=f"choose one of: {', '.join(TASKS)}")
    model = model or DEFAULT_MODEL
    if task == "code":
        from sage_ft_tui.engine.recipes.code import code_config

        cfg = code_config(repo, model, name)
    else:
        if not data:
            raise SageError(
                f"quickstart {task} needs --data FILE", hint="e.g. sage-ft-tui quickstart qa --data my_qa.jsonl"
            )
        cfg = RunConfig.from_dict(
            {
                "task": task,
                "name": name,
                "model": {"name": model},
                "data": {"paths": [str(Path(d).expanduser().resolve()) for d in data], "validation_split": 0.05},
            },
            source="quickstart",
        )
    return apply_preset(cfg, preset or "auto", hardware, gpus=gpus)
