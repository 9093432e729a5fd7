"""Common training GPUs, to plan for a card this machine does not have.

`estimate --gpu "RTX 4090"` / `--vram 24` and `plan_auto(..., hardware=target_snapshot(...))`
size a run for the target from anywhere (a laptop, a CPU box): the plan is the bf16 (or
fp16) GPU plan the target would make, not this machine's fp32 CPU one. Memory is the
card's total as NVML reports it; dense bf16/fp16 tensor TFLOP/s (no sparsity) are the
vendors' data-sheet figures, used for MFU (bench/gpu_check.py). Never imports torch.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.hardware.estimate import GiB
from sage_ft_tui.engine.hardware.probe import GPU, Host, Snapshot


@dataclass(frozen=True)
class GPUSpec:
    name: str
    vram_gib: float
    compute_capability: tuple[int, int]
    bf16_tflops: float  # dense, tensor cores
    aliases: tuple[str, ...] = ()

    @property
    def bf16(self) -> bool:
        return self.compute_capability >= (8, 0)


GPUS: tuple[GPUSpec, ...] = (
    GPUSpec("RTX 3060", 12, (8, 6), 51, ("3060",)),
    GPUSpec("RTX 3090", 24, (8, 6), 142, ("3090",)),
    GPUSpec("RTX 4090", 24, (8, 9), 165, ("4090",)),
    GPUSpec("RTX 5090", 32, (12, 0), 210, ("5090",)),
    GPUSpec("T4", 16, (7, 5), 65, ("tesla t4",)),
    GPUSpec("V100 32GB", 32, (7, 0), 125, ("v100",)),
    GPUSpec("A10", 24, (8, 6), 125, ("a10g",)),
    GPUSpec("L4", 24, (8, 9), 121),
    GPUSpec("L40S", 48, (8, 9), 362, ("l40",)),
    GPUSpec("A100 40GB", 40, (8, 0), 312, ("a100-40", "a100 40")),
    GPUSpec("A100 80GB", 80, (8, 0), 312, ("a100-80", "a100 80")),
    GPUSpec("H100 PCIe", 80, (9, 0), 756),
    GPUSpec("H100 80GB", 80, (9, 0), 989, ("h100", "h100 sxm", "h100-80")),
    GPUSpec("H100 NVL", 94, (9, 0), 835),
    GPUSpec("H200", 141, (9, 0), 989, ("h200 sxm",)),
    GPUSpec("B200", 180, (10, 0), 2250),
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
    raise SageError(
        f"unknown GPU {name!r}",
        hint=f"one of: {', '.join(g.name for g in GPUS)} — or give its memory with --vram GIB",
        kind="config",
    )


def peak_tflops(name: str) -> Optional[float]:
    try:
        return find_gpu(name).bf16_tflops
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


__all__ = ["GPUSpec", "GPUS", "find_gpu", "peak_tflops", "target_snapshot", "planning_snapshot"]
