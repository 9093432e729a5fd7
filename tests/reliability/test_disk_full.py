"""Disk full while writing a checkpoint or the event stream.

The worker runs under a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored, so a write past
it fails with EFBIG the way a full disk fails with ENOSPC). The run must end `failed`
with a disk error that says how much space is needed, earlier checkpoints stay intact and
loadable, the half-written checkpoint is skipped by `resume`, and attach says what
happened."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sage_ft_tui.engine.runs.control import launch
from sage_ft_tui.engine.runs.create import create_run
from sage_ft_tui.engine.runs.state import checkpoints, derive_state, read_status

from .conftest import cli, events_of, log_tail, short_config, tree_digest, wait_until

pytestmark = [pytest.mark.train, pytest.mark.timeout(600)]  # over the default 180 s on a busy machine


def _limited_worker(run: Path, limit: int, resume: bool) -> subprocess.Popen:
    def pre():
        os.setsid()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    cmd = [sys.executable, "-m", "sage_ft_tui.engine.train.worker", str(run)] + (["--resume"] if resume else [])
    # Output through a pipe (not a file: the limit would cut train.log too); copied to train.log here.
    proc = subprocess.Popen(
        cmd,
        cwd=str(run),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=pre,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )

    def copy():
        with open(run / "train.log", "ab") as fh:
            for chunk in iter(lambda: proc.stdout.read1(4096), b""):
                fh.write(chunk)
                fh.flush()

    threading.Thread(target=copy, daemon=True).start()
    return proc


def _first_segment(name: str, steps: int, save: int, until_ckpt: int) -> Path:
    """A run that got to checkpoint `until_ckpt`, then was killed (no limit yet)."""
    run = create_run(short_config(name, steps=steps, save_steps=save))
    launch(run)
    wait_until(
        lambda: any(e["kind"] == "checkpoint" and e["step"] >= until_ckpt for e in events_of(run)),
        240,
        f"checkpoint {until_ckpt}\n{log_tail(run)}",
        poll=0.01,
    )
    os.killpg(int(read_status(run)["pid"]), signal.SIGKILL)
    wait_until(lambda: derive_state(run)[0] == "failed", 30, "the kill to show")
    return run


def _assert_disk_failure(run: Path, proc: subprocess.Popen) -> str:
    assert proc.wait(timeout=240) == 1, log_tail(run)
    st = read_status(run)
    assert st["state"] == "failed" and derive_state(run)[0] == "failed"
    reason = st["exit_reason"]
    assert reason.startswith("disk: "), reason + "\n" + log_tail(run)
    assert "file size limit" in reason and "needs about" in reason and "free" in reason, reason
    assert "Traceback" not in log_tail(run, 100000), log_tail(run)
    return reason


def test_disk_full_while_writing_a_checkpoint_then_the_event_stream(sage_home, tiny_model):
    """One run, four worker lives: train to checkpoint 3 (killed); resume under a limit that
    a checkpoint file exceeds (fails saving checkpoint 6); resume under a limit that only
    events.jsonl reaches (fails writing an event); resume with space: completes."""
    run = _first_segment("diskfull", steps=15, save=3, until_ckpt=3)
    good = checkpoints(run)
    assert good
    before = {p.name: tree_digest(p) for p in good}
    biggest = max(f.stat().st_size for f in good[-1].iterdir())

    # 1. a checkpoint write fails
    reason = _assert_disk_failure(run, _limited_worker(run, biggest // 2, resume=True))
    assert {p.name: tree_digest(p) for p in good} == before and checkpoints(run) == good
    partial = [p for p in checkpoints(run, complete_only=False) if p not in good]
    assert partial, "no partial checkpoint: the limit did not hit the save"
    a = cli("attach", run.name, "--no-tui", "--json", timeout=60)
    assert a.returncode == 1 and "Traceback" not in a.stderr
    assert '"error_kind": "disk"' in a.stdout and "needs about" in a.stdout
    print("checkpoint:", reason)

    # 2. an event-stream write fails: make events.jsonl the biggest file the worker writes
    # (1 MB of old hardware readings) so the limit hits it and nothing else.
    hw = b'{"v":1,"t":1,"kind":"hw","gpus":[],"cpu_percent":1.0,"ram_used":1,"ram_total":2}\n'
    with open(run / "events.jsonl", "ab") as fh:
        fh.write(hw * (1_000_000 // len(hw)))
    size = (run / "events.jsonl").stat().st_size
    assert biggest < size
    limit = size + 1500
    reason = _assert_disk_failure(run, _limited_worker(run, limit, resume=True))
    assert (run / "events.jsonl").stat().st_size <= limit
    assert {p.name: tree_digest(p) for p in good} == before and checkpoints(run)[: len(good)] == good
    a = cli("attach", run.name, "--no-tui", "--json", timeout=60)
    assert a.returncode == 1 and "Traceback" not in a.stderr
    assert f"{run.name} is failed (disk: " in a.stderr, a.stderr
    print("events:", reason)

    # 3. with space again, resume continues from the newest intact checkpoint and finishes
    newest = int(checkpoints(run)[-1].name.split("-")[1])
    r = cli("resume", run.name, "--no-tui", "--json", timeout=300)
    assert r.returncode == 0, r.stderr + log_tail(run)
    evs = events_of(run)
    assert [e for e in evs if e["kind"] == "start"][-1]["resumed_from_step"] == newest
    assert [e["step"] for e in evs if e["kind"] == "log"][-1] == 15 and derive_state(run)[0] == "completed"


@pytest.mark.parametrize(
    "exc, words",
    [
        (OSError(28, "No space left on device"), "the disk is full"),
        (OSError(122, "Disk quota exceeded"), "the disk quota is exceeded"),
        (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 97600 vs 97488"), "the disk is full"),
        (RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed"), "the disk is full"),
    ],
)
def test_write_failures_are_disk_errors_with_the_space_needed(exc, words, sage_home, monkeypatch):
    """ENOSPC, EDQUOT and torch.save's errno-less zip-writer failures all read as disk errors."""
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.train import worker

    run = create_run(RunConfig.from_dict({"name": "w", "task": "qa", "data": {"paths": ["x"]}}), prepare=False)
    monkeypatch.setattr(worker, "free_bytes", lambda p: 1000)
    err = worker.classify(exc, run)
    assert err.kind == "disk" and words in err.message and "needs about" in err.message, err.message
    assert "resume w" in err.hint
    assert worker.classify(ValueError("something else"), run).kind == "internal"
