"""engine/proc.py on real processes: detached spawn, liveness (zombies, reused pids), group kill."""

from __future__ import annotations

import os
import sys
import time

from sage_ft_tui.engine import proc


def _wait(cond, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_spawn_detached_runs_in_its_own_session_and_logs(tmp_path):
    log = tmp_path / "out.log"
    p = proc.spawn_detached([sys.executable, "-c", "import os; print('sid', os.getsid(0))"], cwd=tmp_path, log=log)
    assert p.wait(timeout=30) == 0
    assert log.read_text().strip() == f"sid {p.pid}"  # its own session, led by itself


def test_a_zombie_and_a_reused_pid_count_as_dead(tmp_path):
    p = proc.spawn_detached([sys.executable, "-c", "pass"], cwd=tmp_path, log=tmp_path / "log")
    assert _wait(lambda: not proc.pid_alive(p.pid)), "an exited child (a zombie until reaped) counts as dead"
    me = os.getpid()
    assert proc.pid_alive(me) and proc.pid_alive(me, proc.create_time(me))
    assert not proc.pid_alive(me, (proc.create_time(me) or 0) - 3600)  # same pid, another start time
    assert not proc.pid_alive(None) and not proc.pid_alive(0)


def test_kill_group_ends_the_leader_and_its_children(tmp_path):
    # The leader starts a sleeping child; both are in the new process group.
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    p = proc.spawn_detached([sys.executable, "-c", script], cwd=tmp_path, log=tmp_path / "log")
    assert _wait(lambda: len(proc.group_members(p.pid)) == 2), proc.group_members(p.pid)
    assert proc.kill_group(p.pid, grace=5.0)
    assert proc.group_members(p.pid) == [] and not proc.pid_alive(p.pid)
    assert p.wait(timeout=5) is not None
