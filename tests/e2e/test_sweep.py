"""One real sweep over the tiny model, shared by the module: 4 trials of 2 steps with a tiny
held-out split, through the real CLI, the real queue and the real driver. After the first
trial a reboot is played (SIGKILL to the driver, the queue's scheduler and the next trial's
worker if it started) and the sweep resumed (`sweep --resume NAME --wait`)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from sage_ft_tui.engine.fsutil import read_json
from sage_ft_tui.engine.runs.events import read_events
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.sweep.layout import SweepLayout
from sage_ft_tui.engine.sweep.store import driver_pid
from tests.e2e.conftest import cli

pytestmark = [pytest.mark.train, pytest.mark.timeout(600)]  # over the default 180 s on a busy machine
NAME = "lr-r"


def _wait_for(pred, timeout: float, what: str, lay: SweepLayout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    log = lay.driver_log.read_text() if lay.driver_log.exists() else ""
    raise AssertionError(f"{what} not within {timeout}s; driver.log:\n{log[-2000:]}")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_model, sample_data):
    tmp = tmp_path_factory.mktemp("sweep")
    home = tmp / "runs"
    env = {"SAGE_FT_HOME": str(home)}
    base = tmp / "base.yaml"
    base.write_text(
        json.dumps(
            {
                "task": "instruction",
                "model": {"name": "tiny-demo"},
                "data": {"paths": [str(sample_data["instruction"])], "max_samples": 40, "validation_split": 0.1},
                "training": {
                    "max_steps": 2,
                    "eval_steps": 1,
                    "logging_steps": 1,
                    "micro_batch_size": 4,
                    "grad_accumulation": 1,
                    "max_length": 128,
                    "warmup_ratio": 0,
                    "packing": False,
                },
            }
        )
    )
    t0 = time.time()
    # --prune-after 1: the median rule judges trials from the second on (its default waits for 5)
    args = ["--param", "training.learning_rate=loguniform:1e-5,1e-2", "--param", "lora.r=choice:4,8"]
    r = cli("sweep", str(base), *args, "--trials", "4", "--prune-after", "1", "--name", NAME, env=env)
    assert r.returncode == 0, r.stderr + r.stdout
    lay = SweepLayout(home / "sweeps" / NAME)

    from sage_ft_tui.engine.proc import pid_alive
    from sage_ft_tui.engine.queue import scheduler_pid
    from sage_ft_tui.engine.runs.state import read_status

    def second_under_way():
        """The first trial finished and the second one's worker started."""
        rows = (read_json(lay.trials) or {}).get("trials", [])
        worker = read_status(home / f"{NAME}-t001").get("pid") if (home / f"{NAME}-t001").is_dir() else None
        done = [t for t in rows if t["state"] not in ("running", "waiting")]
        return rows if done and worker and pid_alive(worker) else None

    before = _wait_for(second_under_way, 240, "the first trial's end and the second's worker", lay)
    # A reboot: the driver, the queue's scheduler and the second trial's worker all die at once.
    os.kill(read_json(lay.driver)["pid"], signal.SIGKILL)
    os.killpg(read_status(home / f"{NAME}-t001")["pid"], signal.SIGKILL)
    sched = scheduler_pid(home)
    if sched and sched > 0:
        os.kill(sched, signal.SIGKILL)
    _wait_for(lambda: driver_pid(lay) is None, 10, "the killed driver's lock to go", lay)
    r = cli("sweep", "--resume", NAME, "--wait", "--json", env=env, timeout=400)
    assert r.returncode == 0, r.stderr + r.stdout
    result = json.loads(r.stdout.strip().splitlines()[-1])
    yield {"home": home, "lay": lay, "env": env, "before": before, "result": result, "seconds": time.time() - t0}
    from tests.cleanup import stop_leftovers

    stop_leftovers([home], tmp)


def _cli(sweep, monkeypatch, *args):
    """A quick command in-process (the sweep's runs home); the real console script runs the sweep itself."""
    from typer.testing import CliRunner

    from sage_ft_tui.cli.app import app

    monkeypatch.setenv("SAGE_FT_HOME", str(sweep["home"]))
    return CliRunner().invoke(app, list(args))


def test_four_trials_complete_and_the_best_is_named(sweep, monkeypatch):
    res = sweep["result"]
    assert res["trials_done"] == 4 and res["driver"] == "completed", res
    # the trial whose worker the reboot killed is not counted: a new one took its place
    assert [t["number"] for t in res["trials"] if t["state"] == "interrupted"] == [1] and len(res["trials"]) == 5
    assert res["objective"] == "eval loss"
    best = res["best"]
    assert best["state"] == "complete" and best["value"] == min(
        t["value"] for t in res["trials"] if t["state"] == "complete"
    )
    r = _cli(sweep, monkeypatch, "sweep", NAME)
    assert r.exit_code == 0 and f"best: trial #{best['number']} ({best['run_name']})" in r.output, r.output
    assert "ranked by eval loss" in r.output


