"""MFU beside tokens/s: a GPU run's `log` events carry it (the FLOP count of
engine/hardware/flops.py against the card's peak) and the Monitor shows it; a CPU run shows
tokens/s only. The GPU is the hardware probe's recorded double (SAGE_FT_HW_RECORDED); the
training is real (the tiny model on this CPU)."""

from __future__ import annotations

import pytest

from sage_ft_tui.engine.runs.events import read_events
from tests.tui.factory import FIXTURES

pytestmark = pytest.mark.train


def test_a_cpu_run_reports_tokens_per_s_and_no_mfu(demo_run):
    evs = read_events(demo_run["run"] / "events.jsonl").events
    logs = [e for e in evs if e["kind"] == "log"]
    assert any(e.get("tokens_per_s") for e in logs)
    assert not any("mfu" in e for e in logs) and not any("mfu_basis" in e for e in evs if e["kind"] == "start")


async def test_a_gpu_run_reports_mfu_and_the_monitor_shows_it(monkeypatch, sage_home, sample_data, tiny_model):
    from sage_ft_tui import LoRATrainer
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.hardware.flops import flops_for_config
    from sage_ft_tui.tui.app import SageApp
    from sage_ft_tui.tui.screens.monitor import MonitorScreen

    from ..tui.conftest import wait_for

    monkeypatch.setenv("SAGE_FT_HW_RECORDED", str(FIXTURES / "hw_2xh100.json"))  # the probe sees two H100s
    cfg = RunConfig.from_dict(
        {
            "name": "on-h100",
            "task": "instruction",
            "model": {"name": "tiny-demo"},
            "data": {"paths": [str(sample_data["instruction"])], "validation_split": 0},
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
            "training": {"max_steps": 2, "logging_steps": 1, "micro_batch_size": 2, "grad_accumulation": 1,
                         "max_length": 64, "packing": False, "save_steps": 2},
        }
    )  # fmt: skip
    trainer = LoRATrainer(cfg)
    assert trainer.train().state == "completed"
    run = trainer.output_dir
    assert run is not None
    evs = read_events(run / "events.jsonl").events
    basis = next(e for e in evs if e["kind"] == "start")["mfu_basis"]
    # the first of the run's cards (training.gpus unset: one), at bf16 (the H100's precision for "auto")
    assert (basis["gpu"], basis["gpus"], basis["dtype"], basis["peak_tflops"]) == ("H100 80GB", 1, "bfloat16", 989)
    assert basis["flops_per_token"] == pytest.approx(flops_for_config(cfg).total)
    logs = [e for e in evs if e["kind"] == "log" and e.get("tokens_per_s")]
    assert logs and all(
        e["mfu"] == pytest.approx(e["tokens_per_s"] * basis["flops_per_token"] / 989e12, rel=1e-3) for e in logs
    )

    app = SageApp(initial=lambda app: [MonitorScreen(str(run))])
    async with app.run_test(size=(120, 32)) as pilot:
        stats = app.screen.query_one("#mon-stats")
        await wait_for(pilot, lambda: "MFU" in str(stats.render()))
        lines = str(stats.render()).splitlines()
        at = next(i for i, ln in enumerate(lines) if ln.startswith("tokens/s"))
        assert lines[at + 1].split() == ["MFU", "0%"]  # beside tokens/s; a CPU's pace against an H100's peak
