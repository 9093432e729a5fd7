"""What a config means in steps and time: optimizer steps, tokens per step, and a duration
measured on an earlier run of the same model (if any); and what fitting max length to the
data costs in memory.

Pure arithmetic about a RunConfig and its data's figures (no torch). The wizard's Review
step and `sage-ft-tui start` both show it: from the Data step's inspection (`plan`) or
from a prepared run's data report (`plan_run`).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from sage_ft_tui.engine.data.split import eval_share, held_out
from sage_ft_tui.engine.data.truncation import memory_at
from sage_ft_tui.engine.fsutil import fmt_duration, read_json
from sage_ft_tui.engine.methods.registry import all_tasks, task_spec
from sage_ft_tui.engine.runs.events import read_events
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.runs.state import list_runs, load_config


@dataclass
class TrainPlan:
    train_rows: int  # rows the trainer sees (usable minus the eval split)
    samples_per_step: int
    tokens_per_step: int  # at most: micro-batch × accumulation × max length (× GPUs)
    steps_per_epoch: Optional[int]
    total_steps: Optional[int]
    seconds: Optional[float] = None  # estimated duration
    basis: str = ""  # where the duration comes from
    approx: bool = False  # packed rows estimated from a mean length (a lower bound on the steps)
    real_tokens: Optional[int] = None  # the data's own tokens the run trains on (no padding), when known
    packed_rows: Optional[int] = None  # with packing: the max-length rows the train rows pack into (per epoch)
    max_length: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line: "18 optimizer steps (6 per epoch) · ≤ 1,024 tokens/step · ≈ 2m10s (measured on …)"."""
        n = self.total_steps
        steps = f"{'≥ ' if self.approx else ''}{n or '?'} optimizer step{'' if n == 1 else 's'}"
        if self.steps_per_epoch and self.total_steps != self.steps_per_epoch:
            steps += f" ({self.steps_per_epoch} per epoch)"
        took = f"≈ {fmt_duration(self.seconds)}" if self.seconds is not None else "duration ?"
        return f"{steps} · ≤ {self.tokens_per_step:,} tokens/step · {took} ({self.basis})"


def plan(cfg: Any, inspection: Any = None) -> TrainPlan:
    """The plan from the Data step's inspection (usable rows, token lengths), before the split."""
    # the rows run creation splits: usable, less those with no trained token (dropped before the split)
    rows = int(getattr(inspection, "usable", 0) or 0) - int(getattr(inspection, "dropped", 0) or 0)

    train_rows = rows - held_out(rows, eval_share(cfg.data.validation_split, rows)) if rows else 0
    if cfg.data.max_samples and train_rows:
        train_rows = min(train_rows, cfg.data.max_samples)
    lengths = list(getattr(inspection, "token_lengths", []) or [])
    packed = None
    if cfg.training.packing and lengths and train_rows:  # the inspected lengths stand for the train rows (SFT)
        packed = math.ceil(packed_rows(lengths, cfg.training.max_length) * train_rows / len(lengths))
    mean = sum(min(n, cfg.training.max_length) for n in lengths) / len(lengths) if lengths else None
    p = plan_rows(cfg, train_rows, packed=packed)
    p.real_tokens = _real_tokens(p, mean, cfg.training.max_length)
    return p


def _real_tokens(p: TrainPlan, mean_length: Optional[float], max_length: int) -> Optional[int]:
    """The data's tokens the planned steps go through: epochs × rows × mean length (cut at max length)."""
    if not (mean_length and p.train_rows and p.steps_per_epoch and p.total_steps):
        return None
    per_epoch = p.train_rows * min(mean_length, max_length)
    return int(per_epoch * p.total_steps / p.steps_per_epoch)


def packed_rows(lengths: Sequence[int], max_length: int) -> int:
    """How many max-length rows TRL's "bfd" packing makes of samples of these lengths: best fit
    decreasing, each sample cut at max length, never split across rows."""
    spaces: list[int] = []  # the room left in each open row, sorted
    rows = 0
    for n in sorted((min(int(v), max_length) for v in lengths if v > 0), reverse=True):
        i = bisect.bisect_left(spaces, n)
        if i < len(spaces):
            room = spaces.pop(i)
        else:
            room, rows = max_length, rows + 1
        if room > n:
            bisect.insort(spaces, room - n)
    return rows


