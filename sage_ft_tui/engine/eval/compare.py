"""Compare runs side by side without loading a model: config differences, data sizes,
final train/eval loss, eval metrics (from each run's eval report), duration, and the
loss / eval-loss curves the TUI overlays. Reads only run-folder files (no torch)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from sage_ft_tui.engine.errors import SageError, cut_middle
from sage_ft_tui.engine.eval.report import read_report
from sage_ft_tui.engine.fsutil import read_json
from sage_ft_tui.engine.paths import resolve_run
from sage_ft_tui.engine.runs.events import read_events
from sage_ft_tui.engine.runs.layout import RunLayout

# Keys that always differ between runs and say nothing about the recipe.
IGNORED_KEYS = ("name",)


@dataclass
class RunSummary:
    name: str
    path: str
    state: str
    config: dict[str, Any]
    train_rows: Optional[int]
    eval_rows: Optional[int]
    train_loss: Optional[float]
    eval_loss: Optional[float]
    steps: Optional[int]
    duration_s: Optional[float]
    train_loss_step: Optional[int] = None  # the step whose loss train_loss is (the last logged one)
    metrics: dict[str, Any] = field(default_factory=dict)
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    eval_curve: list[tuple[int, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def eval_metrics(report: Optional[dict]) -> dict[str, Any]:
    """The headline numbers of an eval report: answer loss base/tuned, greedy scores of the tuned model."""
    if not report:
        return {}
    m: dict[str, Any] = {}
    for side in ("base", "tuned"):
        loss = (report.get("loss") or {}).get(side) or {}
        m[f"{side}_answer_loss"] = loss.get("loss")
    greedy = ((report.get("generation") or {}).get("greedy") or {}).get("tuned") or {}
    for k in ("exact_match", "rouge_l", "bleu", "chrf"):
        m[k] = greedy.get(k)
    judge = (report.get("judge") or {}).get("tuned") or {}
    if judge:
        m["judge"] = judge.get("mean")
    return m


def summarize(run: Path) -> RunSummary:
    import yaml

    lay = RunLayout(run)
    try:
        cfg = yaml.safe_load(lay.config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        cfg = {}
    status = read_json(lay.status, {}) or {}
    counts = (read_json(lay.data_report, {}) or {}).get("counts") or {}
    evs = read_events(lay.events).events if lay.events.is_file() else []
    logs = [(int(e["step"]), float(e["loss"])) for e in evs if e.get("kind") == "log" and e.get("loss") is not None]
    evals = [
        (int(e["step"]), float(e["eval_loss"]))
        for e in evs
        if e.get("kind") == "eval" and e.get("eval_loss") is not None
    ]
    start, end = status.get("started"), status.get("ended")
    if start is None and evs:
        start = evs[0].get("t")
    if end is None and evs:
        end = evs[-1].get("t")

    return RunSummary(
        name=run.name,
        path=str(run),
        state=str(status.get("state") or "unknown"),
        config={k: v for k, v in flatten(cfg).items() if k not in IGNORED_KEYS},
        train_rows=counts.get("train"),
        eval_rows=counts.get("eval"),
        train_loss=logs[-1][1] if logs else status.get("loss"),
        eval_loss=evals[-1][1] if evals else status.get("eval_loss"),
        # the run's own step count (status.json, the final event), not the last logged step:
        # with logging_steps 10 a completed 3-step run logs step 1 only
        steps=_steps(status, evs, logs),
        train_loss_step=logs[-1][0] if logs else None,
        duration_s=round(float(end) - float(start), 1) if start is not None and end is not None else None,
        metrics=eval_metrics(read_report(run)),
        loss_curve=logs,
        eval_curve=evals,
    )


def _steps(status: dict, evs: list[dict], logs: list[tuple[int, float]]) -> Optional[int]:
    found = [int(e["step"]) for e in evs if isinstance(e.get("step"), int) and e.get("kind") != "hw"]
    if isinstance(status.get("step"), int):
        found.append(status["step"])
    found += [s for s, _ in logs]
    return max(found) if found else None


def config_differences(summaries: list[RunSummary]) -> dict[str, list[Any]]:
    """Every config key whose value is not the same in all runs: key → one value per run."""
    keys = sorted({k for s in summaries for k in s.config})
    diffs = {}
    for k in keys:
        vals = [s.config.get(k) for s in summaries]
        if any(v != vals[0] for v in vals[1:]):
            diffs[k] = vals
    return diffs


# Keys that name a run best, first in its label when they differ (then the rest, by key).
LABEL_FIRST = ("task", "model.name")
LABEL_KEYS = 3  # differing keys a label names before "+N more"


def _label_value(key: str, v: Any) -> str:
    if key == "model.name" and isinstance(v, str):
        return v.rstrip("/").rsplit("/", 1)[-1]  # the model, not its org or folder
    if key == "task":
        return str(v)
    return f"{key.rsplit('.', 1)[-1]}={cut_middle(fmt(v), 24)}"


def run_labels(result: dict) -> list[str]:
    """A column label per run from what differs between the runs' configs (task, model, then
    the changed keys: "qa · tiny-demo · r=8"), never a cut run name. Runs whose configs
    are the same are told apart by their number and the end of their name (the date)."""
    diffs = result["config_differences"]
    keys = [k for k in LABEL_FIRST if k in diffs] + sorted(k for k in diffs if k not in LABEL_FIRST)
    labels = []
    for i, run in enumerate(result["runs"]):
        parts = [_label_value(k, diffs[k][i]) for k in keys[:LABEL_KEYS]]
        if len(keys) > LABEL_KEYS:
            parts.append(f"+{len(keys) - LABEL_KEYS} more")
        labels.append(" · ".join(parts) if keys else f"#{i + 1} {_when(run['name'])}")
    return labels


def _when(name: str) -> str:
    """A run name's date (names end in -YYYYMMDD-HHMMSS), else the whole name."""
    m = re.search(r"(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})\d{2}$", name)
    return f"{m[1]}-{m[2]}-{m[3]} {m[4]}:{m[5]}" if m else name


