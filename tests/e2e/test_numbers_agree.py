"""One source for each number: on a real run (the session's demo run: the tiny model, 3
epochs), `start`'s plan, the Review step's plan and the Monitor's header say the same total
steps, steps per epoch, step and epoch as the worker's own records (its start event, its logs,
train.log's last epoch) — also after a resume, whose start event says the checkpoint's step."""

from __future__ import annotations

import ast
import json
import re

from sage_ft_tui.engine.runs.events import read_events
from sage_ft_tui.engine.runs.layout import RunLayout


def _header(run, tmp_path) -> str:
    """The Monitor's header for the run, as the app draws it (a static app, no timing)."""
    import asyncio

    from sage_ft_tui.tui.app import SageApp
    from sage_ft_tui.tui.screens.monitor import MonitorScreen

    async def go() -> str:
        app = SageApp(live=False, clock=lambda: 2e9, cwd=str(tmp_path), initial=lambda a: [MonitorScreen(str(run))])
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            return str(app.screen.query_one("#mon-status").render())

    return asyncio.run(go())


def _log_epochs(run) -> list[float]:
    """The epochs the trainer itself printed into train.log (its dicts, last one: the summary)."""
    out = []
    for line in RunLayout(run).train_log.read_text().splitlines():
        if line.startswith("{") and "'epoch'" in line:
            out.append(float(ast.literal_eval(line)["epoch"]))
    return out


def test_plans_monitor_and_worker_agree_on_a_real_run(demo_run, tmp_path, monkeypatch):
    from sage_ft_tui.engine.data.inspect import inspect_data
    from sage_ft_tui.engine.runs.plan import plan, plan_run
    from sage_ft_tui.engine.runs.state import load_config

    run = demo_run["run"]
    monkeypatch.setenv("SAGE_FT_HOME", str(run.parent))
    events = read_events(RunLayout(run).events).events
    start = next(e for e in events if e["kind"] == "start")
    logs = [e for e in events if e["kind"] == "log"]
    final = events[-1]
    assert final["kind"] == "status" and final["state"] == "completed"
    per_epoch = logs[-1]["step"] / logs[-1]["epoch"]  # Trainer's state.epoch = step / steps per epoch
    assert start["num_epochs"] >= 2

    started = plan_run(run)  # what `start` printed
    cfg = load_config(run)
    # the Review step plans from the Data step's inspection of the files the user picked
    ins = inspect_data(
        [str(p) for p in cfg.data.paths], task=cfg.task, model=cfg.model.name, max_length=cfg.training.max_length
    )
    reviewed = plan(cfg, ins)
    for p in (started, reviewed):
        assert p.total_steps == start["total_steps"] == final["step"], (p, start)
        assert p.steps_per_epoch == round(per_epoch), (p, per_epoch)

    head = _header(run, tmp_path)
    epoch = float(re.search(r"epoch (\d+\.\d+)", head).group(1))
    assert f"step {final['step']}/{start['total_steps']}" in head, head
    assert abs(epoch - _log_epochs(run)[-1]) < 0.01, (head, _log_epochs(run))


def test_after_a_resume_the_monitor_says_the_checkpoints_step(demo_run, tmp_path, monkeypatch):
    """A run cancelled between two logs saves a checkpoint past its last log; the resumed
    worker starts from that checkpoint and says so: the Monitor shows that step (and its
    epoch), not the last logged one. Built from the real run's records, cut where a cancel
    would have cut them."""
    run = tmp_path / demo_run["run"].name
    src = RunLayout(demo_run["run"])
    run.mkdir()
    for name in ("config", "train_log", "status"):
        getattr(RunLayout(run), name).write_bytes(getattr(src, name).read_bytes())
    events = read_events(src.events).events
    logs = [e for e in events if e["kind"] == "log"]
    cut = logs[len(logs) // 2]  # the last log before the cancel
    ckpt = cut["step"] + 1  # the cancel's checkpoint, one step later
    kept = [e for e in events if e["kind"] != "log" or e["step"] <= cut["step"]]
    kept = [
        e
        for e in kept
        if e["kind"] in ("start", "log", "eval") or (e["kind"] == "status" and e["state"] != "completed")
    ]
    start = next(e for e in kept if e["kind"] == "start")
    t = cut["t"]
    kept += [
        {"v": 1, "t": t + 1, "kind": "checkpoint", "step": ckpt, "path": f"checkpoint-{ckpt}"},
        {"v": 1, "t": t + 2, "kind": "status", "state": "cancelled", "step": ckpt},
        {"v": 1, "t": t + 9, "kind": "status", "state": "preparing", "resume": True},
        {**start, "t": t + 10, "resumed_from_step": ckpt},
        {"v": 1, "t": t + 10, "kind": "status", "state": "running"},
    ]
    RunLayout(run).events.write_text("".join(json.dumps(e) + "\n" for e in kept))
    monkeypatch.setenv("SAGE_FT_HOME", str(tmp_path))
    head = _header(run, tmp_path)
    assert f"step {ckpt}/{start['total_steps']}" in head, head
    epoch = float(re.search(r"epoch (\d+\.\d+)", head).group(1))
    assert abs(epoch - ckpt * cut["epoch"] / cut["step"]) < 0.01, head
