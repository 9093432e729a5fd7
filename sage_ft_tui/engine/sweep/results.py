"""A sweep's trials ranked by the objective, and its best config as a full run.

Reads the driver's trials.json and the trials' run folders only (no optuna), so `sweep NAME`
and the TUI's Sweep view are cheap; a trial still running shows its latest figure."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import read_json
from sage_ft_tui.engine.runs.events import read_events
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.runs.state import derive_state
from sage_ft_tui.engine.sweep import prune
from sage_ft_tui.engine.sweep.layout import SweepLayout
from sage_ft_tui.engine.sweep.params import trial_config
from sage_ft_tui.engine.sweep.store import SweepSpec, driver_pid, load_spec

# Ranking order: finished trials by their value, then those under way, then pruned, then failed.
_ORDER = {"complete": 0, "running": 1, "queued": 1, "waiting": 1, "pruned": 2, "failed": 3, "interrupted": 3}


@dataclass
class TrialRow:
    number: int
    state: str  # complete, running, queued (created, waiting in the queue), pruned, failed, interrupted (not counted)
    params: dict[str, Any] = field(default_factory=dict)
    value: Optional[float] = None  # the objective: final for complete, the last reported otherwise
    step: Optional[int] = None
    objective: Optional[str] = None  # prune.EVAL or prune.TRAIN
    run: Optional[str] = None
    note: str = ""

    @property
    def run_name(self) -> str:
        return Path(self.run).name if self.run else ""

    def to_dict(self) -> dict:
        return asdict(self) | {"run_name": self.run_name}


@dataclass
class SweepResults:
    name: str
    spec: SweepSpec
    trials: list[TrialRow]  # ranked, best first
    driver: str  # running, completed, stopped, failed, not started
    driver_error: str = ""

    @property
    def done(self) -> int:
        return sum(1 for t in self.trials if t.state in ("complete", "pruned", "failed"))

    @property
    def best(self) -> Optional[TrialRow]:
        return next((t for t in self.trials if t.state == "complete"), None)

    @property
    def objective_text(self) -> str:
        kinds = {t.objective for t in self.trials if t.objective and t.value is not None}  # what is ranked
        if kinds == {prune.TRAIN}:
            return prune.OBJECTIVE_TEXT[prune.TRAIN]
        if kinds == {prune.EVAL} or not kinds:
            return prune.OBJECTIVE_TEXT[prune.EVAL]
        return "eval loss where the trial held rows out, else final train loss"

    def to_dict(self) -> dict:
        best = self.best
        return {
            "name": self.name,
            "trials_planned": self.spec.trials,
            "trials_done": self.done,
            "driver": self.driver,
            "driver_error": self.driver_error,
            "objective": self.objective_text,
            "params": [p.text for p in self.spec.params],
            "best": best.to_dict() if best else None,
            "trials": [t.to_dict() for t in self.trials],
        }


def _live(row: TrialRow) -> TrialRow:
    """A trial under way: its run's own state and latest figure (the driver may be gone)."""
    if not row.run or not RunLayout(row.run).is_ours():
        return row
    state = derive_state(Path(row.run))[0]
    if state == "created":
        row.state = "queued"
    evs = read_events(RunLayout(row.run).events).events
    row.objective = prune.objective_of(evs) or row.objective
    pts = prune.points(evs, row.objective) if row.objective else []
    if pts:
        row.step, row.value = pts[-1]
    return row


def rank(rows: list[TrialRow]) -> list[TrialRow]:
    return sorted(
        rows,
        key=lambda t: (_ORDER.get(t.state, 4), t.value if t.value is not None else float("inf"), t.number),
    )


def sweep_results(lay: SweepLayout) -> SweepResults:
    spec = load_spec(lay)
    raw = read_json(lay.trials) or {}
    rows = []
    for t in raw.get("trials", []) if isinstance(raw, dict) else []:
        try:
            row = TrialRow(
                number=int(t["number"]),
                state=str(t.get("state", "")),
                params=dict(t.get("params") or {}),
                value=t.get("value"),
                step=t.get("step"),
                objective=t.get("objective"),
                run=t.get("run"),
                note=str(t.get("note") or ""),
            )
        except (KeyError, TypeError, ValueError):
            continue
        rows.append(_live(row) if row.state in ("running", "waiting") else _with_objective(row))
    d = read_json(lay.driver) or {}
    d = d if isinstance(d, dict) else {}
    driver = "running" if driver_pid(lay) else (str(d.get("state")) if d.get("state") not in (None, "running") else "")
    if not driver:
        driver = "stopped" if d else "not started"
    return SweepResults(lay.name, spec, rank(rows), driver, str(d.get("error") or ""))


def _with_objective(row: TrialRow) -> TrialRow:
    if row.objective is None and row.run and RunLayout(row.run).events.is_file():
        row.objective = prune.objective_of(read_events(RunLayout(row.run).events).events)
    return row


def best_config(lay: SweepLayout) -> tuple[TrialRow, RunConfig]:
    """The best complete trial and the base config with its values (no run name: a new run)."""
    res = sweep_results(lay)
    best = res.best
    if best is None:
        raise SageError(
            f"sweep {res.name}: no trial has completed yet ({res.done} of {res.spec.trials} done)",
            hint=f"wait for one, or see `sage-ft-tui sweep {res.name}`",
        )
    cfg = trial_config(res.spec.base_config(), best.params, "x").model_copy(update={"name": None})
    return best, cfg


def write_best(lay: SweepLayout) -> tuple[TrialRow, Path]:
    """best.yaml in the sweep folder: the best trial's config as a full run (`run best.yaml`)."""
    best, cfg = best_config(lay)
    cfg.save(lay.best_config)
    return best, lay.best_config


__all__ = ["TrialRow", "SweepResults", "sweep_results", "rank", "best_config", "write_best"]
