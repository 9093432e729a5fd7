"""Exact resume, proved (issue 24 item 5): the same config trained 12 steps straight, and killed
(SIGKILL) after its step-6 checkpoint and resumed, logs the same loss at every step and ends
with the same adapter, within float tolerance. docs/RELIABILITY.md says what is exact and what
is not (GPU kernels)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from sage_ft_tui.engine.runs.control import launch
from sage_ft_tui.engine.runs.create import create_run
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.runs.state import derive_state, read_status

from .conftest import cli, events_of, log_tail, short_config, wait_until

pytestmark = [pytest.mark.train, pytest.mark.timeout(600)]  # over the default 180 s on a busy machine

TOTAL = 12
SAVE = 6


def _config(name: str):
    # dropout > 0 and two epochs' worth of shuffling: the RNG and the sampler's order must be restored too
    cfg = short_config(name, steps=TOTAL, save_steps=SAVE, micro_batch=2)
    raw = cfg.model_dump(mode="json")
    raw["lora"]["dropout"] = 0.1
    return type(cfg).from_dict(raw)


def _losses(run: Path) -> dict[int, float]:
    """step → loss, the last life's value where a step was logged twice."""
    return {e["step"]: e["loss"] for e in events_of(run) if e["kind"] == "log"}


def _adapter(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(RunLayout(run).adapter / "adapter_model.safetensors"))


def _wait_done(run: Path, timeout: float = 240) -> None:
    wait_until(lambda: derive_state(run)[0] in ("completed", "failed"), timeout, f"{run.name} to end\n{log_tail(run)}")
    assert derive_state(run)[0] == "completed", log_tail(run)


def test_killed_and_resumed_matches_straight(sage_home, tiny_model):
    import torch

    straight = create_run(_config("straight"))
    killed = create_run(_config("killed"))
    launch(straight)  # both at once: the suite's time
    launch(killed)
    first_lives: list[dict] = []

    def past_checkpoint():  # a step trained after the checkpoint, so the resume repeats it
        evs = events_of(killed)
        saved = any(e["kind"] == "checkpoint" and e["step"] == SAVE for e in evs)
        return saved and any(e["kind"] == "log" and e["step"] > SAVE for e in evs)

    wait_until(past_checkpoint, 180, f"step {SAVE + 1}\n{log_tail(killed)}", poll=0.005)
    os.killpg(int(read_status(killed)["pid"]), signal.SIGKILL)
    wait_until(lambda: derive_state(killed)[0] == "failed", 30, "the killed run to read as failed")
    first_lives = [e for e in events_of(killed) if e["kind"] == "log"]
    killed_at = first_lives[-1]["step"]
    assert SAVE < killed_at < TOTAL, "the kill missed the steps between the checkpoint and the end"
    t0 = time.time()
    r = cli("resume", killed.name, "--no-tui", "--json", timeout=240)
    assert r.returncode == 0, r.stderr[-2000:] + log_tail(killed)
    assert derive_state(killed)[0] == "completed"
    _wait_done(straight)
    starts = [e for e in events_of(killed) if e["kind"] == "start"]
    assert [s["resumed_from_step"] for s in starts] == [0, SAVE]

    a, b = _losses(straight), _losses(killed)
    assert sorted(a) == sorted(b) == list(range(1, TOTAL + 1))
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=1e-4, abs=1e-5), (step, a, b)
    # the first life's steps after the checkpoint were the same too (a kill loses time, not results)
    for e in first_lives:
        assert e["loss"] == pytest.approx(a[e["step"]], rel=1e-4, abs=1e-5), (e, a)
    wa, wb = _adapter(straight), _adapter(killed)
    assert wa.keys() == wb.keys() and wa
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-4, atol=1e-6, msg=k)
    dl = max(abs(a[s] - b[s]) for s in a)
    dw = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    print(
        f"killed at step {killed_at}, resumed from {SAVE} in {time.time() - t0:.1f}s; max loss difference {dl:.3g}, "
        f"max adapter difference {dw:.3g} over {len(wa)} tensors"
    )
