"""The monitor at the end of a run: header, footer and log agree, with the final step.

A real tiny run of 3 steps that logs every 2 (so its last log says step 2) is followed
live by the monitor from its first event; the folder it leaves is attached again after.
The follower's ordering rules (tui/follow.py) are checked against real run-folder files.
"""

from __future__ import annotations

import itertools
import json

import pytest

from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.tui.follow import EVENTS_SLICE, RunFollower

from .conftest import wait_for


def _header(screen) -> str:
    return str(screen.query_one("#mon-status").render())


def _log_text(screen) -> str:
    return "\n".join(strip.text for strip in screen.query_one("#mon-log").lines)


@pytest.mark.train
async def test_monitor_says_the_final_step_as_soon_as_the_log_does(sample_home_run):
    from sage_ft_tui.tui.app import SageApp
    from sage_ft_tui.tui.screens.monitor import MonitorScreen

    run = sample_home_run
    app = SageApp(initial=lambda app: [MonitorScreen(str(run))])
    async with app.run_test(size=(120, 32)) as pilot:
        screen = app.screen
        seen_end = False

        def ended() -> bool:
            nonlocal seen_end
            if "completed at step 3/3" in _log_text(screen):
                # the moment the log says it, the header and the footer say it too
                header = _header(screen)
                assert "completed" in header and "step 3/3" in header, header
                assert screen.check_action("after", ("merge",)) is True
                assert screen.check_action("cancel_run", ()) is False
                seen_end = True
            return seen_end

        await wait_for(pilot, ended, timeout=240, step=0.05)
        # watched while it ran: its end is told (a toast here; the bell and OSC 9 on a real terminal)
        await wait_for(pilot, lambda: any("completed" in n.message for n in app._notifications))
    logs = [e for e in _events(run) if e["kind"] == "log"]
    assert logs[-1]["step"] == 2  # the last log is behind: only the final event has the step

    # the finished folder, attached again: the same final figures at once
    app = SageApp(initial=lambda app: [MonitorScreen(str(run))])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: "completed" in _header(screen))
        assert "step 3/3" in _header(screen)
        assert not list(app._notifications)  # a finished folder reopened rings nothing

        def footer() -> list[str]:
            return [k.description for k in screen.query("FooterKey")]

        await wait_for(pilot, lambda: footer()[:5] == ["Back", "Merge", "Serve", "Chat", "Evaluate"], timeout=5)
        assert (
            "Cancel" not in footer()
            and "Detach" not in footer()
            and all(k.region.right <= 80 for k in screen.query("FooterKey"))
        )


@pytest.fixture
def sample_home_run(sage_home, sample_data, tiny_model):
    """A real 3-step run of the tiny model, launched (the test follows it while it trains)."""
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.runs.start import start_run

    cfg = RunConfig.from_dict(
        {
            "name": "ends-at-3",
            "task": "instruction",
            "model": {"name": "tiny-demo"},
            "data": {"paths": [str(sample_data["instruction"])]},
            "training": {
                "max_steps": 3,
                "logging_steps": 2,
                "micro_batch_size": 2,
                "grad_accumulation": 1,
                "max_length": 64,
                "packing": False,
            },
        }
    )
    return start_run(cfg, home=sage_home).run


def _events(run) -> list[dict]:
    return [json.loads(x) for x in RunLayout(run).events.read_text().splitlines() if x.strip()]


def _folder(tmp_path, events: list[dict], log: list[str], status: dict):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    lay = RunLayout(run)
    lay.events.write_text("".join(json.dumps(e) + "\n" for e in events))
    lay.train_log.write_text("".join(f"{ln}\n" for ln in log))
    lay.status.write_text(json.dumps(status))
    return run


def _derive_from_status(run):
    return json.loads(RunLayout(run).status.read_text())["state"], ""


def _follower(run) -> RunFollower:
    """A follower whose folder check is due at every poll (a clock that jumps 10 s a call)."""
    ticks = itertools.count(0, 10)
    return RunFollower(run, derive=_derive_from_status, clock=lambda: next(ticks))


def test_a_final_state_in_status_json_waits_for_its_event(tmp_path):
    """status.json is written just before the final event: the follower hands the state over
    with that event, not a poll before it (the header would say `completed` at the old step)."""
    run = _folder(tmp_path, [{"t": 1, "kind": "status", "state": "running"}], ["step 5"], {"state": "running"})
    f = _follower(run)
    first = f.poll()
    assert first.first and first.state == ("running", "") and first.lines == ["step 5"]
    RunLayout(run).status.write_text(json.dumps({"state": "completed"}))
    held = f.poll()
    assert held.state is None and not held.events  # the event is not written yet
    with open(RunLayout(run).events, "a") as fh:
        fh.write(json.dumps({"t": 2, "kind": "status", "state": "completed", "step": 9}) + "\n")
    with open(RunLayout(run).train_log, "a") as fh:
        fh.write("completed at step 9/9\n")
    got = f.poll()
    assert got.events[0]["step"] == 9 and got.lines == ["completed at step 9/9"] and got.state == ("completed", "")


def test_a_worker_that_died_before_its_final_event_is_still_reported(tmp_path):
    run = _folder(tmp_path, [{"t": 1, "kind": "status", "state": "running"}], [], {"state": "failed"})
    f = _follower(run)
    assert f.poll().state is None  # held once: the event may be on its way
    assert f.poll().state == ("failed", "")  # it never came: the folder's word stands


def test_log_lines_wait_until_a_long_replay_has_caught_up(tmp_path):
    """Attaching to a long finished run: train.log's last line ("completed") is not shown
    while the events before it are still being replayed slice by slice."""
    pad = "x" * 200
    n = EVENTS_SLICE // 250 * 3  # about three slices of events
    events = [{"t": i, "kind": "log", "step": i, "loss": 1.0, "pad": pad} for i in range(n)]
    events.append({"t": n, "kind": "status", "state": "completed", "step": n})
    run = _folder(tmp_path, events, [f"completed at step {n}/{n}"], {"state": "completed"})
    f = _follower(run)
    polls = []
    while not polls or polls[-1].events:
        polls.append(f.poll())
    with_lines = [i for i, p in enumerate(polls) if p.lines]
    assert len(polls) > 3 and with_lines
    seen = sum(len(p.events) for p in polls[: with_lines[0] + 1])
    assert seen == len(events)  # the log line comes with (or after) the last event
    first_state = next(i for i, p in enumerate(polls) if p.state)
    assert first_state >= with_lines[0]  # and so does the folder's `completed`


def test_the_terminal_notice_cannot_be_ended_early_by_the_text():
    from sage_ft_tui.tui.notice import osc9

    seq = osc9("run-1 failed: bad\x07 byte \x1b]0;title")
    assert seq.startswith("\x1b]9;sage-ft-tui: run-1 failed") and seq.endswith("\x07")
    assert seq.count("\x07") == 1 and seq.count("\x1b") == 1
