"""What a config means in steps and time, from the Data step's inspection: optimizer steps,
tokens per step, and a duration measured on an earlier run of the same model (if any).

Pure arithmetic (no torch); the Review step shows it beside the editable settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional


@dataclass
class TrainPlan:
    train_rows: int  # rows the trainer sees (usable minus the eval split)
    samples_per_step: int
    tokens_per_step: int  # at most: micro-batch × accumulation × max length (× GPUs)
    steps_per_epoch: Optional[int]
    total_steps: Optional[int]
    seconds: Optional[float] = None  # estimated duration
    basis: str = ""  # where the duration comes from


def plan(cfg: Any, inspection: Any = None) -> TrainPlan:
    t, d = cfg.training, cfg.data
    gpus = len(t.gpus) if t.gpus else 1
    per_step = t.micro_batch_size * t.grad_accumulation * gpus
    tokens = per_step * t.max_length
    rows = int(getattr(inspection, "usable", 0) or 0)
    train_rows = rows - int(rows * d.validation_split) if rows else 0
    if d.max_samples:
        train_rows = min(train_rows, d.max_samples) if train_rows else 0
    steps_per_epoch: Optional[int] = None
    if train_rows:
        lengths = list(getattr(inspection, "token_lengths", []) or [])
        if t.packing and lengths:  # packed rows are full max-length rows
            mean = sum(min(n, t.max_length) for n in lengths) / len(lengths)
            samples = math.ceil(train_rows * mean / t.max_length)
        else:
            samples = train_rows
        steps_per_epoch = max(1, math.ceil(samples / per_step))
    if t.max_steps > 0:
        total: Optional[int] = t.max_steps
    elif steps_per_epoch is not None:
        total = max(1, math.ceil(t.epochs * steps_per_epoch))
    else:
        total = None
    return TrainPlan(train_rows, per_step, tokens, steps_per_epoch, total)


def measured_seconds_per_token(model: str) -> Optional[tuple[float, str]]:
    """Seconds per trained token on this machine, from the newest finished run of `model`."""
    from sage_ft_tui.engine.runs.manage import list_runs, load_config

    for r in list_runs():
        if r.model != model or r.state != "completed" or not (r.started and r.ended and r.step):
            continue
        try:
            c = load_config(Path(r.path)).training
        except Exception:  # an unreadable old config: try the next run
            continue
        tokens = r.step * c.micro_batch_size * c.grad_accumulation * c.max_length
        if tokens:
            return (r.ended - r.started) / tokens, r.name
    return None


def with_duration(p: TrainPlan, model: str) -> TrainPlan:
    if p.total_steps is None:
        p.basis = "needs the data's row count"
        return p
    rate = measured_seconds_per_token(model)
    if rate is None:
        p.basis = "no finished run of this model yet; the monitor shows the ETA"
        return p
    p.seconds = rate[0] * p.total_steps * p.tokens_per_step
    p.basis = f"measured on {rate[1]}"
    return p