def plan_rows(
    cfg: Any, train_rows: int, *, packed: Optional[int] = None, mean_length: Optional[float] = None
) -> TrainPlan:
    """The plan for `train_rows` training rows; with packing, `packed` rows (known from the
    lengths) or, from a mean length alone, at least train_rows × mean / max length (approx)."""
    t = cfg.training
    gpus = len(t.gpus) if t.gpus else 1
    per_step = t.micro_batch_size * t.grad_accumulation * gpus
    packing = t.packing and task_spec(cfg.task).packs
    steps_per_epoch: Optional[int] = None
    approx = False
    packed_into: Optional[int] = None
    if train_rows:
        samples = train_rows
        if packing and packed:
            samples = packed_into = packed
        elif packing and mean_length:
            samples, approx = math.ceil(train_rows * min(mean_length, t.max_length) / t.max_length), True
            packed_into = samples
        # = the Trainer's ceil(ceil(samples / (micro-batch × GPUs)) / accumulation)
        steps_per_epoch = max(1, math.ceil(samples / per_step))
    if t.max_steps > 0:
        total: Optional[int] = t.max_steps
        approx = False
    elif steps_per_epoch is not None:
        total = max(1, math.ceil(t.epochs * steps_per_epoch))
    else:
        total = None
    return TrainPlan(
        train_rows,
        per_step,
        per_step * t.max_length,
        steps_per_epoch,
        total,
        approx=approx,
        packed_rows=packed_into,
        max_length=t.max_length,
    )


def plan_run(run: Path) -> TrainPlan:
    """The plan of a prepared run: its config and the training rows its data report counts."""
    cfg = load_config(Path(run))
    report = read_json(RunLayout(run).data_report, {}) or {}
    counts, tokens = report.get("counts", {}) or {}, report.get("tokens", {}) or {}
    train = int(counts.get("train", 0) or 0)
    p = plan_rows(cfg, train, mean_length=tokens.get("mean"))
    p.real_tokens = _real_tokens(p, tokens.get("mean"), cfg.training.max_length)
    return with_duration(p, cfg.model.name, cfg.task)


def measured_seconds_per_token(model: str) -> Optional[tuple[float, str]]:
    """Seconds per token of capacity (micro-batch × accumulation × max length) on this machine,
    from the newest finished run of `model`, start-up included (the fallback when the data's own
    tokens or the run's events are not known)."""
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


@dataclass
class Measured:
    """A finished run's pace: fixed seconds (start-up: imports, model load, tokenizing; the
    final save) and seconds per real (non-pad) token trained."""

    setup_s: float
    per_token_s: float
    run: str


def measured_pace(model: str, task: Optional[str] = None) -> Optional[Measured]:
    """The pace of the newest completed run of `model` (and of the same trainer: SFT, preference
    or GRPO) here, from its events (`run_pace`)."""
    kind = _trainer(task) if task else None
    for r in list_runs():
        if r.model != model:
            continue
        if kind is not None and _trainer(r.task) != kind:
            continue
        pace = run_pace(r)
        if pace is not None:
            return pace
    return None


