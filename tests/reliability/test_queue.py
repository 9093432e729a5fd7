"""The run queue end to end: three real tiny runs queued, run one after another by the real
detached scheduler, which is SIGKILLed mid-queue and started again (twice at once: one runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sage_ft_tui.engine import queue as Q
from sage_ft_tui.engine.queue.state import queue_files
from sage_ft_tui.engine.runs.events import read_events
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.runs.start import start_run
from tests.reliability.conftest import short_config

pytestmark = pytest.mark.slow


def _states(home: Path) -> dict[str, str]:
    return {e.name: e.state for e in Q.entries(home)}


def _wait(pred, timeout: float, what: str, home: Path):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    log = queue_files(home).scheduler_log
    tail = log.read_text()[-2000:] if log.exists() else ""
    raise AssertionError(f"{what} not within {timeout}s; queue {_states(home)}; scheduler log:\n{tail}")


def _span(run: Path) -> tuple[float, float, int]:
    """(first event time, last event time, how many `start` events) of a finished run."""
    evs = read_events(RunLayout(run).events).events
    return evs[0]["t"], evs[-1]["t"], sum(1 for e in evs if e.get("kind") == "start")


def test_three_queued_runs_run_one_after_another_across_a_scheduler_kill(sage_home, tiny_model):
    runs = [start_run(short_config(f"q{i}", steps=2, save_steps=100), launch=False).run for i in range(3)]
    for r in runs:
        Q.enqueue(r, tag="overnight")
    assert [e.name for e in Q.entries()] == ["q0", "q1", "q2"]

    pid = Q.ensure_scheduler(poll=0.2)
    assert pid and Q.scheduler_pid() == pid
    assert Q.ensure_scheduler() == pid  # one runs: a second ensure finds it

    # Mid-queue: the second run has started. SIGKILL the scheduler (no goodbye, lock left by the kernel).
    _wait(lambda: _states(sage_home).get("q1") == "started", 180, "q1 started", sage_home)
    os.kill(pid, signal.SIGKILL)
    _wait(lambda: Q.scheduler_pid() is None, 10, "the killed scheduler's lock released", sage_home)
    assert _states(sage_home)["q0"] == "done"

    # Restart: two ensures at once (and a bare second scheduler process) → one scheduler.
    pids: list = []
    threads = [threading.Thread(target=lambda: pids.append(Q.ensure_scheduler(poll=0.2))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(pids)) == 1 and pids[0] != pid, pids
    extra = subprocess.run(
        [sys.executable, "-m", "sage_ft_tui.engine.queue", str(sage_home)], capture_output=True, text=True, timeout=60
    )
    assert extra.returncode == 0 and "another scheduler runs" in extra.stdout

    _wait(lambda: all(s == "done" for s in _states(sage_home).values()), 240, "all three done", sage_home)
    _wait(lambda: Q.scheduler_pid() is None, 15, "the scheduler exits once the queue is empty", sage_home)

    spans = [_span(r) for r in runs]
    assert [n for *_, n in spans] == [1, 1, 1]  # the run running across the kill was not started twice
    for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
        assert end <= start, spans  # never overlapping
    assert all(e.result == "completed" and e.tag == "overnight" for e in Q.entries())
