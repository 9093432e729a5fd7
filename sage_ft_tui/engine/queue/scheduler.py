"""The queue's scheduler: one small detached process per runs home that starts queued runs.

`ensure_scheduler` starts it (like the training worker: its own session, SIGHUP ignored,
so an SSH drop does not end it) unless one runs. It holds an flock on
`.sage-queue.scheduler` for its life — the lock, not the pid written in it, says whether a
scheduler runs, so a stale pid from a killed one never blocks a new one, and of two started
at once the second exits at once. Each poll, under the state lock, it

1. marks started entries whose run ended (`derive_state`) done or failed — a failed run
   does not stop the queue;
2. goes through the queued entries in order and starts each through `launch_run` (the one
   way a run starts) when `fit.place` finds it GPUs (or, without GPUs, no other run of
   ours training); the first that must wait holds the ones behind it (first come, first
   served, no overtaking);
3. exits when nothing is queued or started, releasing its lock while it still holds the
   state lock, so an `enqueue` + `ensure_scheduler` at that moment starts a new one.

Restart-safe: a queued entry whose run is already active or ended (the scheduler was
killed between the launch and writing the state) is adopted, never launched twice — the
run's own lock and status refuse a second launch anyway.

SIGTERM (`queue stop`) ends it at its next poll; the run training then goes on (it is its
own process) and the queued ones wait until `queue start`.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import flock_held
from sage_ft_tui.engine.hardware.probe import get_backend
from sage_ft_tui.engine.proc import signal_group, spawn_detached
from sage_ft_tui.engine.queue.fit import Active, place
from sage_ft_tui.engine.queue.state import (
    DONE,
    FAILED,
    QUEUED,
    STARTED,
    QueueEntry,
    QueueFiles,
    flocked,
    queue_files,
    read_entries,
    write_entries,
)
from sage_ft_tui.engine.runs.layout import ACTIVE_STATES, FINAL_STATES, RunLayout
from sage_ft_tui.engine.runs.start import launch_run
from sage_ft_tui.engine.runs.state import derive_state, load_config, read_status, training_gpus

POLL_S = 2.0
# How long ensure_scheduler waits for the process it spawned to take the scheduler lock.
START_WAIT_S = 30.0


def scheduler_pid(home: Optional[Path] = None) -> Optional[int]:
    """The pid of the scheduler running for this runs home, or None."""
    files = queue_files(home)
    if not flock_held(files.scheduler_lock):
        return None
    try:
        return int(files.scheduler_lock.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return -1  # held, its pid not written yet


def ensure_scheduler(home: Optional[Path] = None, *, poll: Optional[float] = None) -> Optional[int]:
    """Start the detached scheduler unless one runs; its pid (None: nothing is queued).
    Returns once the scheduler holds its lock."""
    files = queue_files(home)
    with flocked(files.lock):  # one ensure at a time; a scheduler exits only under this lock too
        pid = scheduler_pid(files.home)
        if pid:
            return pid
        if not any(e.state in (QUEUED, STARTED) for e in read_entries(files)):
            return None
        cmd = [sys.executable, "-m", "sage_ft_tui.engine.queue", str(files.home)]
        if poll is not None:
            cmd += ["--poll", str(poll)]
        proc = spawn_detached(cmd, cwd=files.home, log=files.scheduler_log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.time() + START_WAIT_S
        while time.time() < deadline:
            pid = scheduler_pid(files.home)
            if pid and pid > 0:
                return pid
            if proc.poll() is not None:
                raise SageError(
                    f"the queue's scheduler exited at once (code {proc.returncode})",
                    hint=f"see {files.scheduler_log}",
                    kind="internal",
                )
            time.sleep(0.05)
        return proc.pid


def stop_scheduler(home: Optional[Path] = None, *, wait: float = 10.0) -> Optional[int]:
    """Ask the scheduler to exit (SIGTERM; it starts nothing more, running runs go on);
    the pid it had, or None when none ran."""
    pid = scheduler_pid(home)
    if not pid or pid < 0:
        return None
    signal_group(pid, signal.SIGTERM)
    deadline = time.time() + wait
    while time.time() < deadline and scheduler_pid(home):
        time.sleep(0.1)
    return pid


# ---- the scheduler process ---------------------------------------------------------------


def _log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}", flush=True)


def _active_runs(home: Path, items: list[QueueEntry], gpu: bool):
    """The runs of ours training now (in the runs home, and those started from this queue)."""
    folders = {e.run.resolve() for e in items if e.state == STARTED}
    try:
        folders |= {p.resolve() for p in home.iterdir() if p.is_dir() and RunLayout(p).is_ours()}
    except OSError:
        pass
    out = []
    for p in sorted(folders):
        try:
            if derive_state(p)[0] not in ACTIVE_STATES:
                continue
            gpus = training_gpus(load_config(p)) if gpu else set()
        except (OSError, SageError):
            gpus = {0} if gpu else set()
        out.append(Active(p.name, gpus))
    return out


def _ended(e: QueueEntry, state: str, detail: str) -> bool:
    """Mark an entry whose run reached `state`; True when it changed."""
    if state in ACTIVE_STATES:
        return False
    st = read_status(e.run)
    e.state = DONE if state == "completed" else FAILED
    e.result = state if state in FINAL_STATES else ""
    e.ended = st.get("ended") or time.time()
    e.note = detail or ("" if state in FINAL_STATES else f"the run's state is {state}")
    _log(f"{e.name}: {e.state} ({state}{': ' + detail if detail else ''})")
    return True


def _start(e: QueueEntry, home: Path, items: list[QueueEntry], snap) -> tuple[bool, bool]:
    """Try to start one queued entry: (changed, may the entries behind it be looked at)."""
    if not RunLayout(e.run).is_ours():
        e.state, e.note, e.ended = FAILED, f"{e.run} is gone or is not a run folder", time.time()
        _log(f"{e.name}: failed ({e.note})")
        return True, True
    state, detail = derive_state(e.run)
    if state in ACTIVE_STATES:  # launched before a kill could record it: adopt, never launch twice
        e.state, e.pid, e.note = STARTED, read_status(e.run).get("pid"), ""
        e.started = e.started or time.time()
        _log(f"{e.name}: already {state}; following it")
        return True, True
    if state != "created":
        return _ended(e, state, detail), True
    try:
        cfg = load_config(e.run)
        need_bytes = None
        if snap.has_gpu:
            try:
                from sage_ft_tui.engine.hardware.estimate import estimate_for_config

                need_bytes = estimate_for_config(cfg, snap).total
            except Exception:  # a model not on this machine yet: place by "no process" instead
                need_bytes = None
        pinned = cfg.training.gpus
        p = place(
            snap,
            _active_runs(home, items, snap.has_gpu),
            need=len(pinned) if pinned else 1,
            candidates=e.gpus or pinned,
            need_bytes=need_bytes,
            share_gpu=e.share_gpu,
        )
        if p.never:
            e.state, e.note, e.ended = FAILED, p.never, time.time()
            _log(f"{e.name}: failed ({p.never})")
            return True, True
        if p.wait:
            changed = e.note != p.wait
            e.note = p.wait
            return changed, False
        if p.gpus is not None and p.gpus != (pinned or [0]):
            cfg.training.gpus = p.gpus  # the GPUs it was placed on: config.yaml says where it trained
            cfg.save(RunLayout(e.run).config)
        started = launch_run(e.run)
    except SageError as err:
        e.state, e.note, e.ended = FAILED, err.oneline().removeprefix("error: "), time.time()
        _log(f"{e.name}: could not start: {e.note}")
        return True, True
    except Exception as err:  # the queue goes on; the traceback is in the scheduler's log
        traceback.print_exc()
        e.state, e.note, e.ended = FAILED, f"internal error while starting it: {err!r}", time.time()
        return True, True
    e.state, e.pid, e.started, e.note = STARTED, started.pid, time.time(), ""
    where = f"GPU {', '.join(map(str, p.gpus))}" if p.gpus else "the CPU"
    _log(f"{e.name}: started (pid {started.pid}) on {where}")
    for w in started.warnings:
        _log(f"{e.name}: {w}")
    return True, True


def poll_once(files: QueueFiles, items: list[QueueEntry]) -> bool:
    """One pass over the entries (the caller holds the state lock); True when something changed."""
    changed = False
    for e in items:
        if e.state == STARTED:
            changed |= _ended(e, *derive_state(e.run))
    if not any(e.state == QUEUED for e in items):
        return changed

    snap = get_backend().snapshot()
    for e in items:
        if e.state != QUEUED:
            continue
        did, go_on = _start(e, files.home, items, snap)
        changed |= did
        if not go_on:
            break
    return changed


def _take_lock(files: QueueFiles) -> Optional[int]:
    """The scheduler lock, with our pid written in it; None when another scheduler holds it."""
    fd = os.open(files.scheduler_lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def serve_queue(home: Path, poll: float = POLL_S) -> int:
    """The scheduler's life (exit code): take the lock, poll until the queue is empty or SIGTERM."""
    files = QueueFiles(Path(home))
    stop = {"asked": False}

    def _stop(signum, frame):
        stop["asked"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # an SSH drop does not end the queue
    fd = _take_lock(files)
    if fd is None:
        _log(f"another scheduler runs for {files.home} (pid {scheduler_pid(files.home)}); exiting")
        return 0
    _log(f"scheduler pid {os.getpid()} for {files.home}")
    while True:
        with flocked(files.lock, wait=300.0):
            try:
                items = read_entries(files)
            except SageError as err:  # set aside by read_entries; nothing left to run
                _log(err.oneline())
                items = []
            try:
                if not stop["asked"] and poll_once(files, items):
                    write_entries(files, items)
            except Exception:  # overnight, one bad pass (a probe error, a full disk) must not end the queue
                traceback.print_exc()
                items = read_entries(files)
            if stop["asked"] or not any(e.state in (QUEUED, STARTED) for e in items):
                os.close(fd)  # released under the state lock: a new enqueue + ensure starts a new one
                _log("stopped (queue stop)" if stop["asked"] else "queue empty; exiting")
                return 0
        deadline = time.time() + poll
        while time.time() < deadline and not stop["asked"]:
            time.sleep(min(0.1, poll))


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sage_ft_tui.engine.queue")
    ap.add_argument("home", type=Path)
    ap.add_argument("--poll", type=float, default=POLL_S)
    args = ap.parse_args(argv)
    return serve_queue(args.home, args.poll)


__all__ = ["ensure_scheduler", "stop_scheduler", "scheduler_pid", "serve_queue", "poll_once", "POLL_S"]
