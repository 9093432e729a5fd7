"""Where a queued run may start now: GPU choice from a hardware snapshot, no torch, no side effects.

A GPU is free for a run when no run of ours trains on it (unless the entry shares GPUs)
and NVML says it has at least the run's memory estimate free — a GPU another user fills
is busy even though no run of ours is on it. Without an estimate (a model that is not on
this machine yet) a GPU must also have no process at all. On a machine without GPUs runs
go one after another. Tested through the probe's recorded snapshots (`SAGE_FT_HW_RECORDED`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from sage_ft_tui.engine.fsutil import fmt_bytes
from sage_ft_tui.engine.hardware.readings import Snapshot


@dataclass
class Placement:
    gpus: Optional[list[int]] = None  # the GPUs to start on (None: the CPU)
    wait: str = ""  # why it cannot start now ("" = start it)
    never: str = ""  # why it can never start on this machine (the entry fails)

    @property
    def ok(self) -> bool:
        return not self.wait and not self.never


@dataclass
class Active:
    """A run of ours that trains now, and the GPUs it holds."""

    name: str
    gpus: set[int] = field(default_factory=set)


def place(
    snap: Snapshot,
    active: Sequence[Active],
    *,
    need: int = 1,
    candidates: Optional[Sequence[int]] = None,
    need_bytes: Optional[int] = None,
    share_gpu: bool = False,
) -> Placement:
    """Choose `need` GPUs among `candidates` (default: every GPU) for a run needing
    `need_bytes` on each, given the runs of ours training now."""
    if not snap.has_gpu:
        if active:
            return Placement(wait=f"waiting for {active[0].name} to end (one run at a time on a machine without GPUs)")
        return Placement()
    have = {g.index: g for g in snap.gpus}
    pool = list(candidates) if candidates else sorted(have)
    missing = [i for i in pool if i not in have]
    if missing:
        return Placement(never=f"GPU {missing[0]} is not on this machine (found: {', '.join(map(str, sorted(have)))})")
    if need > len(pool):
        return Placement(never=f"it needs {need} GPUs and may use only {len(pool)} ({', '.join(map(str, pool))})")
    taken: dict[int, str] = {}
    for a in active:
        for index in a.gpus:
            taken.setdefault(index, a.name)
    chosen: list[int] = []
    reasons: list[str] = []
    for i in pool:
        g = have[i]
        if i in taken and not share_gpu:
            reasons.append(f"GPU {i} is training {taken[i]}")
        elif need_bytes is not None and g.mem_free < need_bytes:
            reasons.append(f"GPU {i} has {fmt_bytes(g.mem_free)} free, the run needs {fmt_bytes(need_bytes)}")
        elif need_bytes is None and g.processes and not (share_gpu and i in taken):
            reasons.append(f"GPU {i} has {len(g.processes)} process(es) on it and the run's memory is unknown")
        else:
            chosen.append(i)
        if len(chosen) == need:
            return Placement(gpus=chosen)
    return Placement(wait="waiting: " + "; ".join(reasons[:2]))


__all__ = ["Placement", "Active", "place"]
