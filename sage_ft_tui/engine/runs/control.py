"""Acting on one run's worker: launch it detached (one launcher at a time), cancel it, ask it
to save now; and delete a stopped run. `engine/runs/start.py` is the one way a run starts; it
calls `launch` here after its checks and warnings."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import flock_wait, fmt_bytes
from sage_ft_tui.engine.hardware.probe import get_backend
from sage_ft_tui.engine.offline import offline_env
from sage_ft_tui.engine.paths import not_ours, permission_error, runs_home
from sage_ft_tui.engine.proc import kill_group, signal_group, spawn_detached
from sage_ft_tui.engine.runs.layout import ACTIVE_STATES, RunLayout
from sage_ft_tui.engine.runs.state import (
    checkpoints,
    derive_state,
    load_config,
    load_status,
    lock_held,
    read_status,
    training_gpus,
    write_status,
)


def worker_command(run: Path, cfg: RunConfig, resume: bool = False) -> tuple[list[str], dict]:
    """The worker's command line and extra environment. Several GPUs → accelerate (DDP)."""
    args = ["-m", "sage_ft_tui.engine.worker", str(run)] + (["--resume"] if resume else [])
    env: dict[str, str] = {}
    gpus = cfg.training.gpus
    if gpus and len(gpus) > 1:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
        launch = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            str(len(gpus)),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
        ]
        return launch + args, env
    if gpus and len(gpus) == 1:
        env["CUDA_VISIBLE_DEVICES"] = str(gpus[0])
    return [sys.executable] + args, env


def check_can_train(run: Path, *, resume: bool = False, force: bool = False) -> None:
    """Refuse to train into a folder that is not ours, or over what a run already holds.

    `run` over a run refuses a completed one and one with checkpoints; `resume` refuses a
    completed one (it would train past its plan and rewrite the adapter); an unknown state
    (status.json unreadable) refuses both unless `force`."""
    run = Path(run)
    verb = "resume it" if resume else "train it"
    if not RunLayout(run).is_ours():
        raise not_ours(run, verb)
    st, _sound = load_status(run)
    if lock_held(run):
        raise SageError(
            f"run {run.name} is already running{_whose(st)}",
            hint=f"attach to it (sage-ft-tui attach {run.name}), or cancel it first",
        )
    state, detail = derive_state(run)
    if state in ACTIVE_STATES:  # launched, its worker not yet holding the lock (still importing)
        raise SageError(
            f"run {run.name} is already {'starting' if state == 'preparing' else state}{_whose(st)}",
            hint=f"attach to it (sage-ft-tui attach {run.name}), or cancel it first",
        )
    if state == "unknown" and not force:
        raise SageError(
            f"run {run.name}: its state is unknown ({detail or 'no status'}), so training could overwrite "
            "a finished run",
            hint=f"look at {RunLayout(run).events} and pass --force to {verb} anyway, "
            f"or train a new run: sage-ft-tui run {RunLayout(run).config}",
        )
    if state == "completed":
        how = (
            f"train more as a new run: `sage-ft-tui run {RunLayout(run).config}` (same config), or continue from "
            f"its adapter: `sage-ft-tui start --from-run {run.name} ...`"
        )
        raise SageError(
            f"run {run.name} has already completed" + (" (resume would train past its plan)" if resume else ""),
            hint=how,
        )
    if not resume and state in ("failed", "cancelled") and checkpoints(run):
        raise SageError(
            f"run {run.name} stopped ({state}) with checkpoints", hint=f"continue it: sage-ft-tui resume {run.name}"
        )


def _whose(st: dict) -> str:
    """ " (worker pid N on HOST, launched 3s ago)" from a status, or ""."""
    parts = []
    if st.get("pid"):
        host = st.get("host")
        parts.append(f"worker pid {st['pid']}" + (f" on {host}" if host and host != socket.gethostname() else ""))
    if st.get("launched"):
        parts.append(f"launched {max(0, time.time() - float(st['launched'])):.0f}s ago")
    return f" ({', '.join(parts)})" if parts else ""


@contextmanager
def _launching(run: Path) -> Iterator[None]:
    """Held by a launcher from its check until status.json names the new worker: a second
    `run`/`resume` of the same run waits here, then finds it starting and is refused (the run
    folder itself is flocked: no new file in the run's layout)."""
    fd = os.open(run, os.O_RDONLY)
    try:
        if not flock_wait(fd, 30):
            raise SageError(
                f"run {run.name} is being launched by another command",
                hint=f"wait for it, then `sage-ft-tui attach {run.name}`",
            )
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def launch(run: Path, *, resume: bool = False, force: bool = False) -> int:
    """Start the worker detached (own session, output to train.log); returns its pid.
    Check, spawn and the status that names the worker happen under the launch lock, so of two
    launches at once one starts the worker and the other is refused naming it."""
    run = Path(run)
    with _launching(run):
        return _launch(run, resume=resume, force=force)


