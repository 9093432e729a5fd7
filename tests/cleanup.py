"""What a test started and left running is stopped when it ends, pass or fail.

A test that fails half-way (an assert before its own `cancel`/`stop`) would otherwise leave
its detached worker training, or its model server listening, long after pytest returned:
they run in their own session, so nothing ends them with the test. `stop_leftovers` is
called by the autouse `sage_home` fixture (tests/conftest.py) at every teardown.

It goes through the engine's own contracts: a run's live worker is found from its
status.json (and checked by its command line, since pids are reused) and its process group
killed with `engine.proc.kill_group`; a run's server is stopped with `deploy.serve.stop`.
A last sweep kills detached processes (session leaders) whose command line names a path
inside the test's tmp folder: a worker or server started under another SAGE_FT_HOME, a
tmux server on a socket there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import psutil

WORKER_MODULE = "sage_ft_tui.engine.worker"
GRACE_S = 2.0  # SIGTERM first (a worker saves a checkpoint), then SIGKILL: teardown stays short


def _is_run(p: Path) -> bool:
    from sage_ft_tui.engine.runs.layout import RunLayout

    try:
        return p.is_dir() and RunLayout(p).looks_like_run()
    except OSError:
        return False


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except (psutil.Error, OSError):
        return []


def _stop_worker(run: Path) -> str | None:
    from sage_ft_tui.engine.proc import kill_group, pid_alive
    from sage_ft_tui.engine.runs.state import read_status

    pid = read_status(run).get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return None
    cmd = _cmdline(pid)
    # A pid from status.json may since belong to someone else's process: only ours is killed.
    if not any(WORKER_MODULE in a for a in cmd) or not any(str(run) in a for a in cmd):
        return None
    kill_group(pid, grace=GRACE_S)
    return f"worker {pid} of {run.name}"


def _stop_server(run: Path) -> str | None:
    from sage_ft_tui.engine.runs.layout import RunLayout

    if not RunLayout(run).serve_info.is_file():
        return None
    from sage_ft_tui.engine.deploy.serve import stop
    from sage_ft_tui.engine.deploy.serve_info import read_serve, server_alive

    info = read_serve(run)
    if not server_alive(info):
        return None
    try:
        stop(run, grace=GRACE_S)
    except Exception as e:  # noqa: BLE001 - teardown reports, never raises over the test's own result
        return f"server of {run.name}: {e}"
    return f"server {info.get('pid')} of {run.name}"


def _stop_detached_under(root: Path) -> list[str]:
    from sage_ft_tui.engine.proc import kill_group

    me = os.getsid(0)
    prefix = str(root.resolve())
    inside = prefix + os.sep  # test_x1 must not match the folder of test_x10
    stopped = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = p.info["cmdline"] or []
        if not any(inside in a or a.endswith(prefix) for a in cmd):
            continue
        try:
            if os.getsid(p.pid) != p.pid or p.pid == me:  # only detached session leaders, never our own
                continue
        except OSError:
            continue
        kill_group(p.pid, grace=GRACE_S)
        stopped.append(f"detached {p.pid}: {' '.join(cmd)[:120]}")
    return stopped


def stop_leftovers(homes: Iterable[Path], tmp: Path | None = None) -> list[str]:
    """Stop live workers and servers of the runs in `homes`, then detached processes under
    `tmp`; returns a line for each thing stopped."""
    stopped: list[str] = []
    seen: set[Path] = set()
    for home in homes:
        home = Path(home)
        if home in seen or not home.is_dir():
            continue
        seen.add(home)
        try:
            runs = sorted(home.iterdir())
        except OSError:  # a test that took the folder's permissions away
            continue
        for run in runs:
            try:
                if _is_run(run):
                    stopped += [s for s in (_stop_worker(run), _stop_server(run)) if s]
            except OSError:
                continue
    if tmp is not None and tmp.is_dir():
        stopped += _stop_detached_under(tmp)
    return stopped
