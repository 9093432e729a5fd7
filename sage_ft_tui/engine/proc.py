"""The one process helper: is a pid alive, signal or kill a process group, spawn detached.

The training worker and the model servers run in their own session (so a dropped SSH
connection does not end them) and are ended as a whole process group. Used by
runs/control.py (worker) and deploy/serve.py (servers); nothing else calls os.killpg.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Optional, Sequence, Union

import psutil

Pid = Union[int, str, None]


def reap(pid: int) -> None:
    """Collect a finished child of ours so it stops being a zombie (no-op for others)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def pid_alive(pid: Pid, create_time: Optional[float] = None) -> bool:
    """True while `pid` is a running process. A zombie counts as dead (ours is reaped);
    with `create_time`, a pid since reused by another process counts as dead too."""
    if not pid:
        return False
    try:
        p = psutil.Process(int(pid))
        if p.status() == psutil.STATUS_ZOMBIE:
            reap(int(pid))
            return False
        if create_time and abs(p.create_time() - float(create_time)) > 1.0:
            return False
        return True
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # another user's process: it exists
    except (ValueError, OSError):
        return False


def create_time(pid: int) -> Optional[float]:
    """When `pid` started (to recognise it later despite pid reuse); None if unknown."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`."""
    out = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (ProcessLookupError, PermissionError, OSError):
            continue
    return out


def signal_group(pgid: int, sig: int = signal.SIGTERM) -> bool:
    """Send `sig` to the process group (or, if that is refused, to the leader alone);
    False when there was no such process."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        try:
            os.kill(pgid, sig)
            return True
        except ProcessLookupError:
            return False


def kill_group(pgid: int, grace: float = 10.0, *, kill_wait: float = 5.0) -> bool:
    """SIGTERM the group, wait up to `grace` s, then SIGKILL what is left; True when nothing is left."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_wait)):
        signal_group(pgid, sig)
        deadline = time.time() + wait
        while time.time() < deadline:
            reap(pgid)
            if not group_members(pgid):
                return True
            time.sleep(0.1)
    return False


def spawn_detached(
    cmd: Sequence[str], *, cwd: Union[str, Path], log: Union[str, Path, IO[bytes]], env: Optional[dict] = None
) -> subprocess.Popen:
    """Start `cmd` in a new session (its own process group, no terminal), stdin closed,
    stdout and stderr appended to `log` (a path, or a binary file already open)."""
    fh = open(log, "ab") if isinstance(log, (str, Path)) else log
    try:
        return subprocess.Popen(
            list(cmd),
            cwd=str(cwd),
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    finally:
        if fh is not log:
            fh.close()


def run_in_group(cmd: Sequence[str], *, input: str, timeout: float) -> subprocess.CompletedProcess:
    """Run `cmd` in its own process group, `input` on its stdin, stdout and stderr captured as
    text; past `timeout` the whole group (whatever it started too) is killed and
    subprocess.TimeoutExpired raised."""
    p = subprocess.Popen(
        list(cmd),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
    )
    try:
        out, err = p.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p.pid, grace=1.0)
        p.communicate()
        raise
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


__all__ = [
    "pid_alive",
    "create_time",
    "group_members",
    "signal_group",
    "kill_group",
    "spawn_detached",
    "reap",
    "run_in_group",
]
