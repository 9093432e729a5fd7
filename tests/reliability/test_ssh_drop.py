"""SSH drop: the real `sage-ft-tui` wizard in tmux (a private server, `tmux -L`), a demo run
started from Home by its key (d), then the tmux server killed mid-training: the terminal
goes away with SIGHUP, as when an SSH connection drops. The run must finish on its own,
and a fresh `sage-ft-tui attach RUN --no-tui --json` must show its whole loss history.
Five times, in five terminals at once (each its own tmux server and runs folder)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sage_ft_tui.engine.runs.state import derive_state, wait_for_end

from .conftest import cli, events_of, log_tail, wait_until

pytestmark = [
    pytest.mark.train,
    pytest.mark.tmux,
    pytest.mark.timeout(600),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

DROPS = 5
STEPS = 10


def tmux(sock: str, *args, check=True) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, timeout=30, check=check)


def screen(sock: str) -> str:
    p = tmux(sock, "capture-pane", "-p", "-t", "drop", check=False)
    return p.stdout


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _drop_one(i: int, base: Path) -> dict:
    home = base / f"home{i}"
    home.mkdir()
    sock = f"sage-rel-{os.getpid()}-{i}"
    env = {
        "SAGE_FT_HOME": str(home),
        "SAGE_FT_DEMO_STEPS": str(STEPS),
        "HF_HUB_OFFLINE": "1",
        "TERM": "xterm-256color",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    envs = [f"{k}={v}" for k, v in env.items()]
    cmd = ["env", *envs, sys.executable, "-m", "sage_ft_tui"]
    tmux(sock, "-f", "/dev/null", "new-session", "-d", "-s", "drop", "-x", "100", "-y", "32", *cmd)
    try:
        pane_pid = int(tmux(sock, "display-message", "-p", "-t", "drop", "#{pane_pid}").stdout.strip())
        wait_until(lambda: "Demo" in screen(sock), 90, f"the wizard's Home screen:\n{screen(sock)}", poll=0.3)
        tmux(sock, "send-keys", "-t", "drop", "d")
        runs = wait_until(
            lambda: [p for p in home.iterdir() if p.is_dir()], 90, f"the demo run folder:\n{screen(sock)}"
        )
        run = runs[0]
        # mid-training: at least one logged step, and not the last
        wait_until(
            lambda: any(e["kind"] == "log" for e in events_of(run)), 180, f"the first step\n{log_tail(run)}", poll=0.05
        )
        at = max(e["step"] for e in events_of(run) if e["kind"] == "log")
    finally:
        tmux(sock, "kill-server", check=False)  # the terminal goes away (SIGHUP to the wizard)
    wait_until(lambda: _pid_gone(pane_pid), 30, "the wizard to exit on SIGHUP")
    return {"run": run, "dropped_at_step": at, "state_at_drop": derive_state(run)[0]}


def test_ssh_drop_five_times_runs_finish_and_attach_shows_everything(tmp_path, tiny_model):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=DROPS) as pool:  # five terminals dropped at about the same time
        drops = list(pool.map(lambda i: _drop_one(i, tmp_path), range(DROPS)))
    for d in drops:
        run = d["run"]
        assert d["state_at_drop"] in ("preparing", "running") and d["dropped_at_step"] < STEPS, d
        assert wait_for_end(run, timeout=300) == "completed", log_tail(run)
        p = cli("attach", run.name, "--no-tui", "--json", env={"SAGE_FT_HOME": str(run.parent)}, timeout=60)
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
        shown = [json.loads(ln) for ln in p.stdout.splitlines()]
        on_disk = events_of(run)
        assert shown == on_disk  # every event, in order
        logs = [e for e in shown if e["kind"] == "log"]
        start = [e for e in shown if e["kind"] == "start"]
        assert len(start) == 1 and start[0]["total_steps"] == STEPS
        assert logs[0]["step"] == 1 and logs[-1]["step"] == STEPS
        assert [e["step"] for e in logs] == sorted({e["step"] for e in logs})  # no gap or repeat
        assert all(isinstance(e["loss"], float) for e in logs)
        assert shown[-1]["kind"] == "status" and shown[-1]["state"] == "completed"
        assert "SIGHUP" not in log_tail(run) and (run / "adapter" / "adapter_config.json").exists()
    print("dropped at steps", [d["dropped_at_step"] for d in drops], "of", STEPS)
