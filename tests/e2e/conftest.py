import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sage_ft_tui.engine.config.schema import RunConfig


def cli(*args, env=None, timeout=240, check=False):
    """The real console script, as a user runs it."""
    e = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sage_ft_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=e,
        check=check,
        stdin=subprocess.DEVNULL,
    )


def long_config(sample_data, name, steps=300) -> RunConfig:
    """Slow enough to interrupt mid-way: many short steps, frequent checkpoints."""
    return RunConfig.from_dict(
        {
            "name": name,
            "task": "instruction",
            "model": {"name": "tiny-demo"},
            "data": {"paths": [str(sample_data["instruction"])], "validation_split": 0},  # no eval passes
            "training": {
                "max_steps": steps,
                "micro_batch_size": 4,
                "grad_accumulation": 1,
                "max_length": 128,
                "learning_rate": 1e-3,
                "logging_steps": 5,
                "save_steps": 25,
                "save_total_limit": 3,
                "packing": False,
            },
        }
    )


def wait_for_event(run: Path, pred, timeout=120.0):
    from sage_ft_tui.engine.runs.events import read_events

    deadline = time.time() + timeout
    while time.time() < deadline:
        for ev in read_events(run / "events.jsonl").events:
            if pred(ev):
                return ev
        time.sleep(0.1)
    log = (run / "train.log").read_text() if (run / "train.log").exists() else ""
    raise AssertionError(f"event not seen within {timeout}s; train.log tail:\n{log[-2000:]}")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, tiny_model):
    """One complete demo run through the real CLI, shared by the tests that read it."""
    home = tmp_path_factory.mktemp("demo_home")
    t = time.time()
    r = cli("demo", "--no-tui", "--json", env={"SAGE_FT_HOME": str(home)})
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    runs = [p for p in home.iterdir() if p.is_dir()]
    assert len(runs) == 1
    return {"run": runs[0], "stdout": r.stdout, "seconds": time.time() - t}


def json_lines(text: str) -> list[dict]:
    out = []
    for ln in text.splitlines():
        ln = ln.strip()
        if ln.startswith("{"):
            out.append(json.loads(ln))
    return out
