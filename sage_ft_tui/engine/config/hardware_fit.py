"""Settings that fit the hardware (the `auto` preset): for a model on this machine, or on a
target machine (engine/hardware/gpus.py), the quantization, sharding, max length, micro-batch
and checkpointing that fit, with the memory estimate and why, one line each.

On a GPU: the largest max length (up to the wanted one) and then the largest micro-batch
whose estimate stays under 90% of the first visible GPU's free memory; quantization only
when 16-bit weights cannot fit (8-bit, then 4-bit); gradient checkpointing only when it
buys a micro-batch at least twice as large; bf16 where the GPU supports it, else fp16.
Without a GPU: the cpu preset. `explain_choice` gives the lines the wizard's hardware
screen and `quickstart` show. Never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from sage_ft_tui.engine.config.fixed_presets import FixedPresets
from sage_ft_tui.engine.config.legacy import LoRAConfig, TrainingConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import GiB
from sage_ft_tui.engine.hardware.estimate import TrainSetup, estimate_memory
from sage_ft_tui.engine.hardware.memory_estimate import MemoryEstimate
from sage_ft_tui.engine.hardware.probe import get_backend
from sage_ft_tui.engine.hardware.readings import GPU, Backend, Snapshot
from sage_ft_tui.engine.models.shape import ModelShape, model_shape
from sage_ft_tui.engine.models.tiny import TINY_NAME

BUDGET = 0.9
LENGTHS = (8192, 4096, 2048, 1024, 512, 256)
BATCHES = (16, 8, 4, 2, 1)
EFFECTIVE_BATCH = 16
DEFAULT_MAX_LENGTH = 2048
MAX_TOKENS_PER_STEP = 32768  # beyond this a bigger micro-batch buys no speed, only risk


@dataclass
class HardwareFit:
    config: TrainingConfig
    estimate: Optional[MemoryEstimate]
    lines: list[str] = field(default_factory=list)
    gpu: Optional[GPU] = None
    # several GPUs: "ddp" (a full copy on each) or "fsdp" (sharded); "none" for one GPU or CPU
    sharding: str = "none"
    gpus: list[int] = field(default_factory=list)  # the GPU indices the plan uses (empty: one / CPU)


def snapshot_of(hardware: Union[Snapshot, Backend, None]) -> Snapshot:
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


@dataclass
class _Want:
    """What the caller asked for: the longest length, the LoRA rank, sequences per sample,
    how many GPUs, and the TrainingConfig fields to apply as given."""

    model: str
    length: int
    lora: LoRAConfig
    seqs: int
    gpus: Optional[int]
    rest: dict[str, Any]


def _wants(model: str, gpus: Optional[int], kw: dict[str, Any]) -> _Want:
    kw = dict(kw)
    kw.pop("model_name", None)
    seqs = int(kw.pop("sequences", 1) or 1)  # 2 for preference pairs: size the batch for both
    length = int(kw.pop("max_length", DEFAULT_MAX_LENGTH) or DEFAULT_MAX_LENGTH)
    lora = kw.pop("lora", None)
    r = int(kw.pop("lora_r", 0) or (lora.r if isinstance(lora, LoRAConfig) else 16))
    lora = lora if isinstance(lora, LoRAConfig) else LoRAConfig(r=r, lora_alpha=2 * r)
    if length <= 0:
        raise SageError(f"max_length must be positive, got {length}", hint="e.g. 2048")
    if gpus is not None and (not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 1):
        raise SageError(f"--gpus must be 1 or more, got {gpus!r}", hint="e.g. --gpus 2")
    return _Want(model, length, lora, seqs, gpus, kw)


def fit_hardware(
    model: str, hardware: Union[Snapshot, Backend, None] = None, *, gpus: Optional[int] = None, **kw: Any
) -> HardwareFit:
    """The auto preset with its estimate and explanation. `gpus`: how many of the snapshot's
    GPUs the run uses (the first ones; default one). `kw` are TrainingConfig fields;
    `max_length` is the longest wanted (default 2048), `lora` / `lora_r` set the rank,
    anything else is applied as given.

    Phases: probe (which GPUs, the model's shape, bf16 or fp16) → fit (the first of 16-bit,
    16-bit sharded, 8-bit, 4-bit, 4-bit sharded that fits at micro-batch 1) → batch (the
    longest length, then the largest micro-batch, checkpointing only when it pays)."""
    snap = snapshot_of(hardware)
    want = _wants(model, gpus, kw)
    if not snap.gpus:
        return _cpu_plan(snap, want)
    probe = _probe(snap, want)
    quant, shards = _fit(probe)
    return _batch(probe, quant, shards)


def _cpu_plan(snap: Snapshot, want: _Want) -> HardwareFit:
    if want.gpus is not None:  # a GPU count for a machine without one can only be a mistake
        raise SageError(
            f"--gpus {want.gpus}: this machine has no GPU" + (f" ({snap.note})" if snap.note else ""),
            hint=f"plan for the machine that will train with --gpu NAME --gpus {want.gpus} (or --vram GIB), "
            "or leave --gpus out to train here on the CPU",
            kind="hardware",
        )
    base = FixedPresets.cpu(model_name=want.model, lora=want.lora).model_dump()
    base.update(preset="auto", max_length=min(want.length, base["max_length"]))
    base.update(want.rest)
    cfg = TrainingConfig(**base)
    lines = [
        f"no GPU: {snap.host.cpu_model}, {snap.host.cores} cores, {snap.host.ram_total / GiB:.0f} GiB RAM"
        + (f" ({snap.note})" if snap.note else ""),
        f"cpu preset: fp32, micro-batch 4 × 512 tokens; fine for {TINY_NAME} and small models, slow for 1B+",
    ]
    ram_est = None
    try:
        avail = max(0, snap.host.ram_total - snap.host.ram_used)
        ram_est = estimate_memory(
            model_shape(want.model),
            TrainSetup(
                dtype="float32",
                device="cpu",
                micro_batch=cfg.batch_size,
                max_length=cfg.max_length,
                gradient_checkpointing=cfg.gradient_checkpointing,
                lora_r=want.lora.r,
                sequences=want.seqs,
            ),
            free=avail,
        )
        lines.append(f"estimated RAM {ram_est.summary()}")
    except SageError as err:
        lines.append(f"no memory estimate: {err.message}")
    return HardwareFit(cfg, ram_est, lines)


@dataclass
class _Probe:
    """Phase 1: the GPUs the run uses (the least free one bounds them all), the model's
    shape, the compute dtype, the lengths to try, and the lines said so far."""

    want: _Want
    shape: ModelShape
    used: list[GPU]
    dtype: str
    lengths: list[int]
    lines: list[str]

    @property
    def gpu(self) -> GPU:
        return min(self.used, key=lambda g: g.mem_free)

    @property
    def n(self) -> int:
        return len(self.used)

    def est(self, q: str, mb: int, length: int, gc: bool, shards: int = 1) -> MemoryEstimate:
        return estimate_memory(
            self.shape,
            TrainSetup(
                quantization=q,
                dtype=self.dtype,
                micro_batch=mb,
                max_length=length,
                gradient_checkpointing=gc,
                lora_r=self.want.lora.r,
                lora_dropout=self.want.lora.lora_dropout,
                optimizer=_optimizer(q),
                sequences=self.want.seqs,
                shards=shards,
            ),
            free=self.gpu.mem_free,
            budget_fraction=BUDGET,
        )


def _optimizer(q: str) -> str:
    return "adamw_torch" if q == "none" else "paged_adamw_8bit"


def _probe(snap: Snapshot, want: _Want) -> _Probe:
    n = want.gpus or 1
    if n > len(snap.gpus):
        raise SageError(
            f"--gpus {n}: only {len(snap.gpus)} GPU{'s' if len(snap.gpus) > 1 else ''} here",
            hint=f"use --gpus {len(snap.gpus)} or fewer, or plan for another machine with --gpu NAME --gpus {n}",
            kind="hardware",
        )
    used = snap.gpus[:n]
    shape = model_shape(want.model)
    length = min(want.length, int(shape.max_positions)) if shape.max_positions else want.length
    lengths = [x for x in LENGTHS if x <= length] or [length]
    if length not in lengths:
        lengths.insert(0, length)
    gpu = min(used, key=lambda g: g.mem_free)
    dtype = "bfloat16" if all(g.bf16 for g in used) else "float16"
    which = (
        f"GPU {gpu.index}: {gpu.name}" if n == 1 else f"{n} × {gpu.name} (GPUs {', '.join(str(g.index) for g in used)})"
    )
    least = " on the least free one" if n > 1 else ""
    lines = [
        f"{which}, {gpu.mem_free / GiB:.1f} of {gpu.mem_total / GiB:.1f} GiB free{least}; "
        f"budget {BUDGET:.0%} = {gpu.mem_free * BUDGET / GiB:.1f} GiB{' per GPU' if n > 1 else ''}"
    ]
    if gpu.mig:
        lines.append(f"MIG instance {gpu.mig_instance} of GPU {gpu.index}: only its own memory counts")
    if any(g.shared for g in used):
        foreign = max(g.foreign_memory for g in used)
        lines.append(f"shared GPU: other users' processes hold {foreign / GiB:.1f} GiB; the plan uses what is free now")
    if len(snap.gpus) > n:
        lines.append(
            f"{len(snap.gpus)} GPUs visible; planned for {n} (--gpus N or training.gpus to use more: "
            "DDP when a copy fits one GPU, FSDP sharding when it does not)"
        )
    return _Probe(want, shape, used, dtype, lengths, lines)


def _fit(p: _Probe) -> tuple[str, int]:
    """Phases 2-4: precision, quantization and sharding. 16-bit keeps the model's own weights,
    so it comes first, sharded over the GPUs before it is quantized; 8-bit is never sharded
    (bitsandbytes' int8 weights do not shard with FSDP), 4-bit is (QLoRA + FSDP, its weights
    stored in the compute dtype). Returns (quantization, shards)."""
    short = p.lengths[-1]
    tries = [("none", 1), ("none", p.n), ("8bit", 1), ("4bit", 1), ("4bit", p.n)]
    seen = set()
    for q, shards in tries:
        if (q, shards) in seen:
            continue
        seen.add((q, shards))
        e = p.est(q, 1, short, True, shards)
        if e.fits:
            return q, shards
        where = f"sharded over {shards} GPUs" if shards > 1 else "on one GPU"
        p.lines.append(
            f"{_qname(q, p.dtype)} {where}: needs ~{e.total / GiB:.1f} GiB"
            f"{' per GPU' if shards > 1 else ''} even at 1 × {short} tokens with checkpointing"
        )
    raise _no_fit(p)


def _no_fit(p: _Probe) -> SageError:
    """Too big even at 4-bit and sharded: say how many GPUs sharding would need."""
    short, gpu = p.lengths[-1], p.gpu
    e = p.est("4bit", 1, short, True, p.n)
    where = f"GPU {gpu.index}" if p.n == 1 else f"{p.n} × {gpu.name}"
    need = next((k for k in (2, 4, 8, 16, 32, 64) if k > p.n and p.est("4bit", 1, short, True, k).fits), None)
    more = f"shard it over {need} such GPUs (--gpus {need}, training.sharding fsdp), " if need else ""
    return SageError(
        f"{p.shape.name} does not fit on {where} ({gpu.mem_free / GiB:.1f} GiB free each): even 4-bit"
        f"{f' sharded over {p.n}' if p.n > 1 else ''} at 1 × {short} tokens needs ~{e.total / GiB:.1f} GiB"
        f"{' per GPU' if p.n > 1 else ''}",
        hint=f"{more}pick a smaller model, free the GPU, or use a GPU with more memory",
        kind="oom",
    )


def _batch(p: _Probe, quant: str, shards: int) -> HardwareFit:
    """Phase 5: the longest length that fits, then the largest micro-batch (checkpointing only
    when it buys a micro-batch at least twice as large); the effective batch stays 16."""
    length = next(n for n in p.lengths if p.est(quant, 1, n, True, shards).fits)

    def biggest(gc: bool) -> int:
        for mb in BATCHES:
            if mb * length <= max(MAX_TOKENS_PER_STEP, length) and p.est(quant, mb, length, gc, shards).fits:
                return mb
        return 0

    mb_on, mb_off = biggest(True), biggest(False)
    gc = not (mb_off and mb_off * 2 >= mb_on)
    mb = mb_on if gc else mb_off
    e = p.est(quant, mb, length, gc, shards)
    accum = max(1, EFFECTIVE_BATCH // (mb * p.n))
    values = dict(
        model_name=p.want.model,
        preset="auto",
        load_in_8bit=quant == "8bit",
        load_in_4bit=quant == "4bit",
        max_length=length,
        batch_size=mb,
        gradient_accumulation_steps=accum,
        gradient_checkpointing=gc,
        bf16=p.dtype == "bfloat16",
        fp16=p.dtype == "float16",
        optim="paged_adamw_8bit" if quant != "none" else "adamw_torch_fused",
        lora=p.want.lora,
        learning_rate=2e-4,
    )
    values.update(p.want.rest)
    lines = p.lines + _choice_lines(p, quant, shards, e)
    if length < p.want.length:
        lines.append(f"max length {length} (wanted {p.want.length}; longer does not fit)")
    lines.append(
        f"micro-batch {mb} × {length} tokens, gradient checkpointing {'on' if gc else 'off'}"
        + (" (it allows a micro-batch twice as large)" if gc and mb_off else "")
        + (" (needed to fit at all)" if gc and not mb_off else "")
    )
    lines.append(
        f"effective batch {mb * accum * p.n} = {mb} × {accum} accumulation steps"
        + (f" × {p.n} GPUs" if p.n > 1 else "")
    )
    cc = p.gpu.compute_capability
    lines.append(
        ("bf16: supported" if p.dtype == "bfloat16" else "fp16: this GPU has no bf16")
        + (f" (compute capability {cc[0]}.{cc[1]})" if cc else "")
    )
    lines.append(
        f"estimated peak {e.total / GiB:.1f} GiB{' per GPU' if p.n > 1 else ''} of the {(e.budget or 0) / GiB:.1f} "
        f"GiB budget (weights {e.weights / GiB:.1f}, activations {e.activations / GiB:.1f}, LoRA+optimizer "
        f"{(e.lora_params + e.lora_grads + e.optimizer_states) / GiB:.2f})"
    )
    sharding = "fsdp" if shards > 1 else "ddp" if p.n > 1 else "none"
    gpus = [g.index for g in p.used] if p.n > 1 else []
    return HardwareFit(TrainingConfig(**values), e, lines, p.gpu, sharding, gpus)


def _choice_lines(p: _Probe, quant: str, shards: int, e: MemoryEstimate) -> list[str]:
    if quant == "none":
        out = [f"{p.dtype} weights fit ({e.weights / GiB:.1f} GiB{' per GPU' if shards > 1 else ''}): no quantization"]
    else:
        out = [
            f"{_qname(quant, p.dtype)} chosen: weights {e.weights / GiB:.1f} GiB{' per GPU' if shards > 1 else ''} "
            "(16-bit would not fit)"
        ]
    if shards > 1:
        out.append(
            f"sharded over {shards} GPUs (training.sharding fsdp, FSDP2{' + QLoRA' if quant != 'none' else ''}): "
            f"one GPU cannot hold it; each holds 1/{shards} of the weights, LoRA and optimizer states plus the "
            "layers in use, activations not divided"
        )
    elif p.n > 1:
        out.append(f"fits one GPU: DDP over {p.n} GPUs (a full copy on each, no sharding)")
    return out


def _qname(q: str, dtype: str) -> str:
    return {"none": f"{dtype} LoRA", "8bit": "8-bit QLoRA", "4bit": "4-bit QLoRA"}[q]


def auto_preset(model: str, hardware: Union[Snapshot, Backend, None] = None, **kw: Any) -> TrainingConfig:
    """The TrainingConfig that fits `model` on `hardware` (default: this machine now)."""
    return fit_hardware(model, hardware, **kw).config


def explain_choice(model: str, hardware: Union[Snapshot, Backend, None] = None, **kw: Any) -> list[str]:
    """Why auto chose what it chose, one short line each."""
    return fit_hardware(model, hardware, **kw).lines
