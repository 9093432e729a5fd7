"""The host's side of a reading: CPU, RAM and free disk where runs are written (psutil), and
the backend for a machine without a usable NVIDIA GPU."""

from __future__ import annotations

import os
import platform
import shutil
import time
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.hardware.readings import Host, Snapshot
from sage_ft_tui.engine.paths import runs_home


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


__all__ = ["read_host", "CpuOnlyBackend"]
