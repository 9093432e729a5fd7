"""What a trial reports to Optuna, read from its run's events.jsonl (engine.runs.events).

The objective is the eval loss (`eval` events) when the run holds rows out (its `start`
event's eval_samples), else the train loss of the `log` events; lower is better. The median
pruner compares a trial's values with the completed trials' at the same step."""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional

PRUNE_AFTER = 5  # completed trials before the median pruner judges others (Optuna's own default)
EVAL = "eval_loss"
TRAIN = "train_loss"
# How each objective is said to people.
OBJECTIVE_TEXT = {EVAL: "eval loss", TRAIN: "final train loss (no held-out split)"}


def objective_of(events: Iterable[dict]) -> Optional[str]:
    """eval_loss when the run evaluates (held-out rows in its start event, or any eval event),
    train_loss when not; None before its start event."""
    found = None
    for ev in events:
        if ev.get("kind") == "start" and found != EVAL:
            found = EVAL if (ev.get("eval_samples") or 0) > 0 else TRAIN
        elif ev.get("kind") == "eval":
            found = EVAL
    return found


def points(events: Iterable[dict], objective: str) -> list[tuple[int, float]]:
    """(step, value) of the objective, in step order; a step logged again after a resume keeps its last value."""
    kind, key = ("eval", "eval_loss") if objective == EVAL else ("log", "loss")
    by_step: dict[int, float] = {}
    for ev in events:
        if ev.get("kind") != kind:
            continue
        step, value = ev.get("step"), ev.get(key)
        if isinstance(step, int) and isinstance(value, (int, float)) and math.isfinite(value):
            by_step[step] = float(value)
    return sorted(by_step.items())


def final_value(events: Iterable[dict], objective: str) -> Optional[float]:
    pts = points(events, objective)
    return pts[-1][1] if pts else None


def report(trial: Any, pts: list[tuple[int, float]], reported: set[int]) -> bool:
    """Report the points not reported yet to an Optuna trial; True when any was new."""
    new = False
    for step, value in pts:
        if step not in reported:
            trial.report(value, step)
            reported.add(step)
            new = True
    return new


def should_prune(trial: Any, events: list[dict], reported: set[int]) -> bool:
    """Report what the events hold and ask the study's pruner (the median rule)."""
    objective = objective_of(events)
    if objective is None:
        return False
    if not report(trial, points(events, objective), reported):
        return False
    return bool(trial.should_prune())


__all__ = [
    "PRUNE_AFTER",
    "EVAL",
    "TRAIN",
    "OBJECTIVE_TEXT",
    "objective_of",
    "points",
    "final_value",
    "report",
    "should_prune",
]
