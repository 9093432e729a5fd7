"""What a hardware reading holds — GPUs (with their processes), the host, the snapshot of both —
and how a reading is written to and read back from JSON (the recordings tests and
SAGE_FT_HW_RECORDED use). Produced by hardware.nvml, hardware.host and hardware.probe's
RecordedBackend; never imports torch."""

from __future__ import annotations

import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Optional, Protocol, runtime_checkable

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import GiB


@dataclass
class GPUProcess:
    pid: int
    used_memory: Optional[int]  # bytes; None when the driver does not say (e.g. under MIG)
    user: Optional[str]  # None: not visible from here (another container, or gone)
    foreign: bool  # not ours: another user's job, or a process we cannot see


@dataclass
class GPU:
    index: int  # NVML (nvidia-smi) index of the physical GPU; for a MIG instance, its parent's
    name: str
    uuid: str  # GPU-... or, for a MIG instance, MIG-...
    mem_total: int  # bytes
    mem_used: int
    mem_free: int
    util: Optional[float]  # %, None when not supported (MIG instances)
    temp: Optional[float]  # °C
    power_w: Optional[float]
    power_limit_w: Optional[float]
    compute_capability: Optional[tuple[int, int]]
    bf16: bool
    mig: bool  # True for a MIG instance (or a MIG-enabled GPU with no instance)
    processes: list[GPUProcess] = field(default_factory=list)
    mig_instance: Optional[int] = None  # MIG device index within the parent GPU

    @property
    def foreign_memory(self) -> int:
        """Bytes held by other users' processes (those the driver reports)."""
        return sum(p.used_memory or 0 for p in self.processes if p.foreign)

    @property
    def shared(self) -> bool:
        return any(p.foreign for p in self.processes)

    @property
    def label(self) -> str:
        gb = self.mem_total / GiB
        return f"GPU {self.index}{'' if self.mig_instance is None else f'.{self.mig_instance}'}: {self.name} ({gb:.0f} GiB)"


@dataclass
class Host:
    cpu_model: str
    cores: int  # logical CPUs
    cpu_percent: Optional[float]
    ram_total: int  # bytes
    ram_used: int
    disk_free: Optional[int]  # bytes free where runs are written
    disk_path: Optional[str]


@dataclass
class Snapshot:
    t: float
    gpus: list[GPU]
    host: Host
    driver: Optional[str] = None
    cuda: Optional[str] = None  # the highest CUDA version the driver supports, e.g. "12.4"
    note: str = ""  # why there is no GPU, or what to know (MIG, CUDA_VISIBLE_DEVICES...)

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    @property
    def bf16(self) -> bool:
        return bool(self.gpus) and all(g.bf16 for g in self.gpus)

    def gpu(self, index: int) -> GPU:
        for g in self.gpus:
            if g.index == index:
                return g
        raise SageError(
            f"no visible GPU with index {index}",
            hint=f"visible: {', '.join(str(g.index) for g in self.gpus) or 'none'}",
            kind="hardware",
        )

    def summary(self) -> str:
        """One line: what there is to train on."""
        if not self.gpus:
            return (
                f"CPU only: {self.host.cpu_model}, {self.host.cores} cores, {self.host.ram_total / GiB:.0f} GiB RAM"
                + (f" ({self.note})" if self.note else "")
            )
        names: dict[str, int] = {}
        for g in self.gpus:
            key = f"{g.name} {g.mem_total / GiB:.0f} GiB"
            names[key] = names.get(key, 0) + 1
        parts = [f"{n}× {k}" for k, n in names.items()]
        free = min(g.mem_free for g in self.gpus) / GiB
        return f"{', '.join(parts)}; {free:.1f} GiB free" + (
            " (shared with other users)" if any(g.shared for g in self.gpus) else ""
        )


@runtime_checkable
class Backend(Protocol):
    def snapshot(self, disk_path: Optional[str | os.PathLike] = None) -> Snapshot: ...


def snapshot_to_dict(s: Snapshot) -> dict:
    d = asdict(s)
    for g in d["gpus"]:
        if g["compute_capability"] is not None:
            g["compute_capability"] = list(g["compute_capability"])
    return d


def _build(cls, raw: Any, where: str):
    if not isinstance(raw, dict):
        raise SageError(
            f"{where}: expected an object, got {type(raw).__name__}",
            hint="see tests/unit/fixtures/hardware/ for the shape",
            kind="hardware",
        )
    names = {f.name for f in fields(cls)}
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    unknown = sorted(set(raw) - names)
    if unknown:
        raise SageError(
            f"{where}: unknown field {unknown[0]!r}", hint=f"known fields: {', '.join(sorted(names))}", kind="hardware"
        )
    missing = [n for n in required if n not in raw]
    if missing:
        raise SageError(
            f"{where}: missing field {missing[0]!r}",
            hint="see tests/unit/fixtures/hardware/ for the shape",
            kind="hardware",
        )
    return dict(raw)


def snapshot_from_dict(raw: Any, where: str = "snapshot") -> Snapshot:
    d = _build(Snapshot, raw, where)
    h = _build(Host, d["host"], f"{where}.host")
    gpus = []
    if not isinstance(d["gpus"], list):
        raise SageError(f"{where}.gpus: expected a list", hint="use [] for a machine without GPU", kind="hardware")
    for i, graw in enumerate(d["gpus"]):
        g = _build(GPU, graw, f"{where}.gpus[{i}]")
        procs = []
        for j, praw in enumerate(g.get("processes") or []):
            procs.append(GPUProcess(**_build(GPUProcess, praw, f"{where}.gpus[{i}].processes[{j}]")))
        g["processes"] = procs
        cc = g.get("compute_capability")
        g["compute_capability"] = tuple(int(x) for x in cc) if cc else None
        try:
            gpus.append(GPU(**g))
        except TypeError as e:
            raise SageError(
                f"{where}.gpus[{i}]: {e}", hint="see tests/unit/fixtures/hardware/", kind="hardware"
            ) from None
    d["host"] = Host(**h)
    d["gpus"] = gpus
    return Snapshot(**d)


__all__ = ["GPUProcess", "GPU", "Host", "Snapshot", "Backend", "snapshot_to_dict", "snapshot_from_dict"]
