"""Guardrails (issue 24 item 4), through the real detached worker on the tiny model: a NaN made
in the real forward pass at step 5 stops the run `failed` with checkpoint-4 (finite weights, the
state before the bad step) and one line naming the step and what to try; early stopping on eval
loss ends the run `completed` long before max_steps; the loss-spike rule rolls back once with
half the learning rate. The runs start together (module fixture) to keep the suite's time.

The same runs carry the notifications (issue 24 item 3): a local HTTP receiver gets apprise's
json:// posts for the completed run and the failed one (the spike run is launched with
`run --notify`), and a URL nobody answers beside them harms nothing."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sage_ft_tui.engine.runs.control import launch
from sage_ft_tui.engine.runs.create import create_run
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.runs.state import checkpoints, derive_state, read_status
from sage_ft_tui.engine.train.callback import NAN_STEP_ENV

from .conftest import cli, events_of, log_tail, short_config, wait_until

pytestmark = pytest.mark.train

NAN_AT = 5


def _cfg(name: str, steps: int, save_steps: int, guard: dict, **data):
    cfg = short_config(name, steps=steps, save_steps=save_steps)
    raw = cfg.model_dump(mode="json")
    raw["training"]["guard"].update(guard)
    raw["data"].update(data)
    if data.get("validation_split"):
        raw["training"]["eval_steps"] = 1
    return type(cfg).from_dict(raw)


@pytest.fixture(scope="module")
def receiver():
    """A local HTTP server on a free port that keeps every JSON body posted to it, by path."""
    from sage_ft_tui.engine.deploy.net import free_port

    got: dict[str, list[dict]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.setdefault(self.path, []).append(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port, got
    server.shutdown()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model, receiver) -> dict[str, Path]:
    from sage_ft_tui.engine.deploy.net import free_port
    from sage_ft_tui.engine.runs.notify import NOTIFY_ENV

    port, _ = receiver
    home = tmp_path_factory.mktemp("guard") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAGE_FT_HOME", str(home))
        out = {
            "nan": create_run(_cfg("nan", 12, 3, {})),
            # threshold 10: no evaluation after the first counts as better, so patience 1 stops at step 2
            "early": create_run(
                _cfg("early", 40, 50, {"early_stop_patience": 1, "early_stop_threshold": 10.0}, validation_split=0.1)
            ),
            # any logged loss 1% over the median of the last 3 is a spike: the first one rolls back
            "spike": create_run(_cfg("spike", 16, 2, {"spike_factor": 1.01, "spike_window": 3})),
        }
        mp.setenv(NAN_STEP_ENV, str(NAN_AT))
        mp.setenv(NOTIFY_ENV, f"json://127.0.0.1:{port}/nan")
        launch(out["nan"])
        mp.delenv(NAN_STEP_ENV)
        # beside the receiver, a port nobody listens on: that notifier fails, the run does not
        mp.setenv(NOTIFY_ENV, f"json://127.0.0.1:{free_port()}/nobody json://127.0.0.1:{port}/early")
        launch(out["early"])
        mp.delenv(NOTIFY_ENV)
        r = cli("run", out["spike"], "--detach", "--notify", f"json://127.0.0.1:{port}/spike", timeout=120)
        assert r.returncode == 0, r.stderr
        try:
            for run in out.values():
                wait_until(
                    lambda run=run: derive_state(run)[0] in ("completed", "failed"), 240, f"{run.name}\n{log_tail(run)}"
                )
            # the workers notify after their final status: let them finish before the sweep below
            got = receiver[1]
            wait_until(lambda: {"/nan", "/early", "/spike"} <= set(got), 60, f"the notifications: {got}")
        finally:
            from tests.cleanup import stop_leftovers

            stop_leftovers([home])
    return out


def _guards(run: Path) -> list[dict]:
    return [e for e in events_of(run) if e["kind"] == "guard"]


def test_nan_stops_with_the_checkpoint_before_the_bad_step(runs):
    import torch
    from safetensors.torch import load_file

    run = runs["nan"]
    assert derive_state(run)[0] == "failed", log_tail(run)
    (guard,) = _guards(run)
    assert guard["rule"] == "nonfinite" and guard["step"] == NAN_AT and guard["action"] == "stopped"
    # checkpoint-3 (save_steps) and checkpoint-4, saved by the guard before step 5's update
    done = checkpoints(run)
    assert [c.name for c in done] == ["checkpoint-3", f"checkpoint-{NAN_AT - 1}"], done
    assert guard["checkpoint"] == str(done[-1])
    state = json.loads((done[-1] / "trainer_state.json").read_text())
    assert state["global_step"] == NAN_AT - 1
    weights = load_file(str(done[-1] / "adapter_model.safetensors"))
    assert weights and all(torch.isfinite(w).all() for w in weights.values())
    # the logged losses before the bad step are finite and nothing was logged after it
    logs = [e for e in events_of(run) if e["kind"] == "log"]
    assert all(e["step"] <= NAN_AT for e in logs)
    assert not RunLayout(run).adapter.exists()
    err = read_status(run)["error"]
    assert err["error_kind"] == "diverged"
    assert f"step {NAN_AT}" in err["message"] and f"checkpoint-{NAN_AT - 1}" in err["message"]
    assert "learning_rate" in err["hint"] and "precision" in err["hint"] and f"step {NAN_AT}" in err["hint"]
    lines = [ln for ln in (run / "train.log").read_text().splitlines() if "NaN/inf at step" in ln]
    assert len(lines) == 1 and "Traceback" not in (run / "train.log").read_text(), log_tail(run)


def test_early_stopping_ends_before_max_steps(runs):
    run = runs["early"]
    assert derive_state(run)[0] == "completed", log_tail(run)
    (guard,) = _guards(run)
    assert guard["rule"] == "early_stop" and guard["step"] == 2 and guard["action"] == "stopped"
    evals = [e for e in events_of(run) if e["kind"] == "eval"]
    best = min(evals, key=lambda e: e["eval_loss"])
    assert len(evals) == 2 and guard["best_eval_loss"] == pytest.approx(best["eval_loss"])
    assert guard["best_step"] == best["step"] and "early stop at step 2" in guard["message"]
    assert read_status(run)["step"] == 2 and read_status(run)["exit_reason"] == "early stop at step 2"
    assert (RunLayout(run).adapter / "adapter_config.json").exists()


def test_loss_spike_rolls_back_once_with_half_the_learning_rate(runs):
    from sage_ft_tui.engine.config.schema import RunConfig

    run = runs["spike"]
    guards = _guards(run)
    first = guards[0]
    assert first["rule"] == "spike" and first["action"] == "rollback", guards
    assert first["loss"] > 1.01 * first["median"]
    assert first["learning_rate"] == pytest.approx(5e-4)
    assert RunConfig.load(RunLayout(run).config).training.learning_rate == pytest.approx(5e-4)
    starts = [e for e in events_of(run) if e["kind"] == "start"]
    back_to = int(Path(first["checkpoint"]).name.split("-")[1]) if first["checkpoint"] else 0
    assert len(starts) == 2 and starts[1]["resumed_from_step"] == back_to < first["step"]
    # after the rollback the learning rate really is half (the scheduler's rates, not only the config)
    logs = [e for e in events_of(run) if e["kind"] == "log"]
    before = {e["step"]: e["learning_rate"] for e in logs[: len(logs)] if e["t"] < starts[1]["t"]}
    after = {e["step"]: e["learning_rate"] for e in logs if e["t"] >= starts[1]["t"]}
    common = sorted(set(before) & set(after))
    assert common and all(after[s] == pytest.approx(before[s] / 2) for s in common), (before, after)
    if len(guards) > 1:  # a second spike stops the run
        assert guards[1]["action"] == "stopped" and derive_state(run)[0] == "failed"
        assert read_status(run)["error"]["error_kind"] == "diverged"
    else:
        assert derive_state(run)[0] == "completed", log_tail(run)


async def test_monitor_shows_each_guard_as_a_line(runs):
    from sage_ft_tui.tui.app import SageApp
    from sage_ft_tui.tui.screens.monitor import MonitorScreen
    from tests.tui.conftest import wait_for

    expect = {
        "nan": ["DIVERGED", f"NaN/inf at step {NAN_AT}", "learning_rate"],
        "early": ["EARLY STOP", "early stop at step 2"],
        "spike": ["LOSS SPIKE", "rolling back to"] if len(_guards(runs["spike"])) == 1 else ["DIVERGED", "spiked"],
    }
    for name, words in expect.items():
        app = SageApp(initial=lambda app, name=name: [MonitorScreen(str(runs[name]))])
        async with app.run_test(size=(120, 32)) as pilot:
            screen = app.screen

            def banner(screen=screen) -> str:
                w = screen.query_one("#mon-banner")
                return str(w.render()) if w.display else ""

            await wait_for(pilot, lambda words=words: all(w in banner() for w in words), timeout=20)


def test_notifications_reach_a_local_receiver(runs, receiver):
    _, got = receiver
    wait_until(lambda: {"/nan", "/early", "/spike"} <= set(got), 30, f"the notifications: {got}")
    (done,) = got["/early"]
    assert done["title"] == "sage-ft-tui: early completed"
    body = done["message"]
    assert "run early: completed at step 2/40" in body and "final loss" in body and "best eval loss" in body
    assert "took " in body and "guardrail: early stop at step 2" in body
    (failed,) = got["/nan"]
    assert failed["title"] == "sage-ft-tui: nan failed"
    assert f"error: diverged: the loss became NaN/inf at step {NAN_AT}" in failed["message"]
    assert "hint: lower training.learning_rate" in failed["message"]
    (spike,) = got["/spike"]  # --notify on `run`: the worker it launched was told
    assert spike["title"] in ("sage-ft-tui: spike completed", "sage-ft-tui: spike failed")
    # the notifier that failed is one line in train.log, with the run completed all the same
    log = (runs["early"] / "train.log").read_text()
    assert "notify: failed to reach json://127.0.0.1" in log and "notify: sent to json://127.0.0.1" in log
    assert derive_state(runs["early"])[0] == "completed"
    # the URL given to `run --notify` was not written into the run's config (it may hold a secret)
    assert "json://" not in (runs["spike"] / "config.yaml").read_text()


def test_start_notify_is_kept_in_the_config_and_a_bad_url_is_one_line(sage_home, tiny_model):
    from sage_ft_tui.engine.config.schema import RunConfig

    from .conftest import SAMPLES, one_error_line

    r = cli("resume", "no-such-run", "--notify", "nonsense-url", timeout=60)
    line = one_error_line(r)
    assert "--notify" in line and "apprise cannot read" in line
    url = "ntfy://my-topic"
    r = cli("start", "--data", SAMPLES / "qa.jsonl", "--model", "tiny-demo", "--name", "kept", "--notify", url)
    assert r.returncode == 0, r.stderr
    assert RunConfig.load(RunLayout(sage_home / "kept").config).notify.urls == [url]  # `run` later: still told
