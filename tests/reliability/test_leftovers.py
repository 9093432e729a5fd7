"""A test that fails before cleaning up leaves nothing running: its detached worker, its
server and any detached process under its tmp folder are stopped by the shared teardown
(tests/cleanup.py, the autouse `sage_home` fixture). Proved on a real pytest run in a
subprocess whose one test starts them and then fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from sage_ft_tui.engine.proc import group_members, pid_alive

from .conftest import REPO

INNER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path

    from sage_ft_tui.engine.fsutil import atomic_write_json
    from sage_ft_tui.engine.proc import create_time, pid_alive, spawn_detached
    from sage_ft_tui.engine.runs.layout import RunLayout
    from sage_ft_tui.engine.runs.control import launch
    from sage_ft_tui.engine.runs.create import create_run
    from tests.reliability.conftest import short_config


    def test_starts_things_then_fails(sage_home, tmp_path, tiny_model):
        run = create_run(short_config("left-behind", steps=100000, save_steps=100000), home=sage_home)
        worker = launch(run)
        lay = RunLayout(run)
        server = spawn_detached(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "0"], cwd=run, log=lay.serve_log
        ).pid
        atomic_write_json(lay.serve_info, {"pid": server, "pgid": server, "create_time": create_time(server)})
        other = tmp_path / "elsewhere"  # as if started under another SAGE_FT_HOME
        stray = spawn_detached(
            [sys.executable, "-c", "import time; time.sleep(600)", str(other)], cwd=tmp_path, log=os.devnull
        ).pid
        time.sleep(0.5)
        pids = {"worker": worker, "server": server, "stray": stray}
        alive = {k: pid_alive(p) for k, p in pids.items()}
        Path(os.environ["LEFT_PIDS"]).write_text(json.dumps({"pids": pids, "alive": alive}))
        assert False, "failed before cleaning up"
    """
)


def test_a_failing_test_leaves_no_worker_or_server(tmp_path, tiny_model):
    inner = tmp_path / "test_inner.py"
    inner.write_text(INNER)
    record = tmp_path / "pids.json"
    env = {**os.environ, "LEFT_PIDS": str(record), "PYTHONPATH": str(REPO)}
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider"]
        + ["-c", str(REPO / "pyproject.toml"), "--basetemp", str(tmp_path / "inner"), str(inner)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert p.returncode == 1 and "1 failed" in p.stdout, p.stdout[-3000:] + p.stderr[-3000:]
    got = json.loads(record.read_text())
    assert all(got["alive"].values()), got  # all three were running when the test failed
    left = {k: pid for k, pid in got["pids"].items() if pid_alive(pid) or group_members(pid)}
    assert not left, f"still running after the failed test's teardown: {left}"