def compare_runs(refs: list[str]) -> dict:
    if len(refs) < 2:
        raise SageError("compare needs at least two runs", hint="e.g. sage-ft-tui compare RUN_A RUN_B")
    runs = [resolve_run(r) for r in refs]
    if len({r.resolve() for r in runs}) < len(runs):
        raise SageError("the same run is given twice", hint="give different runs to compare")
    summaries = [summarize(r) for r in runs]
    return {"runs": [s.to_dict() for s in summaries], "config_differences": config_differences(summaries)}


# The rows of the side-by-side table: (label, how to read it from a summary dict).
TABLE_ROWS: list[tuple[str, Any]] = [
    ("state", lambda s: s["state"]),
    ("train rows", lambda s: s["train_rows"]),
    ("eval rows", lambda s: s["eval_rows"]),
    ("steps", lambda s: s["steps"]),
    ("final train loss", lambda s: _at_step(s["train_loss"], s.get("train_loss_step"), s["steps"])),
    ("final eval loss", lambda s: s["eval_loss"]),
    ("answer loss (base)", lambda s: s["metrics"].get("base_answer_loss")),
    ("answer loss (tuned)", lambda s: s["metrics"].get("tuned_answer_loss")),
    ("exact match %", lambda s: s["metrics"].get("exact_match")),
    ("ROUGE-L", lambda s: s["metrics"].get("rouge_l")),
    ("BLEU", lambda s: s["metrics"].get("bleu")),
    ("chrF", lambda s: s["metrics"].get("chrf")),
    ("judge (1-10)", lambda s: s["metrics"].get("judge")),
    ("duration", lambda s: s["duration_s"]),
]


def _at_step(loss: Any, step: Optional[int], steps: Optional[int]) -> Any:
    """The last logged loss, with its step when that is not the run's last step."""
    if loss is None or step is None or step == steps:
        return loss
    return f"{fmt(loss)} (step {step})"


def fmt(v: Any, label: str = "") -> str:
    if v is None:
        return "—"
    if label == "duration":
        v = float(v)
        return f"{v:.0f} s" if v < 120 else f"{v / 60:.1f} min"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def table_rows(result: dict) -> list[list[str]]:
    """[label, value per run...] for every row, then one row per config difference."""
    rows = [[label, *(fmt(get(s), label) for s in result["runs"])] for label, get in TABLE_ROWS]
    rows += [[k, *(fmt(v) for v in vals)] for k, vals in result["config_differences"].items()]
    return rows
