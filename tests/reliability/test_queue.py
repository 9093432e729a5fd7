"""The run queue end to end: three real tiny runs queued, run one after another by the real
detached scheduler, which is SIGKILLed mid-queue and started again (twice at once: one runs);
the `queue` commands' refusals; `run --slurm` with a fake `sbatch` on PATH."""

from __future__ import annotations

import json
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
from tests.reliability.conftest import cli, one_error_line, short_config


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


@pytest.mark.train
@pytest.mark.timeout(600)
def test_three_queued_runs_run_one_after_another_across_a_scheduler_kill(sage_home, tiny_model):
    runs = [start_run(short_config(f"q{i}", steps=2, save_steps=100), launch=False).run for i in range(2)]
    for r in runs:
        Q.enqueue(r, tag="overnight")
    pid = Q.ensure_scheduler(poll=0.2)
    assert pid and Q.scheduler_pid() == pid
    assert os.getsid(pid) == pid  # its own session: no terminal whose hangup could end it
    # The third through the command line: created, queued, and the running scheduler found (not a second one).
    cfg = sage_home.parent / "q2.yaml"
    short_config("q2", steps=2, save_steps=100).save(cfg)
    made = cli("start", "--config", cfg, "--queue", "--no-tui")
    assert made.returncode == 0 and f"scheduler running (pid {pid})" in made.stdout, made.stderr[-2000:]
    runs.append(sage_home / "q2")
    assert [e.name for e in Q.entries()] == ["q0", "q1", "q2"]
    Q.move(runs[2], 1)  # reordered while it waits: q2 now starts right after q0... if q0 already started
    Q.move(runs[2], 2)  # ...and back, the order the timestamps are checked in

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
    assert all(e.result == "completed" for e in Q.entries())
    assert [e.tag for e in Q.entries()] == ["overnight", "overnight", None]


def _created(name: str) -> Path:
    from sage_ft_tui.engine.runs.create import create_run

    return create_run(short_config(name, steps=2, save_steps=100), prepare=False)


def test_queue_commands_refuse_bad_input_in_one_line(sage_home):
    Q.enqueue(_created("a"))
    assert "no run 'nosuch'" in one_error_line(cli("queue", "add", "nosuch"))
    listed = json.loads(cli("queue", "--json").stdout)
    assert listed["scheduler_pid"] is None and [e["name"] for e in listed["entries"]] == ["a"]

    state = queue_files().state
    state.write_bytes(b"\x00garbage")
    assert "kept it as .sage-queue.json.corrupt-" in one_error_line(cli("queue"))
    (aside,) = sage_home.glob(".sage-queue.json.corrupt-*")
    assert aside.read_bytes() == b"\x00garbage" and not state.exists()


def test_run_slurm_submits_with_sbatch_when_installed_and_says_how_when_not(sage_home, tmp_path):
    run = _created("s")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "sbatch-args"
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\necho "Submitted batch job 4242"\n')
    sbatch.chmod(0o755)
    script = RunLayout(run).slurm_script
    p = cli("run", "s", "--slurm", "2", "--gpus-per-node", "4", env={"PATH": str(bin_dir)})
    assert p.returncode == 0, p.stderr
    assert "Submitted batch job 4242" in p.stdout and "squeue -j 4242" in p.stdout
    assert record.read_text().split() == [str(script)]  # sbatch got the script the run folder holds
    assert "#SBATCH --nodes=2" in script.read_text() and "#SBATCH --gpus-per-node=4" in script.read_text()
    script.unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    p = cli("run", "s", "--slurm", "1", env={"PATH": str(empty)})
    assert p.returncode == 0 and "sbatch is not on PATH" in p.stdout and f"sbatch {script}" in p.stdout
    assert script.is_file()