def test_each_trial_is_a_normal_tagged_run_and_pruning_cancels(sweep):
    res, home = sweep["result"], sweep["home"]
    runs = sorted(p for p in home.iterdir() if RunLayout(p).is_ours())
    assert [p.name for p in runs] == [f"{NAME}-t{i:03d}" for i in range(len(res["trials"]))]
    for t in res["trials"]:
        tag = read_json(RunLayout(t["run"]).sweep_tag)
        assert tag["sweep"] == NAME and tag["trial"] == t["number"] and tag["params"] == t["params"]
    pruned = [t for t in res["trials"] if t["state"] == "pruned"]
    assert pruned, res["trials"]  # the median rule stopped at least one trial
    from sage_ft_tui.engine.runs.state import derive_state

    for t in pruned:
        assert t["note"].startswith(f"pruned at step {t['step']}")
        # cancelled through runs.control.cancel (or it had already finished its 2 steps when the rule spoke)
        assert derive_state(Path(t["run"]))[0] in ("cancelled", "completed", "cancelling")


def test_resume_after_a_killed_driver_reruns_nothing(sweep):
    res, before = sweep["result"], sweep["before"]
    finished = {t["number"] for t in before if t["state"] != "running"}
    assert finished == {0}
    for t in res["trials"]:
        starts = [e for e in read_events(RunLayout(t["run"]).events).events if e["kind"] == "start"]
        assert len(starts) == (1 if t["state"] != "interrupted" else len(starts[:1])), t  # trained once, never again
    log = sweep["lay"].driver_log.read_text()
    assert "trial 1: following" in log and "trial 1: fail — interrupted" in log, log  # adopted, then counted out


def test_best_config_as_a_full_run(sweep, monkeypatch):
    from sage_ft_tui.engine.config.schema import RunConfig

    r = _cli(sweep, monkeypatch, "sweep", NAME, "--best")
    assert r.exit_code == 0, r.output
    cfg = RunConfig.load(sweep["lay"].best_config)
    best = sweep["result"]["best"]
    assert cfg.name is None and cfg.lora.r == best["params"]["lora.r"]
    assert cfg.training.learning_rate == pytest.approx(best["params"]["training.learning_rate"])
    assert f"sage-ft-tui run {sweep['lay'].best_config}" in r.output
    r = _cli(sweep, monkeypatch, "sweep", "--list")
    assert r.output.startswith(f"{NAME}  4/4 trials  driver completed  best #{best['number']}")
    states = [t["state"] for t in sorted(sweep["result"]["trials"], key=lambda t: t["number"])]
    print(f"sweep of 4 trials, rebooted and resumed: {sweep['seconds']:.1f}s; trials {states}")


async def test_sweep_screen_ranks_overlays_and_starts_the_best(sweep, monkeypatch):
    from sage_ft_tui.engine.runs.control import cancel
    from sage_ft_tui.engine.runs.state import list_runs
    from sage_ft_tui.tui.app import SageApp
    from sage_ft_tui.tui.screens.monitor import MonitorScreen
    from sage_ft_tui.tui.screens.runs import RunsScreen
    from sage_ft_tui.tui.screens.sweep import SweepScreen
    from tests.tui.conftest import wait_for

    home, res = sweep["home"], sweep["result"]
    monkeypatch.setenv("SAGE_FT_HOME", str(home))
    trial = str(home / f"{NAME}-t000")
    app = SageApp(cwd=str(home.parent))
    async with app.run_test(size=(130, 44)) as pilot:
        app.open("runs", trial)
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.current() is not None, 60)
        await pilot.press("w")  # Runs → the sweep of the trial under the cursor
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.data is not None, 60)
        screen = app.screen
        table = screen.query_one("DataTable")
        assert table.row_count == len(res["trials"])
        first = table.get_row_at(0)
        assert first[:2] == ["1", f"#{res['best']['number']}"]  # ranked: the best first
        chart = screen.query_one("#sweep-chart").render()
        assert len({str(s.style) for s in chart.spans}) >= 2  # several trials' curves in one chart
        await pilot.press("b")
        await pilot.pause(0.2)
        await pilot.press("y")  # start the best config as a full run
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), 120)
    new = [r for r in list_runs(home) if not r.name.startswith(f"{NAME}-t")]
    assert len(new) == 1
    try:
        cancel(Path(new[0].path))
    except Exception:
        pass  # it may have ended already