def run_pace(r: Any, evs: Optional[list[dict]] = None) -> Optional[Measured]:
    """A completed run's pace (`r`: a manage.RunInfo), from its events (read here unless given):
    the seconds between its first and last `log` over the real tokens between them; the rest of
    its wall time is start-up, paid once whatever the length. None for a run without two logs."""
    if r.state != "completed" or not (r.started and r.ended):
        return None
    if evs is None:
        try:
            evs = read_events(RunLayout(Path(r.path)).events).events
        except OSError:
            return None
    starts = [i for i, e in enumerate(evs) if e.get("kind") == "start"]
    logs = [e for e in evs[(starts[-1] if starts else 0) :] if e.get("kind") == "log"]
    logs = [e for e in logs if isinstance(e.get("tokens"), (int, float)) and isinstance(e.get("t"), (int, float))]
    if len(logs) < 2:
        return None
    first, last = logs[0], logs[-1]
    d_tok, d_t = last["tokens"] - first["tokens"], last["t"] - first["t"]
    d_step = (last.get("step") or 0) - (first.get("step") or 0)
    if d_tok <= 0 or d_t <= 0 or d_step <= 0:
        return None
    rate = d_t / d_tok
    start_ev = evs[starts[-1]] if starts else {}
    steps = (last.get("step") or 0) - int(start_ev.get("resumed_from_step") or 0)
    trained = d_tok * steps / d_step  # the first logged step's tokens too
    setup = max(0.0, (r.ended - r.started) - trained * rate)
    return Measured(setup, rate, r.name)


def _trainer(task: Optional[str]) -> str:
    """Runs of the same trainer pace alike: SFT tasks share one."""
    spec = all_tasks().get(task or "")
    return str(task) if spec is not None and spec.trainer_rows else "sft"


def with_duration(p: TrainPlan, model: str, task: Optional[str] = None) -> TrainPlan:
    """The plan with an estimated duration: start-up plus the planned real tokens at the pace of
    a finished run of the same model (its events), else that run's seconds per token of capacity."""
    if p.total_steps is None:
        p.basis = "needs the data's row count"
        return p
    pace = measured_pace(model, task) if p.real_tokens else None
    if pace is not None and p.real_tokens:
        p.seconds = pace.setup_s + pace.per_token_s * p.real_tokens
        p.basis = f"measured on {pace.run}: {pace.setup_s:.0f}s start-up + its pace per token"
        return p
    rate = measured_seconds_per_token(model)
    if rate is None:
        p.basis = "no finished run of this model yet; the monitor shows the ETA"
        return p
    p.seconds = rate[0] * p.total_steps * p.tokens_per_step
    p.basis = f"measured on {rate[1]}"
    return p


@dataclass
class LengthCost:
    """Peak training memory at the config's max length and at another one (bytes; None: unknown)."""

    current_length: int
    current: Optional[int]
    other_length: int
    other: Optional[int]


def length_cost(cfg: Any, other_length: int) -> LengthCost:
    """What max length `other_length` (e.g. fitted to the data's p99) costs against the config's own."""
    now = cfg.training.max_length
    return LengthCost(now, memory_at(cfg, now), other_length, memory_at(cfg, other_length))


def plan_lines(p: TrainPlan) -> list[tuple[str, str]]:
    """(label, value) rows, the same in the Review step and the CLI."""
    rows = [("total steps", f"{'≥ ' if p.approx else ''}{p.total_steps}" if p.total_steps else "?")]
    if p.steps_per_epoch:
        rows.append(("  per epoch", f"{p.steps_per_epoch}{' (packed)' if p.packed_rows else ''}"))
    rows.append(("train rows", str(p.train_rows) if p.train_rows else "?"))
    if p.packed_rows:  # steps count packed rows, not samples: say so, or "40 rows, 16 a step, 1 per epoch" reads wrong
        about = "≈ " if p.approx else ""
        n = p.packed_rows
        rows.append(("  packed into", f"{about}{n} row{'' if n == 1 else 's'} of {p.max_length} tok"))
    rows += [
        ("samples/step", f"{p.samples_per_step}{' packed rows' if p.packed_rows else ''}"),
        ("tokens/step", f"≤ {p.tokens_per_step:,}"),
        ("duration", f"≈ {fmt_duration(p.seconds)}" if p.seconds is not None else "?"),
    ]
    return rows


__all__ = [
    "TrainPlan",
    "LengthCost",
    "plan",
    "plan_rows",
    "packed_rows",
    "plan_run",
    "with_duration",
    "measured_seconds_per_token",
    "measured_pace",
    "run_pace",
    "Measured",
    "length_cost",
    "plan_lines",
]
