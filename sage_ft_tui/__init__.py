"""sage-ft-tui: LoRA/QLoRA fine-tuning from a terminal wizard or a headless CLI.

The public API is loaded lazily so `import sage_ft_tui` stays light (no torch)."""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "LoRATrainer": ("sage_ft_tui.engine.train.trainer", "LoRATrainer"),
    "TrainingConfig": ("sage_ft_tui.engine.config.legacy", "TrainingConfig"),
    "LoRAConfig": ("sage_ft_tui.engine.config.legacy", "LoRAConfig"),
    "PresetConfigs": ("sage_ft_tui.engine.config.presets", "PresetConfigs"),
    "RunConfig": ("sage_ft_tui.engine.config.schema", "RunConfig"),
    "prepare_dataset": ("sage_ft_tui.engine.data.trainer_data", "prepare_dataset"),
    "load_training_data": ("sage_ft_tui.engine.data.load", "load_training_data"),
    "SageError": ("sage_ft_tui.engine.errors", "SageError"),
}

__all__ = list(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sage_ft_tui' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
