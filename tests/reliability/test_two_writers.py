"""Two writers: a second worker (or `run`/`resume`) on a running run is refused and changes
nothing; `clean` refuses a running run; two runs on the same GPU get a warning, not a crash
(the GPU comes from a recording: SAGE_FT_HW_RECORDED)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sage_ft_tui.engine.runs.control import cancel
from sage_ft_tui.engine.runs.create import create_run
from sage_ft_tui.engine.runs.state import derive_state, read_status, wait_for_end

from .conftest import cli, events_of, log_tail, one_error_line, short_config, wait_until

pytestmark = pytest.mark.train

HW_GPU = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "hardware" / "rtx3060.json"


def test_second_writer_and_clean_are_refused_two_runs_share_a_gpu_with_a_warning(sage_home, tiny_model):
    env = {"SAGE_FT_HW_RECORDED": str(HW_GPU)}
    a = create_run(short_config("gpu-a", steps=20000, save_steps=100000, logging_steps=5))  # cancelled below
    b = create_run(short_config("gpu-b", steps=6, save_steps=1000, logging_steps=2))
    r = cli("run", a.name, "--detach", "--no-tui", env=env)
    # no shared-GPU warning yet (the data inspector's own warnings may be there)
    assert r.returncode == 0 and "already training" not in r.stderr, r.stderr
    wait_until(lambda: any(e["kind"] == "log" for e in events_of(a)), 180, f"run a to train\n{log_tail(a)}")
    pid = read_status(a)["pid"]
    events_before = (a / "events.jsonl").read_bytes()

    # a second worker on the same run: refused, exit 3, the run goes on untouched
    second = subprocess.run(
        [sys.executable, "-m", "sage_ft_tui.engine.train.worker", str(a)], capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 3 and "already being trained" in second.stdout and "Traceback" not in second.stdout
    for cmd in (("run", a.name), ("resume", a.name), ("run", a.name, "--detach"), ("resume", a.name, "--detach")):
        line = one_error_line(cli(*cmd, "--no-tui", env=env))
        assert f"run {a.name} is already running" in line and "attach" in line, line
    # clean refuses a running run, with or without --yes
    line = one_error_line(cli("clean", a.name, "--yes", "--no-tui"))
    assert f"run {a.name} is running" in line and "cancel it first" in line
    assert (a / "config.yaml").exists() and (a / "events.jsonl").exists()
    st = read_status(a)
    assert st["pid"] == pid and derive_state(a)[0] == "running"
    assert (a / "events.jsonl").read_bytes().startswith(events_before)

    # a second run on the same (recorded) GPU: started, with a warning naming the first
    r = cli("run", b.name, "--no-tui", "--json", env=env, timeout=300)
    assert r.returncode == 0, r.stderr + log_tail(b)
    warn = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: GPU")]
    assert len(warn) == 1 and "GPU 0 is already training gpu-a" in warn[0] and "free on GPU 0" in warn[0], r.stderr
    assert "Traceback" not in r.stderr
    assert derive_state(b)[0] == "completed"
    assert derive_state(a)[0] == "running"  # the first one never noticed

    cancel(a)
    assert wait_for_end(a, timeout=120) == "cancelled"
    r = cli("clean", a.name, "--yes", "--no-tui")
    assert r.returncode == 0 and not a.exists()


def test_clean_without_yes_off_a_terminal_is_refused(sage_home):
    from sage_ft_tui.engine.config.schema import RunConfig

    run = create_run(RunConfig.from_dict({"name": "keepme", "task": "qa", "data": {"paths": ["x"]}}), prepare=False)
    line = one_error_line(cli("clean", "keepme", "--no-tui"))
    assert "without confirmation" in line and "--yes" in line and run.exists()
