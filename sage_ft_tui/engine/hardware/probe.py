"""What this machine has: GPUs through NVML (nvidia-ml-py), CPU, RAM and disk through psutil.

One small interface, `Backend.snapshot(disk_path=None) -> Snapshot` (the readings:
hardware.readings), with three answers:

- `NvmlBackend` (hardware.nvml): the real GPUs. Honours CUDA_VISIBLE_DEVICES (indices,
  GPU-/MIG- UUIDs and their unique prefixes), lists MIG instances as the devices CUDA would
  use, and flags processes that are not ours (another user, or a pid we cannot see).
- `CpuOnlyBackend` (hardware.host): no NVML, no driver or no GPU: the host alone, with a note
  saying why.
- `RecordedBackend`: readings from a JSON file, cycled; `get_backend()` returns it when
  the environment variable SAGE_FT_HW_RECORDED names such a file. That variable is the one
  seam tests use to fake a GPU; everything else goes through the same interface.

This module never imports torch, transformers or textual: the TUI polls it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Optional, Sequence

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.hardware.host import CpuOnlyBackend
from sage_ft_tui.engine.hardware.nvml import NvmlBackend
from sage_ft_tui.engine.hardware.readings import Backend, Snapshot, snapshot_from_dict

RECORDED_ENV = "SAGE_FT_HW_RECORDED"


# ---- recordings -------------------------------------------------------------------------


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

# (environment key, backend) in one value: a test that swaps `_cached` and has it put back
# restores the pair, never a backend under another environment's key
_cached: Optional[tuple[tuple, Backend]] = None
_cache_lock = threading.Lock()


def get_backend(*, fresh: bool = False) -> Backend:
    """Recorded readings when SAGE_FT_HW_RECORDED is set, else NVML, else CPU only.

    The NVML backend is kept for the process (NVML init is not free); a change of
    SAGE_FT_HW_RECORDED or CUDA_VISIBLE_DEVICES gives a new one."""
    global _cached
    key = (os.environ.get(RECORDED_ENV), os.environ.get("CUDA_VISIBLE_DEVICES"))
    with _cache_lock:
        if _cached is not None and _cached[0] == key and not fresh:
            return _cached[1]
        if key[0]:
            backend: Backend = RecordedBackend(key[0])
        else:
            try:
                backend = NvmlBackend()
            except SageError as e:
                backend = CpuOnlyBackend(note=e.message)
        _cached = (key, backend)
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


__all__ = ["RecordedBackend", "get_backend", "snapshot", "snapshot_to_event", "RECORDED_ENV"]
