"""What the command line prints, as a user reads it: help that shows a flag as a flag, run
names that are never cut, JSON rows that stay one line, and the demo's answers after its
Monitor closes. Real processes (the console script; a real terminal through `script` or tmux)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from .conftest import cli

SCRIPT = shutil.which("script")


def _on_terminal(args: str, cols: int, env: dict) -> str:
    """The real CLI on a pseudo-terminal `cols` wide (util-linux `script`)."""
    import os

    cmd = f"stty cols {cols} rows 40; {sys.executable} -m sage_ft_tui {args}"
    out = subprocess.run(
        [SCRIPT, "-qec", cmd, "/dev/null"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env, "TERM": "xterm-256color"},
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    import re

    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.stdout).replace("\r", "")


def test_boolean_flags_show_as_flags_in_help():
    """`--no-tui <bool>` promised a value that `--no-tui true` refused: a flag is a switch."""
    for args in ((), ("examples",), ("demo",), ("merge",)):
        r = cli(*args, "--help", env={"COLUMNS": "100"})
        assert r.returncode == 0, r.stderr
        assert "<bool>" not in r.stdout and "--no-tui" in r.stdout, r.stdout


def test_examples_keep_every_json_row_on_one_line():
    piped = cli("examples").stdout
    rows = [ln.strip() for ln in piped.splitlines() if ln.strip().startswith("{")]
    assert len(rows) >= 7 and all(json.loads(r) for r in rows), rows
    assert "skipped)." in piped.split("code", 1)[1].splitlines()[0]  # a description is not wrapped either


@pytest.mark.skipif(SCRIPT is None, reason="util-linux `script` (a pseudo-terminal) is not installed")
def test_list_never_cuts_a_run_name(tmp_path, sage_home):
    """At 80 columns on a terminal the names are whole (other columns give way); piped, nothing is cut."""
    from tests.tui import factory

    factory.prepare(tmp_path / "world")
    env = {"SAGE_FT_HOME": str(tmp_path / "world" / "runs")}
    from sage_ft_tui.engine.runs.state import list_runs

    names = [r.name for r in list_runs(tmp_path / "world" / "runs")]
    narrow = _on_terminal("list", 80, env)
    assert all(n in narrow for n in names), narrow
    assert max(len(ln) for ln in narrow.splitlines()) <= 80, narrow
    piped = cli("list", env=env).stdout
    assert all(n in piped for n in names) and "Qwen/Qwen2.5-Coder-1.5B-Instruct" in piped, piped
    assert "…" not in piped


@pytest.mark.train
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_demo_on_a_terminal_prints_the_answers_after_the_monitor_closes(tmp_path, sage_home, tiny_model):
    from .test_tmux_wizard import BIN, REPO, Pane

    if BIN is None:
        pytest.skip("the sage-ft-tui console script is not installed")
    env = {"PYTHONPATH": str(REPO), "SAGE_FT_HOME": str(sage_home), "TERM": "xterm-256color"}
    pane = Pane("demo", tmp_path / "tmux.sock")
    # the shell stays after the command, so what it printed after the app can be read
    pane.tmux("new-session", "-d", "-s", pane.name, "-x", "80", "-y", "24", "bash", "--norc", "--noprofile")
    try:
        cmd = " ".join(f"{k}={v}" for k, v in env.items()) + f" {BIN} demo --max-steps 3"
        pane.type(cmd)
        pane.keys("Enter")
        pane.wait("Monitor", timeout=120)
        pane.keys("C-q")  # closed at once, whether the run has ended or not
        text = pane.wait("tuned>", timeout=180)
        assert "base>" in text and "you>" in text, text
    finally:
        pane.tmux("kill-server")
