"""Common training GPUs, to plan for a card this machine does not have.

`estimate --gpu "RTX 4090"` / `--vram 24` and `fit_hardware(..., hardware=target_snapshot(...))`
size a run for the target from anywhere (a laptop, a CPU box): the plan is the bf16 (or
fp16) GPU plan the target would make, not this machine's fp32 CPU one. Memory is the
card's total as NVML reports it; dense bf16/fp16/tf32/fp32 TFLOP/s (no sparsity) are the
vendors' data-sheet figures, the peaks MFU is measured against (engine/hardware/flops.py,
the Monitor, `estimate --gpu`, bench/gpu_check.py). Never imports torch.
"""

from __future__ import annotations

import difflib
import re
import time
from dataclasses import dataclass
from typing import Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import GiB
from sage_ft_tui.engine.hardware.readings import GPU, Host, Snapshot


@dataclass(frozen=True)
class GPUSpec:
    name: str
    vram_gib: float
    compute_capability: tuple[int, int]
    bf16_tflops: Optional[float]  # dense tensor-core peaks (no sparsity), FP32 accumulate; None: no such unit
    aliases: tuple[str, ...] = ()
    fp16_tflops: Optional[float] = None  # None: as bf16
    tf32_tflops: Optional[float] = None
    fp32_tflops: Optional[float] = None  # plain CUDA cores

    @property
    def bf16(self) -> bool:
        return self.compute_capability >= (8, 0)

    def peak(self, dtype: str = "bfloat16") -> Optional[float]:
        """Dense peak TFLOP/s for matmuls in `dtype` (bfloat16, float16, tf32, float32)."""
        return {
            "bfloat16": self.bf16_tflops,
            "float16": self.fp16_tflops or self.bf16_tflops,
            "tf32": self.tf32_tflops,
            "float32": self.fp32_tflops,
        }.get(dtype)


# Data-sheet dense peaks (TFLOP/s; sparsity figures halved). GeForce cards: tensor cores at
# FP32 accumulate (what training uses), half their FP16-accumulate figure. No bf16 before
# Ampere (T4, V100: fp16 only); MI300X (AMD, planning only: NVML never reports it).
GPUS: tuple[GPUSpec, ...] = (
    GPUSpec("RTX 3060", 12, (8, 6), 25.6, ("3060",), tf32_tflops=12.7, fp32_tflops=12.7),
    GPUSpec("RTX 3090", 24, (8, 6), 71, ("3090",), tf32_tflops=35.6, fp32_tflops=35.6),
    GPUSpec("RTX 4090", 24, (8, 9), 165, ("4090",), tf32_tflops=82.6, fp32_tflops=82.6),
    GPUSpec("RTX 5090", 32, (12, 0), 210, ("5090",), tf32_tflops=105, fp32_tflops=105),
    GPUSpec("T4", 16, (7, 5), None, ("tesla t4",), fp16_tflops=65, fp32_tflops=8.1),
    GPUSpec("V100 32GB", 32, (7, 0), None, ("v100",), fp16_tflops=125, fp32_tflops=15.7),
    GPUSpec("A10", 24, (8, 6), 125, tf32_tflops=62.5, fp32_tflops=31.2),
    GPUSpec("A10G", 24, (8, 6), 70, tf32_tflops=35, fp32_tflops=35),  # AWS's A10 variant
    GPUSpec("L4", 24, (8, 9), 121, tf32_tflops=60, fp32_tflops=30.3),
    GPUSpec("L40S", 48, (8, 9), 362, ("l40",), tf32_tflops=183, fp32_tflops=91.6),
    GPUSpec("A100 40GB", 40, (8, 0), 312, ("a100-40", "a100 40"), tf32_tflops=156, fp32_tflops=19.5),
    GPUSpec("A100 80GB", 80, (8, 0), 312, ("a100-80", "a100 80"), tf32_tflops=156, fp32_tflops=19.5),
    GPUSpec("H100 PCIe", 80, (9, 0), 756, tf32_tflops=378, fp32_tflops=51),
    GPUSpec("H100 80GB", 80, (9, 0), 989, ("h100", "h100 sxm", "h100-80"), tf32_tflops=494, fp32_tflops=67),
    GPUSpec("H100 NVL", 94, (9, 0), 835, tf32_tflops=418, fp32_tflops=60),
    GPUSpec("H200", 141, (9, 0), 989, ("h200 sxm",), tf32_tflops=494, fp32_tflops=67),
    GPUSpec("B200", 180, (10, 0), 2250, tf32_tflops=1100, fp32_tflops=80),
    GPUSpec("MI300X", 192, (9, 4), 1307, ("instinct mi300x", "amd mi300x"), tf32_tflops=654, fp32_tflops=163),
)


