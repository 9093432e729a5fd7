"""Helpers for the fault and bad-input suite (tests/reliability).

Everything goes through the real CLI or the real detached worker; runs use the tiny model
with few, short steps so the whole suite stays within a few minutes on 2 cores."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sage_ft_tui.engine.config.schema import RunConfig

CLI = [sys.executable, "-m", "sage_ft_tui"]
REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sage_ft_tui" / "samples"


def cli(*args, env=None, timeout=240, cwd=None):
    e = {**os.environ, **(env or {})}
    return subprocess.run(
        CLI + [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=e,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )


def one_error_line(p, allow: tuple[str, ...] = ()) -> str:
    """The contract for every refusal: non-zero exit, no traceback, exactly one `error:` line
    on stderr (notes, warnings and lines starting with `allow` aside), which is returned."""
    assert p.returncode != 0, f"exit 0\nstdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}"
    assert "Traceback" not in p.stderr + p.stdout, p.stderr[-3000:]
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    others = [ln for ln in lines if not ln.startswith(("error: ", "note: ", "warning: ") + tuple(allow))]
    assert len(errors) == 1 and not others, p.stderr[-3000:]
    return errors[0]


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root with a hash of its bytes (to prove nothing was overwritten)."""
    out = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def short_config(
    name: str,
    *,
    steps: int,
    save_steps: int,
    logging_steps: int = 1,
    task: str = "instruction",
    data: Path | None = None,
    max_length: int = 96,
    micro_batch: int = 2,
    **training,
) -> RunConfig:
    """A tiny-model run with cheap steps (short rows, small batch, no packing, no eval)."""
    return RunConfig.from_dict(
        {
            "name": name,
            "task": task,
            "model": {"name": "tiny-demo", "dtype": "float32"},
            "data": {"paths": [str(data or SAMPLES / "instruction_alpaca.jsonl")], "validation_split": 0},
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
            "training": {
                "max_steps": steps,
                "micro_batch_size": micro_batch,
                "grad_accumulation": 1,
                "max_length": max_length,
                "learning_rate": 1e-3,
                "logging_steps": logging_steps,
                "save_steps": save_steps,
                "save_total_limit": None,
                "packing": False,
                "warmup_ratio": 0.0,
                **training,
            },
        }
    )


def wait_until(pred, timeout: float, what: str, poll: float = 0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def events_of(run: Path) -> list[dict]:
    from sage_ft_tui.engine.runs.events import read_events

    return read_events(run / "events.jsonl").events


def log_tail(run: Path, n: int = 3000) -> str:
    p = run / "train.log"
    return p.read_text(errors="replace")[-n:] if p.exists() else "(no train.log)"


def group_alive(pgid: int) -> list[int]:
    """Live (non-zombie) members of a process group."""
    import psutil

    out = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(proc.pid)
        except (OSError, psutil.Error):
            pass
    return out


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture
def reaper():
    """Process groups a test started; whatever is left is killed at the end."""
    groups: list[int] = []
    yield groups
    for g in groups:
        kill_group(g)
