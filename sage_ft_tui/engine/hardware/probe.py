"""What this machine has: GPUs through NVML (nvidia-ml-py), CPU, RAM and disk through psutil.

One small interface, `Backend.snapshot(disk_path=None) -> Snapshot`, with three answers:

- `NvmlBackend`: the real GPUs. Honours CUDA_VISIBLE_DEVICES (indices, GPU-/MIG- UUIDs
  and their unique prefixes), lists MIG instances as the devices CUDA would use, and flags
  processes that are not ours (another user, or a pid we cannot see: another container).
- `CpuOnlyBackend`: no NVML, no driver or no GPU: the host alone, with a note saying why.
- `RecordedBackend`: readings from a JSON file, cycled; `get_backend()` returns it when
  the environment variable SAGE_FT_HW_RECORDED names such a file. That variable is the one
  seam tests use to fake a GPU; everything else goes through the same interface.

This module never imports torch, transformers or textual: the TUI polls it.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import shutil
import threading
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence, runtime_checkable

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import GiB

RECORDED_ENV = "SAGE_FT_HW_RECORDED"


# ---- the readings ------------------------------------------------------------------


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


# ---- host (psutil) -------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _existing_ancestor(path: Path) -> Path:
    p = path.expanduser().absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def read_host(disk_path: Optional[str | os.PathLike] = None) -> Host:
    import psutil

    if disk_path is None:
        from sage_ft_tui.engine.paths import runs_home

        disk_path = runs_home()
    where = _existing_ancestor(Path(disk_path))
    try:
        disk_free: Optional[int] = shutil.disk_usage(where).free
    except OSError:
        disk_free = None
    vm = psutil.virtual_memory()
    try:
        # interval=None compares with the previous call (the first call says 0.0).
        cpu = psutil.cpu_percent(interval=None)
    except Exception:
        cpu = None
    return Host(
        cpu_model=_cpu_model(),
        cores=psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        cpu_percent=cpu,
        ram_total=int(vm.total),
        ram_used=int(vm.total - vm.available),
        disk_free=disk_free,
        disk_path=str(Path(disk_path)),
    )


class CpuOnlyBackend:
    """No usable NVIDIA GPU: the host alone, and why."""

    def __init__(self, note: str = "no NVIDIA GPU found"):
        self.note = note

    def snapshot(self, disk_path=None) -> Snapshot:
        return Snapshot(t=time.time(), gpus=[], host=read_host(disk_path), note=self.note)


# ---- CUDA_VISIBLE_DEVICES -------------------------------------------------------------


def parse_visible_devices(value: Optional[str]) -> Optional[list[str]]:
    """CUDA_VISIBLE_DEVICES as a list of entries (None: unset = all devices).

    Like the CUDA runtime, the list ends at the first entry that is not an index or a
    UUID (so "-1" or "" means no device at all)."""
    if value is None:
        return None
    out: list[str] = []
    for raw in value.split(","):
        item = raw.strip()
        if item.isdigit() or item.startswith(("GPU-", "MIG-")):
            out.append(item)
        else:
            break
    return out


# ---- NVML ------------------------------------------------------------------------------


def _s(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _cuda_version(v: int) -> str:
    return f"{v // 1000}.{(v % 1000) // 10}"


def _own_pids() -> set[int]:
    """This process, its parents and children: a training run we started is not foreign."""
    pids = {os.getpid()}
    try:
        import psutil

        me = psutil.Process()
        pids.update(p.pid for p in me.parents())
        pids.update(p.pid for p in me.children(recursive=True))
    except Exception:
        pass
    return pids


class NvmlBackend:
    """The GPUs the CUDA runtime would show this process, read through NVML.

    Raises `SageError(kind="hardware")` from the constructor when NVML cannot start (no
    library, no driver); `get_backend()` turns that into a CPU-only answer."""

    def __init__(self, visible_devices: Optional[str] = None, *, use_env: bool = True):
        try:
            import pynvml
        except ImportError:
            raise SageError("nvidia-ml-py is not installed", hint="pip install nvidia-ml-py", kind="hardware") from None
        self.nv = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as e:
            raise SageError(
                f"NVML did not start ({_s(e)})", hint="no NVIDIA driver here; training runs on the CPU", kind="hardware"
            ) from None
        self._visible = (
            visible_devices
            if visible_devices is not None
            else (os.environ.get("CUDA_VISIBLE_DEVICES") if use_env else None)
        )
        self._lock = threading.Lock()
        self._me = getpass.getuser()
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self.nv.nvmlShutdown()
            except Exception:
                pass

    def __del__(self):  # pragma: no cover - interpreter shutdown order varies
        try:
            self.close()
        except Exception:
            pass

    # -- helpers that never raise: a reading the GPU does not support is None
    def _try(self, fn, *args, default=None):
        try:
            return fn(*args)
        except Exception:
            return default

    def _devices(self) -> tuple[list[tuple[Any, Optional[Any], int, Optional[int]]], list[str]]:
        """(handle, parent handle or None, parent index, mig index) for each visible device."""
        nv = self.nv
        notes: list[str] = []
        count = nv.nvmlDeviceGetCount()
        physical = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        uuids = [_s(nv.nvmlDeviceGetUUID(h)) for h in physical]

        def migs_of(i: int) -> list[tuple[Any, Any, int, int]]:
            h = physical[i]
            out = []
            for m in range(self._try(nv.nvmlDeviceGetMaxMigDeviceCount, h, default=0) or 0):
                mh = self._try(nv.nvmlDeviceGetMigDeviceHandleByIndex, h, m)
                if mh is not None:
                    out.append((mh, h, i, m))
            return out

        def mig_on(i: int) -> bool:
            mode = self._try(nv.nvmlDeviceGetMigMode, physical[i])
            return bool(mode and mode[0] == nv.NVML_DEVICE_MIG_ENABLE)

        def whole(i: int) -> list[tuple[Any, Optional[Any], int, Optional[int]]]:
            if mig_on(i):
                inst = migs_of(i)
                if not inst:
                    notes.append(f"GPU {i} is in MIG mode with no MIG instance: create one (nvidia-smi mig) to use it")
                return list(inst)
            return [(physical[i], None, i, None)]

        entries = parse_visible_devices(self._visible)
        if entries is None:
            return [d for i in range(count) for d in whole(i)], notes
        devs: list = []
        for e in entries:
            found = None
            if e.isdigit():
                i = int(e)
                if i < count:
                    found = whole(i)
            elif e.startswith("GPU-"):
                hits = [i for i, u in enumerate(uuids) if u.startswith(e)]
                if len(hits) == 1:
                    found = whole(hits[0])
            else:  # MIG-<uuid> (or the old MIG-GPU-<uuid>/gi/ci form)
                for i in range(count):
                    for mh, ph, pi, mi in migs_of(i) if mig_on(i) else []:
                        mu = _s(self._try(nv.nvmlDeviceGetUUID, mh, default=""))
                        if mu.startswith(e) or (e.startswith("MIG-GPU-") and e[4:].split("/")[0] == uuids[i]):
                            found = [(mh, ph, pi, mi)]
                            break
                    if found:
                        break
            if not found:
                notes.append(
                    f"CUDA_VISIBLE_DEVICES entry {e!r} matches no device; the devices after it are not visible either"
                )
                break
            devs.extend(d for d in found if d not in devs)
        if not devs and entries == []:
            notes.append("CUDA_VISIBLE_DEVICES hides every GPU")
        return devs, notes

    def _processes(self, handle) -> list[GPUProcess]:
        nv = self.nv
        procs: dict[int, Optional[int]] = {}
        for fn in (nv.nvmlDeviceGetComputeRunningProcesses, nv.nvmlDeviceGetGraphicsRunningProcesses):
            for p in self._try(fn, handle, default=[]) or []:
                mem = getattr(p, "usedGpuMemory", None)
                if mem is not None and (
                    mem < 0 or mem >= 2**63 or mem == getattr(nv, "NVML_VALUE_NOT_AVAILABLE_ulonglong", -1)
                ):
                    mem = None
                procs[int(p.pid)] = mem if procs.get(int(p.pid)) is None else procs[int(p.pid)]
        if not procs:
            return []
        own = _own_pids()
        out = []
        try:
            import psutil
        except ImportError:  # pragma: no cover - psutil is a dependency
            psutil = None
        for pid, mem in sorted(procs.items()):
            user = None
            if psutil is not None:
                try:
                    user = psutil.Process(pid).username()
                except Exception:
                    user = None
            foreign = pid not in own and (user is None or user != self._me)
            out.append(GPUProcess(pid=pid, used_memory=mem, user=user, foreign=foreign))
        return out

    def snapshot(self, disk_path=None) -> Snapshot:
        nv = self.nv
        with self._lock:
            try:
                devs, notes = self._devices()
            except nv.NVMLError as e:
                return Snapshot(t=time.time(), gpus=[], host=read_host(disk_path), note=f"NVML failed: {_s(e)}")
            gpus: list[GPU] = []
            for handle, parent, pindex, mindex in devs:
                phys = parent if parent is not None else handle
                mem = self._try(nv.nvmlDeviceGetMemoryInfo, handle)
                if mem is None:
                    continue
                cc = self._try(nv.nvmlDeviceGetCudaComputeCapability, phys)
                cc = (int(cc[0]), int(cc[1])) if cc else None
                util = self._try(nv.nvmlDeviceGetUtilizationRates, handle) if parent is None else None
                power = self._try(nv.nvmlDeviceGetPowerUsage, phys)
                limit = self._try(nv.nvmlDeviceGetEnforcedPowerLimit, phys)
                temp = self._try(nv.nvmlDeviceGetTemperature, phys, nv.NVML_TEMPERATURE_GPU)
                gpus.append(
                    GPU(
                        index=pindex,
                        name=_s(self._try(nv.nvmlDeviceGetName, handle, default="NVIDIA GPU")),
                        uuid=_s(self._try(nv.nvmlDeviceGetUUID, handle, default="")),
                        mem_total=int(mem.total),
                        mem_used=int(mem.used),
                        mem_free=int(mem.free),
                        util=float(util.gpu) if util is not None else None,
                        temp=float(temp) if temp is not None else None,
                        power_w=power / 1000 if power is not None else None,
                        power_limit_w=limit / 1000 if limit is not None else None,
                        compute_capability=cc,
                        bf16=bool(cc and cc >= (8, 0)),
                        mig=parent is not None,
                        processes=self._processes(handle),
                        mig_instance=mindex,
                    )
                )
            driver = self._try(nv.nvmlSystemGetDriverVersion)
            cuda = self._try(nv.nvmlSystemGetCudaDriverVersion)
            if not gpus and not notes:
                notes.append("NVML sees no usable GPU")
            return Snapshot(
                t=time.time(),
                gpus=gpus,
                host=read_host(disk_path),
                driver=_s(driver) if driver else None,
                cuda=_cuda_version(int(cuda)) if cuda else None,
                note="; ".join(notes),
            )


# ---- recordings -------------------------------------------------------------------------


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


class RecordedBackend:
    """Readings from a JSON file (one snapshot, a list, or {"readings": [...]}), cycled.

    Each reading is stamped with the current time when handed out; a `disk_path` given to
    `snapshot()` replaces the recorded path (the recorded free space stays)."""

    def __init__(self, source: str | os.PathLike | Sequence[dict] | dict):
        if isinstance(source, (str, os.PathLike)):
            path = Path(source).expanduser()
            where = str(path)
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise SageError(
                    f"{RECORDED_ENV}={path}: no such file",
                    hint=f"unset {RECORDED_ENV} or point it at a recording",
                    kind="hardware",
                ) from None
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise SageError(
                    f"{path}: not a readable JSON recording ({e})",
                    hint="see tests/unit/fixtures/hardware/",
                    kind="hardware",
                ) from None
        else:
            raw, where = source, "recording"
        if isinstance(raw, dict) and "readings" in raw:
            raw = raw["readings"]
        readings = raw if isinstance(raw, list) else [raw]
        if not readings:
            raise SageError(
                f"{where}: the recording holds no readings", hint="add at least one snapshot", kind="hardware"
            )
        self.readings = [snapshot_from_dict(r, f"{where}[{i}]") for i, r in enumerate(readings)]
        self._i = 0
        self._lock = threading.Lock()

    def snapshot(self, disk_path=None) -> Snapshot:
        import copy

        with self._lock:
            s = copy.deepcopy(self.readings[self._i % len(self.readings)])
            self._i += 1
        s.t = time.time()
        if disk_path is not None:
            s.host.disk_path = str(disk_path)
        return s


# ---- choosing a backend ----------------------------------------------------------------

_cached: Optional[Backend] = None
_cached_key: Optional[tuple] = None
_cache_lock = threading.Lock()


def get_backend(*, fresh: bool = False) -> Backend:
    """Recorded readings when SAGE_FT_HW_RECORDED is set, else NVML, else CPU only.

    The NVML backend is kept for the process (NVML init is not free); a change of
    SAGE_FT_HW_RECORDED or CUDA_VISIBLE_DEVICES gives a new one."""
    global _cached, _cached_key
    key = (os.environ.get(RECORDED_ENV), os.environ.get("CUDA_VISIBLE_DEVICES"))
    with _cache_lock:
        if _cached is not None and _cached_key == key and not fresh:
            return _cached
        if key[0]:
            backend: Backend = RecordedBackend(key[0])
        else:
            try:
                backend = NvmlBackend()
            except SageError as e:
                backend = CpuOnlyBackend(note=e.message)
        _cached, _cached_key = backend, key
        return backend


def snapshot(disk_path=None) -> Snapshot:
    """The machine now, through `get_backend()`."""
    return get_backend().snapshot(disk_path)


def snapshot_to_event(s: Snapshot) -> dict:
    """The fields of an `hw` event (docs/EVENTS.md), without v/t/kind."""
    return {
        "gpus": [
            {
                "index": g.index,
                "name": g.name,
                "util": g.util,
                "mem_used": g.mem_used,
                "mem_total": g.mem_total,
                "temp": g.temp,
                "power": g.power_w,
            }
            for g in s.gpus
        ],
        "cpu_percent": s.host.cpu_percent,
        "ram_used": s.host.ram_used,
        "ram_total": s.host.ram_total,
    }


__all__ = [
    "GPUProcess",
    "GPU",
    "Host",
    "Snapshot",
    "Backend",
    "NvmlBackend",
    "CpuOnlyBackend",
    "RecordedBackend",
    "get_backend",
    "snapshot",
    "snapshot_to_event",
    "snapshot_to_dict",
    "snapshot_from_dict",
    "parse_visible_devices",
    "read_host",
    "RECORDED_ENV",
]