def _key(s: str) -> str:
    s = s.lower().replace("nvidia", "").replace("geforce", "").replace("tesla ", "")
    return re.sub(r"[\s_\-]+", " ", s).strip()


def find_gpu(name: str) -> GPUSpec:
    """The table entry for a name as people write it ("4090", "H100", "nvidia a100-sxm4-80gb").
    A name that fits several cards of different memory ("A100": 40 or 80 GB) is refused with
    the matches listed, never settled by a guess."""
    k = _key(name or "")
    if not k:
        raise SageError(
            f"--gpu {name!r}: no GPU name given",
            hint=f"one of: {', '.join(g.name for g in GPUS)} — or give its memory with --vram GIB",
            kind="config",
        )
    for g in GPUS:
        if k == _key(g.name) or k in (_key(a) for a in g.aliases):
            return g
    # NVML names (e.g. "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB"): longest table name inside
    hits = [g for g in GPUS if all(part in k.split() for part in _key(g.name).split())]
    if hits:
        return max(hits, key=lambda g: len(g.name))
    # a family name ("a100"): every card whose name holds it
    family = [g for g in GPUS if all(part in _key(g.name).split() for part in k.split())]
    if len({g.vram_gib for g in family}) == 1:
        return family[0]
    if family:
        raise SageError(
            f"--gpu {name!r} matches {len(family)} cards: {', '.join(g.name for g in family)}",
            hint=f'name one of them, e.g. --gpu "{family[-1].name}", or give the memory with --vram GIB',
            kind="config",
        )
    close = close_names(k)
    raise SageError(
        f"unknown GPU {name!r}" + (f" (close: {', '.join(close)})" if close else ""),
        hint=f"one of: {', '.join(g.name for g in GPUS)} — or give its memory with --vram GIB",
        kind="config",
    )


def close_names(name: str) -> list[str]:
    """Table cards whose name looks like `name` (a typo, a missing space), closest first."""
    k = _key(name)
    keys = {_key(g.name): g.name for g in GPUS}
    keys.update({_key(a): g.name for g in GPUS for a in g.aliases})
    near = difflib.get_close_matches(k, list(keys), n=6, cutoff=0.6)
    near += [key for key in keys if k and (k.replace(" ", "") in key.replace(" ", ""))]
    return list(dict.fromkeys(keys[n] for n in near))[:4]


def peak_tflops(name: str, dtype: str = "bfloat16") -> Optional[float]:
    """The card's dense peak for `dtype`; None for a card not in the table (or no such unit)."""
    try:
        return find_gpu(name).peak(dtype)
    except SageError:
        return None


def target_snapshot(gpu: Optional[str] = None, vram_gib: Optional[float] = None, count: int = 1) -> Snapshot:
    """A Snapshot of `count` idle target GPUs (a table card, or any card with `vram_gib`), for
    the estimator and the auto preset; the host part is left empty (not this machine)."""
    if gpu is None and vram_gib is None:
        raise SageError("no target GPU given", hint='use --gpu "RTX 4090" or --vram 24', kind="config")
    if vram_gib is not None and not (0 < vram_gib <= 4096):
        raise SageError(f"--vram must be GiB between 0 and 4096, got {vram_gib}", hint="e.g. --vram 24")
    if count < 1:
        raise SageError(f"GPU count must be 1 or more, got {count}", hint="e.g. 2")
    spec = find_gpu(gpu) if gpu is not None else None
    total = int((vram_gib if vram_gib is not None else spec.vram_gib) * GiB)  # type: ignore[union-attr]
    name = spec.name if spec else f"GPU with {vram_gib:g} GiB"
    cc = spec.compute_capability if spec else (8, 0)
    gpus = [
        GPU(
            index=i,
            name=name,
            uuid=f"target-{i}",
            mem_total=total,
            mem_used=0,
            mem_free=total,
            util=None,
            temp=None,
            power_w=None,
            power_limit_w=None,
            compute_capability=cc,
            bf16=cc >= (8, 0),
            mig=False,
        )
        for i in range(count)
    ]
    host = Host(
        cpu_model="(target machine)", cores=0, cpu_percent=None, ram_total=0, ram_used=0, disk_free=None, disk_path=None
    )
    return Snapshot(t=time.time(), gpus=gpus, host=host, note=f"planned for {count} × {name} (not this machine)")


def planning_snapshot(gpu: Optional[str], vram_gib: Optional[float], count: Optional[int]) -> Optional[Snapshot]:
    """What a plan is made for: `count` target cards when `gpu` or `vram_gib` is given, else
    None (this machine, probed by the planner)."""
    if gpu is None and vram_gib is None:
        return None
    return target_snapshot(gpu, vram_gib, count or 1)


__all__ = ["GPUSpec", "GPUS", "find_gpu", "close_names", "peak_tflops", "target_snapshot", "planning_snapshot"]
