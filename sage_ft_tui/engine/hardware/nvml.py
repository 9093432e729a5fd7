"""The GPUs the CUDA runtime would show this process, read through NVML (nvidia-ml-py):
CUDA_VISIBLE_DEVICES honoured (indices, GPU-/MIG- UUIDs and their unique prefixes), MIG
instances listed as the devices CUDA would use, and processes that are not ours flagged
(another user, or a pid we cannot see: another container)."""

from __future__ import annotations

import getpass
import os
import threading
import time
from typing import Any, Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.hardware.host import read_host
from sage_ft_tui.engine.hardware.readings import GPU, GPUProcess, Snapshot


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


__all__ = ["NvmlBackend", "parse_visible_devices"]
