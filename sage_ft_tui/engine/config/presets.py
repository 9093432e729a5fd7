"""Hardware presets: the seed's `PresetConfigs` (fixed values per GPU class), `apply_preset`
(overlay one onto a RunConfig) and `PresetConfigs.auto(model, hardware)`: settings that fit
this machine, and why.

On a GPU: the largest max length (up to the wanted one) and then the largest micro-batch
whose estimate stays under 90% of the first visible GPU's free memory; quantization only
when 16-bit weights cannot fit (8-bit, then 4-bit); gradient checkpointing only when it
buys a micro-batch at least twice as large; bf16 where the GPU supports it, else fp16.
Without a GPU: the cpu preset. `explain_choice` gives the lines the wizard's hardware
screen and `quickstart` show. Never imports torch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from sage_ft_tui.engine.config.schema import QUANTIZATIONS, RunConfig
from sage_ft_tui.engine.config.seed import LoRAConfig, TrainingConfig
from sage_ft_tui.engine.data.tasks import sequences_per_sample
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.hardware.estimate import GiB, MemoryEstimate, estimate_memory, model_shape
from sage_ft_tui.engine.hardware.probe import GPU, Backend, Snapshot, get_backend
from sage_ft_tui.engine.models.tiny import TINY_NAME

BUDGET = 0.9
LENGTHS = (8192, 4096, 2048, 1024, 512, 256)
BATCHES = (16, 8, 4, 2, 1)
EFFECTIVE_BATCH = 16
DEFAULT_MAX_LENGTH = 2048
MAX_TOKENS_PER_STEP = 32768  # beyond this a bigger micro-batch buys no speed, only risk


@dataclass
class AutoPlan:
    config: TrainingConfig
    estimate: Optional[MemoryEstimate]
    lines: list[str] = field(default_factory=list)
    gpu: Optional[GPU] = None


def _snapshot(hardware: Union[Snapshot, Backend, None]) -> Snapshot:
    if hardware is None:
        return get_backend().snapshot()
    if isinstance(hardware, Snapshot):
        return hardware
    if hasattr(hardware, "snapshot"):
        return hardware.snapshot()
    raise SageError(
        f"hardware must be a Snapshot or a backend, not {type(hardware).__name__}",
        hint="pass hardware.snapshot() or leave it out",
        kind="hardware",
    )


def plan_auto(model: str, hardware: Union[Snapshot, Backend, None] = None, **kw: Any) -> AutoPlan:
    """The auto preset with its estimate and explanation. `kw` are TrainingConfig fields;
    `max_length` is the longest wanted (default 2048), `lora` / `lora_r` set the rank,
    anything else is applied as given."""
    snap = _snapshot(hardware)
    kw = dict(kw)
    kw.pop("model_name", None)
    seqs = int(kw.pop("sequences", 1) or 1)  # 2 for preference pairs: size the batch for both
    want_len = int(kw.pop("max_length", DEFAULT_MAX_LENGTH) or DEFAULT_MAX_LENGTH)
    lora = kw.pop("lora", None)
    r = int(kw.pop("lora_r", 0) or (lora.r if isinstance(lora, LoRAConfig) else 16))
    lora = lora if isinstance(lora, LoRAConfig) else LoRAConfig(r=r, lora_alpha=2 * r)
    if want_len <= 0:
        raise SageError(f"max_length must be positive, got {want_len}", hint="e.g. 2048")

    if not snap.gpus:
        base = PresetConfigs.cpu(model_name=model, lora=lora).model_dump()
        base.update(preset="auto", max_length=min(want_len, base["max_length"]))
        base.update(kw)
        cfg = TrainingConfig(**base)
        lines = [
            f"no GPU: {snap.host.cpu_model}, {snap.host.cores} cores, {snap.host.ram_total / GiB:.0f} GiB RAM"
            + (f" ({snap.note})" if snap.note else ""),
            f"cpu preset: fp32, micro-batch 4 × 512 tokens; fine for {TINY_NAME} and small models, slow for 1B+",
        ]
        ram_est = None
        try:
            shape = model_shape(model)
            avail = max(0, snap.host.ram_total - snap.host.ram_used)
            ram_est = estimate_memory(
                shape,
                dtype="float32",
                device="cpu",
                micro_batch=cfg.batch_size,
                max_length=cfg.max_length,
                gradient_checkpointing=cfg.gradient_checkpointing,
                lora_r=lora.r,
                free=avail,
                sequences=seqs,
            )
            lines.append(f"estimated RAM {ram_est.summary()}")
        except SageError as err:
            lines.append(f"no memory estimate: {err.message}")
        return AutoPlan(cfg, ram_est, lines)

    gpu = snap.gpus[0]
    shape = model_shape(model)
    if shape.max_positions:
        want_len = min(want_len, int(shape.max_positions))
    free = gpu.mem_free
    dtype = "bfloat16" if gpu.bf16 else "float16"
    lines = [
        f"GPU {gpu.index}: {gpu.name}, {free / GiB:.1f} of {gpu.mem_total / GiB:.1f} GiB free; "
        f"budget {BUDGET:.0%} = {free * BUDGET / GiB:.1f} GiB"
    ]
    if gpu.mig:
        lines.append(f"MIG instance {gpu.mig_instance} of GPU {gpu.index}: only its own memory counts")
    if gpu.shared:
        lines.append(
            f"shared GPU: other users' processes hold {gpu.foreign_memory / GiB:.1f} GiB; the plan uses what is free now"
        )
    if len(snap.gpus) > 1:
        lines.append(
            f"{len(snap.gpus)} GPUs visible; sized for one (DDP keeps a full copy on each; set training.gpus to use several)"
        )

    def est(q: str, mb: int, length: int, gc: bool) -> MemoryEstimate:
        return estimate_memory(
            shape,
            quantization=q,
            dtype=dtype,
            micro_batch=mb,
            max_length=length,
            gradient_checkpointing=gc,
            lora_r=lora.r,
            lora_dropout=lora.lora_dropout,
            optimizer="adamw_torch" if q == "none" else "paged_adamw_8bit",
            free=free,
            budget_fraction=BUDGET,
            sequences=seqs,
        )

    lengths = [n for n in LENGTHS if n <= want_len] or [want_len]
    if want_len not in lengths:
        lengths.insert(0, want_len)
    quant = None
    for q in QUANTIZATIONS:
        if est(q, 1, lengths[-1], True).fits:
            quant = q
            break
        w = est(q, 1, lengths[-1], True)
        lines.append(
            f"{_qname(q, dtype)}: needs ~{w.total / GiB:.1f} GiB even at 1 × {lengths[-1]} tokens with checkpointing"
        )
    if quant != "none" and len(snap.gpus) > 1:
        # 16-bit does not fit one GPU: say what sharding over the visible ones would need
        shard = estimate_memory(
            shape,
            dtype=dtype,
            micro_batch=1,
            max_length=lengths[-1],
            gradient_checkpointing=True,
            lora_r=lora.r,
            free=free,
            budget_fraction=BUDGET,
            shards=len(snap.gpus),
        )
        lines.append(
            f"{dtype} LoRA sharded over {len(snap.gpus)} GPUs (training.sharding fsdp): ~{shard.total / GiB:.1f} GiB "
            f"per GPU at 1 × {lengths[-1]} tokens — {'fits' if shard.fits else 'does not fit'}"
        )
    if quant is None:
        raise SageError(
            f"{shape.name} does not fit on GPU {gpu.index} ({free / GiB:.1f} GiB free): even 4-bit at 1 × {lengths[-1]} tokens "
            f"needs ~{est('4bit', 1, lengths[-1], True).total / GiB:.1f} GiB",
            hint="pick a smaller model, free the GPU, or use a GPU with more memory",
            kind="oom",
        )
    length = next(n for n in lengths if est(quant, 1, n, True).fits)

    def biggest(gc: bool) -> int:
        for mb in BATCHES:
            if mb * length <= max(MAX_TOKENS_PER_STEP, length) and est(quant, mb, length, gc).fits:
                return mb
        return 0

    mb_on, mb_off = biggest(True), biggest(False)
    gc = not (mb_off and mb_off * 2 >= mb_on)
    mb = mb_on if gc else mb_off
    e = est(quant, mb, length, gc)
    accum = max(1, EFFECTIVE_BATCH // mb)
    optim = "paged_adamw_8bit" if quant != "none" else "adamw_torch_fused"
    values = dict(
        model_name=model,
        preset="auto",
        load_in_8bit=quant == "8bit",
        load_in_4bit=quant == "4bit",
        max_length=length,
        batch_size=mb,
        gradient_accumulation_steps=accum,
        gradient_checkpointing=gc,
        bf16=dtype == "bfloat16",
        fp16=dtype == "float16",
        optim=optim,
        lora=lora,
        learning_rate=2e-4,
    )
    values.update(kw)
    cfg = TrainingConfig(**values)
    if quant == "none":
        lines.append(f"{dtype} weights fit ({e.weights / GiB:.1f} GiB): no quantization")
    else:
        lines.append(f"{_qname(quant, dtype)} chosen: weights {e.weights / GiB:.1f} GiB (16-bit would not fit)")
    if length < want_len:
        lines.append(f"max length {length} (wanted {want_len}; longer does not fit)")
    lines.append(
        f"micro-batch {mb} × {length} tokens, gradient checkpointing {'on' if gc else 'off'}"
        + (" (it allows a micro-batch twice as large)" if gc and mb_off else "")
        + (" (needed to fit at all)" if gc and not mb_off else "")
    )
    lines.append(f"effective batch {mb * accum} = {mb} × {accum} accumulation steps")
    lines.append(
        ("bf16: supported" if dtype == "bfloat16" else "fp16: this GPU has no bf16")
        + (
            f" (compute capability {gpu.compute_capability[0]}.{gpu.compute_capability[1]})"
            if gpu.compute_capability
            else ""
        )
    )
    lines.append(
        f"estimated peak {e.total / GiB:.1f} GiB of the {(e.budget or 0) / GiB:.1f} GiB budget "
        f"(weights {e.weights / GiB:.1f}, activations {e.activations / GiB:.1f}, LoRA+optimizer "
        f"{(e.lora_params + e.lora_grads + e.optimizer_states) / GiB:.2f})"
    )
    return AutoPlan(cfg, e, lines, gpu)


def _qname(q: str, dtype: str) -> str:
    return {"none": f"{dtype} LoRA", "8bit": "8-bit QLoRA", "4bit": "4-bit QLoRA"}[q]


def auto_preset(model: str, hardware: Union[Snapshot, Backend, None] = None, **kw: Any) -> TrainingConfig:
    """The TrainingConfig that fits `model` on `hardware` (default: this machine now)."""
    return plan_auto(model, hardware, **kw).config


def explain_choice(model: str, hardware: Union[Snapshot, Backend, None] = None, **kw: Any) -> list[str]:
    """Why auto chose what it chose, one short line each."""
    return plan_auto(model, hardware, **kw).lines


class PresetConfigs:
    """The seed's presets (values kept), plus h100 and cpu; `auto` fits this machine (plan_auto)."""

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

    @staticmethod
    def auto(model: str, hardware=None, **kw) -> TrainingConfig:
        return auto_preset(model, hardware, **kw)

    NAMES = ("rtx_3060", "rtx_4090", "a100", "h100", "minimal", "cpu")

    @classmethod
    def get(cls, name: str, **kw) -> TrainingConfig:
        if name not in cls.NAMES and name != "auto":
            raise SageError(f"unknown preset {name!r}", hint=f"choose one of: {', '.join(cls.NAMES + ('auto',))}")
        return getattr(cls, name)(**kw)


def apply_preset(rc: RunConfig, name: str, hardware: Union[Snapshot, Backend, None] = None) -> RunConfig:
    """Overlay a preset's training/quantization settings onto `rc`, keeping model, task and data.
    `hardware`: what `auto` sizes for (default this machine; engine/hardware/gpus.py: a target)."""
    if name == "auto":
        tc = PresetConfigs.auto(rc.model.name, hardware, sequences=sequences_per_sample(rc.task))
    else:
        tc = PresetConfigs.get(name, model_name=rc.model.name, task=rc.task)
    p = tc.to_run_config()
    out = copy.deepcopy(rc)
    return RunConfig.from_dict(
        {
            **out.model_dump(mode="json"),
            "preset": name,
            "lora": p.lora.model_dump(mode="json"),
            "training": p.training.model_dump(mode="json"),
            "model": {**out.model.model_dump(mode="json"), "quantization": p.model.quantization},
        },
        source=f"preset {name}",
    )


__all__ = ["AutoPlan", "PresetConfigs", "apply_preset", "plan_auto", "auto_preset", "explain_choice", "BUDGET"]
