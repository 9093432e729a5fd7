"""Hardware presets: the seed's `PresetConfigs` (fixed values per GPU class; `auto` fits this
machine, config/hardware_fit.py), the keys a preset owns and the values one gives a run
(`preset_values`, which config/build.py lays under the user's; `build.apply_preset` is the
Python API's way to it).

"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional, Union

from sage_ft_tui.engine.config.fixed_presets import FixedPresets
from sage_ft_tui.engine.config.hardware_fit import HardwareFit, auto_preset, fit_hardware, snapshot_of
from sage_ft_tui.engine.config.legacy import TrainingConfig
from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.config.sections import FIXED_PRESETS, PRESET_NAMES
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.hardware.readings import Backend, Snapshot
from sage_ft_tui.engine.methods.registry import sequences_per_sample


class PresetConfigs(FixedPresets):
    """The seed's presets (values kept), plus h100 and cpu; `auto` fits this machine (hardware_fit)."""

    @staticmethod
    def auto(model: str, hardware=None, **kw) -> TrainingConfig:
        return auto_preset(model, hardware, **kw)

    NAMES = FIXED_PRESETS

    @classmethod
    def get(cls, name: str, **kw) -> TrainingConfig:
        if name not in PRESET_NAMES:
            raise SageError(f"unknown preset {name!r}", hint=f"choose one of: {', '.join(PRESET_NAMES)}")
        return getattr(cls, name)(**kw)


# The keys a preset owns: all it ever sets; every other key is the user's or the default.
# `minimal` also owns lora.r / lora.alpha (its point is the least memory), and auto planned
# over several GPUs training.gpus / training.sharding.
PRESET_KEYS: tuple[str, ...] = (
    "training.micro_batch_size",
    "training.grad_accumulation",
    "training.max_length",
    "training.gradient_checkpointing",
    "training.precision",
    "model.quantization",
    "training.optimizer",
)


@dataclass
class PresetValues:
    """What a preset sets (dotted key -> value, only keys it owns) and, for auto, its hardware fit."""

    name: str
    values: dict[str, Any]
    fit: Optional[HardwareFit] = None


def _owned(tc: TrainingConfig) -> dict[str, Any]:
    rc = tc.to_run_config()
    return {
        "training.micro_batch_size": rc.training.micro_batch_size,
        "training.grad_accumulation": rc.training.grad_accumulation,
        "training.max_length": rc.training.max_length,
        "training.gradient_checkpointing": rc.training.gradient_checkpointing,
        "training.precision": rc.training.precision,
        "model.quantization": rc.model.quantization,
        "training.optimizer": rc.training.optimizer,
    }


def preset_values(
    name: str,
    rc: RunConfig,
    hardware: Union[Snapshot, Backend, None] = None,
    *,
    gpus: Optional[int] = None,
    keep: Union[set[str], frozenset[str], tuple[str, ...]] = (),
) -> PresetValues:
    """The values preset `name` gives the run `rc` describes (its model, task, LoRA rank, GPUs).
    `keep`: the keys the user set; the preset's values for them are returned all the same (the
    caller's order puts the user's over them) but auto plans around a kept max length, and a
    preset whose every key is kept is not computed at all (auto: no probe). `hardware`: what auto
    sizes for (default this machine; engine/hardware/gpus.py: a target); `gpus`: how many of
    its GPUs (default: rc's training.gpus, else one)."""
    if name not in PRESET_NAMES:
        raise SageError(f"unknown preset {name!r}", hint=f"choose one of: {', '.join(PRESET_NAMES)}")
    if gpus is None and all(k in keep for k in PRESET_KEYS):
        return PresetValues(name, {})
    if name != "auto":
        tc = PresetConfigs.get(name, model_name=rc.model.name, task=rc.task)
        values = _owned(tc)
        if name == "minimal":
            values.update({"lora.r": tc.lora.r, "lora.alpha": tc.lora.lora_alpha})
        return PresetValues(name, values)
    snap, n = snapshot_of(hardware), gpus
    if gpus is None and rc.training.gpus:  # the GPUs the run already names
        picked = [g for g in snap.gpus if g.index in set(rc.training.gpus)]
        snap, n = (dataclasses.replace(snap, gpus=picked), len(picked)) if picked else (snap, None)
    wanted = {"max_length": rc.training.max_length} if "training.max_length" in keep else {}
    fit = fit_hardware(rc.model.name, snap, gpus=n, sequences=sequences_per_sample(rc.task), lora_r=rc.lora.r, **wanted)
    values = _owned(fit.config)
    if fit.gpus:
        values.update({"training.gpus": fit.gpus, "training.sharding": fit.sharding})
    return PresetValues(name, values, fit)


def user_keys(rc: RunConfig) -> set[str]:
    """The dotted keys `rc` was given (pydantic's fields set, section by section), not defaults."""
    from pydantic import BaseModel

    out: set[str] = set()

    def walk(m: BaseModel, prefix: str) -> None:
        for name in m.model_fields_set:
            v = getattr(m, name)
            if isinstance(v, BaseModel):
                walk(v, f"{prefix}{name}.")
            else:
                out.add(f"{prefix}{name}")

    walk(rc, "")
    return out