def _launch(run: Path, *, resume: bool, force: bool) -> int:
    check_can_train(run, resume=resume, force=force)
    cfg = load_config(run)

    cmd, extra_env = worker_command(run, cfg, resume)
    env = {**os.environ, **offline_env(cfg), **extra_env, "PYTHONUNBUFFERED": "1"}
    proc = spawn_detached(cmd, cwd=run, log=RunLayout(run).train_log, env=env)
    write_status(
        run,
        state="preparing",
        pid=proc.pid,
        host=socket.gethostname(),
        launched=time.time(),
        exit_reason="",
        resume=resume,
    )
    return proc.pid


def shared_gpu_warning(run: Path, home: Optional[Path] = None) -> str:
    """'' or a warning naming other live runs in the runs folder that train on the same GPU.

    Two runs on one GPU both work while memory lasts; the user should know they share it."""
    run = Path(run).resolve()
    try:
        snap = get_backend().snapshot()
        if not snap.has_gpu:
            return ""
        mine = training_gpus(load_config(run))
        home = Path(home) if home else run.parent
        others = []
        for p in sorted(home.iterdir()):
            if not p.is_dir() or p.resolve() == run or not (RunLayout(p).config).exists():
                continue
            if derive_state(p)[0] not in ACTIVE_STATES:
                continue
            both = mine & training_gpus(load_config(p))
            if both:
                others.append((p.name, both))
    except (OSError, SageError):
        return ""
    if not others:
        return ""
    gpus = sorted(set().union(*(g for _, g in others)))
    free = ""
    for g in snap.gpus:
        if g.index == gpus[0]:
            free = f"; {fmt_bytes(g.mem_free)} free on GPU {g.index} now"
            break
    names = ", ".join(n for n, _ in others)
    return (
        f"warning: GPU {', '.join(map(str, gpus))} is already training {names}; the runs share its memory "
        f"and compute{free} (set training.gpus to another GPU, or expect slower steps and OOM retries)"
    )


# How long a cancel waits for the worker's own checkpoint-and-stop before killing its group.
CANCEL_WAIT_S = 60.0


def cancel(run: Path, *, wait: float = 0.0) -> bool:
    """SIGTERM the worker's process group: it saves a checkpoint and ends `cancelled`."""
    run = Path(run)
    st = read_status(run)
    state, _ = derive_state(run, st)
    if state not in ACTIVE_STATES:
        raise SageError(f"run {run.name} is not running (state: {state})", hint="nothing to cancel")
    pid = st.get("pid")
    if not pid:
        raise SageError(
            f"run {run.name}: status.json holds no worker pid, so it cannot be cancelled from here",
            hint=f"find the worker with `ps` (python -m sage_ft_tui.engine.worker {run}) and stop it with kill",
        )
    if not signal_group(int(pid), signal.SIGTERM):
        return False
    sent = time.time()
    deadline = sent + wait
    while time.time() < deadline:
        if derive_state(run)[0] not in ACTIVE_STATES:
            return True
        time.sleep(0.2)
    # Still running `wait` s after SIGTERM and writing no checkpoint: stuck (a reward that never
    # returns, a hung collective). SIGKILL the group and say so; complete checkpoints are kept.
    ckpts = RunLayout(run).checkpoints
    writing = ckpts.is_dir() and any(p.stat().st_mtime > sent for p in ckpts.rglob("*") if p.is_file())
    if wait > 0 and derive_state(run)[0] in ACTIVE_STATES and not writing:
        kill_group(int(pid), grace=5.0)
        reason = f"killed: the worker did not stop within {wait:.0f}s of SIGTERM (stuck, e.g. in a reward that never returns)"
        write_status(run, state="cancelled", ended=time.time(), exit_reason=reason)
        with open(RunLayout(run).train_log, "a", encoding="utf-8") as fh:
            fh.write(f"cancel: {reason}; its process group was sent SIGKILL\n")
    return True


def request_save(run: Path) -> None:
    """Ask the worker to save a checkpoint at the next step."""
    run = Path(run)
    if derive_state(run)[0] not in ACTIVE_STATES:
        raise SageError(f"run {run.name} is not running", hint="only a running run can save a checkpoint now")
    (RunLayout(run).save_trigger).touch()


def remove_run(run: Path) -> None:
    """Delete a run we made, inside the runs home, that is not running; nothing else."""

    run = Path(run)
    home = runs_home().resolve()
    if run.is_symlink() or run.resolve().parent != home:
        raise SageError(
            f"{run} is not a run folder directly inside the runs home {home}; refusing to delete it",
            hint="only runs under SAGE_FT_HOME are deleted; remove other folders yourself",
        )
    if not RunLayout(run).is_ours():
        raise not_ours(run, "delete it")
    if derive_state(run)[0] in ACTIVE_STATES:
        raise SageError(f"run {run.name} is running", hint="cancel it first (`sage-ft-tui cancel`)")
    try:
        shutil.rmtree(run)
    except PermissionError as e:
        raise permission_error(e.filename or run, "the run folder") from None
