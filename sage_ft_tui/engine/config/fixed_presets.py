"""The fixed hardware presets (the seed's values, plus h100 and cpu) as the legacy API's
TrainingConfig; `PresetConfigs` (presets.py) adds `auto`, which fits the machine."""

from __future__ import annotations

from sage_ft_tui.engine.config.legacy import LoRAConfig, TrainingConfig
from sage_ft_tui.engine.config.sections import FIXED_PRESETS
from sage_ft_tui.engine.errors import SageError


class FixedPresets:
    """The seed's presets (values kept), plus h100 and cpu."""

    @staticmethod
    def rtx_3060(**kw) -> TrainingConfig:
        return TrainingConfig(
            preset="rtx_3060",
            load_in_8bit=True,
            max_length=1024,
            batch_size=1,
            gradient_accumulation_steps=16,
            gradient_checkpointing=True,
            optim="paged_adamw_8bit",
            fp16=True,
            **kw,
        )

    @staticmethod
    def rtx_4090(**kw) -> TrainingConfig:
        return TrainingConfig(
            preset="rtx_4090",
            max_length=2048,
            batch_size=4,
            gradient_accumulation_steps=4,
            gradient_checkpointing=True,
            bf16=True,
            **kw,
        )

    @staticmethod
    def a100(**kw) -> TrainingConfig:
        return TrainingConfig(
            preset="a100",
            max_length=4096,
            batch_size=8,
            gradient_accumulation_steps=2,
            gradient_checkpointing=False,
            bf16=True,
            **kw,
        )

    @staticmethod
    def h100(**kw) -> TrainingConfig:
        return TrainingConfig(
            preset="h100",
            max_length=4096,
            batch_size=16,
            gradient_accumulation_steps=1,
            gradient_checkpointing=False,
            bf16=True,
            optim="adamw_torch_fused",
            **kw,
        )

    @staticmethod
    def minimal(**kw) -> TrainingConfig:
        return TrainingConfig(
            preset="minimal",
            load_in_4bit=True,
            max_length=512,
            batch_size=1,
            gradient_accumulation_steps=32,
            gradient_checkpointing=True,
            fp16=True,
            optim="paged_adamw_8bit",
            lora=LoRAConfig(r=4, lora_alpha=8),
            **kw,
        )

    @staticmethod
    def cpu(**kw) -> TrainingConfig:
        return TrainingConfig(
            preset="cpu",
            max_length=512,
            batch_size=4,
            gradient_accumulation_steps=1,
            gradient_checkpointing=False,
            learning_rate=2e-4,
            **kw,
        )

    NAMES = FIXED_PRESETS

    @classmethod
    def get(cls, name: str, **kw) -> TrainingConfig:
        if name not in FIXED_PRESETS:
            raise SageError(f"unknown preset {name!r}", hint=f"choose one of: {', '.join(FIXED_PRESETS)}")
        return getattr(cls, name)(**kw)
