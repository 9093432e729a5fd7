"""Worker killed (SIGKILL at random steps, 5 times in one run): each `resume` continues from
the newest complete checkpoint, never from a half-written one, and the run finishes with
the planned total steps and its whole loss history in events.jsonl."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from sage_ft_tui.engine.runs.control import launch
from sage_ft_tui.engine.runs.create import create_run
from sage_ft_tui.engine.runs.state import checkpoints, derive_state, read_status

from .conftest import cli, events_of, log_tail, short_config, wait_until

pytestmark = [pytest.mark.train, pytest.mark.timeout(600)]  # over the default 180 s on a busy machine

TOTAL = 60  # kills land early (targets a few steps apart); a fast machine must not finish first
SAVE = 3
KILLS = 5


def _mark() -> str:
    from sage_ft_tui.engine.runs.layout import CHECKPOINT_COMPLETE

    return CHECKPOINT_COMPLETE


def _last_log_step(run: Path) -> int:
    steps = [e["step"] for e in events_of(run) if e["kind"] == "log"]
    return steps[-1] if steps else 0


def _kill(run: Path) -> None:
    pgid = int(read_status(run)["pid"])
    os.killpg(pgid, signal.SIGKILL)
    wait_until(lambda: derive_state(run)[0] == "failed", 30, "the killed run to read as failed")
    assert derive_state(run) == ("failed", "worker died")


def _plant_half_written(run: Path, step: int) -> Path:
    """What a kill during a save leaves: a newer checkpoint folder, files cut short, no mark."""
    src = checkpoints(run)[-1]
    dst = run / "checkpoints" / f"checkpoint-{step}"
    if dst.exists():
        return dst
    shutil.copytree(src, dst)
    (dst / _mark()).unlink()
    for f in ("adapter_model.safetensors", "optimizer.pt"):
        p = dst / f
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return dst


def test_five_random_kills_then_resume_to_the_planned_steps(sage_home, tiny_model):
    seed = int(os.environ.get("SAGE_FT_KILL_SEED", random.getrandbits(30)))
    rng = random.Random(seed)
    run = create_run(short_config("killed", steps=TOTAL, save_steps=SAVE))
    launch(run)
    history = []  # (kill step, newest complete checkpoint at the kill, how)
    real_half_written = False
    for k in range(KILLS):
        start_step = _last_log_step(run)
        target = min(TOTAL - 4 * (KILLS - k), start_step + rng.randint(2, 5))
        how = "at step"
        if k == KILLS - 1:
            # Try to kill while a checkpoint is being written: the folder exists, the mark not yet.
            planted = set((run / "checkpoints").glob("checkpoint-*"))

            def half_written():
                for p in (run / "checkpoints").glob("checkpoint-*"):
                    if p not in planted and not (p / _mark()).exists() and int(p.name.split("-")[1]) > start_step:
                        return p
                return None

            hit = None
            deadline = time.time() + 90
            while time.time() < deadline and hit is None and _last_log_step(run) < TOTAL - 6:
                hit = half_written()
                if hit is None:
                    time.sleep(0.005)
            if hit is not None:
                os.killpg(int(read_status(run)["pid"]), signal.SIGKILL)
                real_half_written = not (hit / _mark()).exists()
                how = f"during the save of {hit.name}" if real_half_written else "just after a save"
                wait_until(lambda: derive_state(run)[0] == "failed", 30, "the killed run to read as failed")
            else:
                _kill(run)
        else:
            wait_until(lambda: _last_log_step(run) >= target, 180, f"step {target}\n{log_tail(run)}", poll=0.02)
            _kill(run)
        done = checkpoints(run)
        newest = int(done[-1].name.split("-")[1]) if done else 0
        history.append((_last_log_step(run), newest, how))
        incomplete = [p for p in (run / "checkpoints").glob("checkpoint-*") if not (p / _mark()).exists()]
        if not incomplete:
            incomplete = [_plant_half_written(run, newest + SAVE * 50 + k)] if done else []
        assert all(p not in done for p in incomplete)
        if k < KILLS - 1:
            r = cli("resume", run.name, "--detach", "--no-tui", timeout=120)
            assert r.returncode == 0, r.stderr
            wait_until(
                lambda: read_status(run).get("state") == "running", 180, f"resume {k + 1} to run\n{log_tail(run)}"
            )
    r = cli("resume", run.name, "--no-tui", "--json", timeout=400)
    assert r.returncode == 0, f"seed {seed}, kills {history}\n{r.stderr[-2000:]}\n{log_tail(run)}"

    evs = events_of(run)
    starts = [e for e in evs if e["kind"] == "start"]
    assert len(starts) == KILLS + 1, history
    assert all(s["total_steps"] == TOTAL for s in starts)
    # each resume began at the newest complete checkpoint at its kill, never a half-written one
    assert [s["resumed_from_step"] for s in starts[1:]] == [h[1] for h in history], (seed, history)
    resumed_from = re.findall(r"resuming from (checkpoint-\d+)|no complete checkpoint", (run / "train.log").read_text())
    assert len(resumed_from) == KILLS
    logs = [e["step"] for e in evs if e["kind"] == "log"]
    assert logs[-1] == TOTAL and set(range(1, TOTAL + 1)) <= set(logs)
    # the cumulative token count goes on across each resume (it restarted at 0 before issue 21):
    # a step logged in two lives has the same count in both, and the count only grows
    tokens: dict[int, set] = {}
    for e in evs:
        if e["kind"] == "log":
            tokens.setdefault(e["step"], set()).add(e["tokens"])
    assert all(len(v) == 1 for v in tokens.values()), (seed, {s: v for s, v in tokens.items() if len(v) > 1})
    counts = [next(iter(tokens[s])) for s in sorted(tokens)]
    assert all(b > a for a, b in zip(counts, counts[1:])), (seed, counts)
    assert evs[-1]["kind"] == "status" and evs[-1]["state"] == "completed"
    assert derive_state(run)[0] == "completed" and (run / "adapter" / "adapter_config.json").exists()
    # a fresh attach shows the whole loss history
    a = cli("attach", run.name, "--no-tui", "--json", timeout=60)
    assert a.returncode == 0, a.stderr
    att = [ln for ln in a.stdout.splitlines() if '"kind": "log"' in ln]
    assert len(att) == len(logs)
    print(f"seed {seed}; kills (last step, resumed from, how): {history}; real half-written: {real_half_written}")
