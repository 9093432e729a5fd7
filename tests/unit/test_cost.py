"""Time and cost before launch (engine/runs/cost.py) through the real `estimate` command: an
assumed MFU said as such, or the MFU measured on this user's finished runs on that card
(real run folders with recorded events), and one line for each bad input."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sage_ft_tui.cli.app import app
from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.hardware.flops import flops_per_token
from sage_ft_tui.engine.runs.cost import DEFAULT_MFU, estimate_cost, measured_mfu, plan_tokens
from sage_ft_tui.engine.runs.layout import RunLayout

MODEL = "Qwen/Qwen2.5-7B-Instruct"  # a built-in shape: nothing downloaded


def _estimate(*args: str):
    return CliRunner().invoke(app, ["estimate", "-m", MODEL, *args])


def _cfg(quantization: str = "none", model: str = "tiny-demo") -> RunConfig:
    return RunConfig.from_dict(
        {"model": {"name": model, "quantization": quantization}, "data": {"paths": ["x.jsonl"]},
         "training": {"max_length": 64, "precision": "bf16"}}, source="test",
    )  # fmt: skip


def _finished_run(home: Path, name: str, *, tokens_per_s: float, gpu: str = "H100 80GB", quantization: str = "none",
                  basis: bool = True, flops: float = 4e9, peak: float = 989.0, age: float = 0.0) -> Path:  # fmt: skip
    """A completed run folder as the worker leaves it: marker, config, status and events whose
    logs advance at `tokens_per_s` (start recorded the MFU basis, or only `hw` names the card)."""
    run = home / name
    run.mkdir(parents=True)
    lay = RunLayout(run)
    lay.marker.write_text("")
    _cfg(quantization).save(lay.config)
    t0 = time.time() - 1000 - age
    lay.status.write_text(json.dumps({"state": "completed", "step": 10, "started": t0, "ended": t0 + 130}))
    start: dict = {"v": 1, "t": t0 + 20, "kind": "start", "total_steps": 10, "world_size": 1}
    if basis:
        start["mfu_basis"] = {"gpu": gpu, "gpus": 1, "dtype": "bfloat16", "peak_tflops": peak, "flops_per_token": flops}
    evs = [start, {"v": 1, "t": t0 + 21, "kind": "hw", "gpus": [{"index": 0, "name": f"NVIDIA {gpu}"}]}]
    evs += [
        {"v": 1, "t": t0 + 30 + 10 * i, "kind": "log", "step": i + 1, "tokens": int(tokens_per_s * 10 * (i + 1))}
        for i in range(10)
    ]
    evs.append({"v": 1, "t": t0 + 130, "kind": "status", "state": "completed"})
    lay.events.write_text("".join(json.dumps(e) + "\n" for e in evs))
    return run


def test_estimate_prints_time_and_cost_with_its_assumption():
    r = _estimate("--gpu", "H100 80GB", "--price-per-hour", "2.5", "--tokens", "20M", "--json")
    assert r.exit_code == 0, r.output
    t = json.loads(r.output)["time"]
    f = flops_per_token(MODEL, seq_len=2048, lora_r=16)  # the command's defaults: 2048 tokens, r 16
    assert t["flops_per_token"] == pytest.approx(f.total)
    assert t["mfu"]["basis"] == "assumed MFU 35% (default for LoRA bf16)"
    tps = 0.35 * 989e12 / f.total
    assert t["tokens_per_s"] == pytest.approx(tps)
    assert t["seconds"] == pytest.approx(20e6 / tps) and t["cost"] == pytest.approx(20e6 / tps / 3600 * 2.5)
    text = _estimate("--gpu", "H100 80GB", "--price-per-hour", "2.5")
    assert text.exit_code == 0, text.output
    out = " ".join(text.output.split())
    assert "assumed MFU 35% (default for LoRA bf16)" in out and f"~{tps:,.0f} tokens/s on H100 80GB" in out
    assert re.search(r"wall time ~\d+m\d\ds per million tokens", out) and "at 2.5/GPU-hour" in out
    q = json.loads(_estimate("--gpu", "H100 80GB", "-q", "4bit", "--tokens", "1e6", "--json").output)["time"]
    assert q["mfu"]["value"] == DEFAULT_MFU["4bit"] and "QLoRA 4-bit" in q["mfu"]["basis"]


@pytest.mark.parametrize(
    "args,line",
    [
        (["--gpu", "H100 80GB", "--price-per-hour", "-1"], "--price-per-hour must be 0 or more, got -1"),
        (["--gpu", "H100 80G"], "unknown GPU 'H100 80G' (close: H100 80GB"),
        (["--gpu", "H100", "--tokens", "lots"], "--tokens 'lots': not a positive number of tokens"),
        (["--vram", "24", "--price-per-hour", "1"], "time and cost need a GPU card's peak: --vram names no card"),
        (["--gpu", "T4", "--precision", "bf16"], "T4 has no bfloat16 tensor cores to plan for"),
    ],
)
def test_bad_inputs_are_one_line(args, line):
    r = _estimate(*args)
    assert r.exit_code == 2 and "Traceback" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and line in lines[0], r.output


def test_mfu_is_calibrated_from_finished_runs_on_that_card(sage_home, tiny_model):
    # three H100 runs at 0.40, 0.45, 0.50 MFU (by their recorded count and peak): the median
    f = 2.5e10  # FLOPs/token of a ~6B model: the same size class as the 7B planned below
    for i, m in enumerate((0.40, 0.45, 0.50)):
        _finished_run(sage_home, f"h100-{i}", tokens_per_s=m * 989e12 / f, flops=f, age=i)
    _finished_run(sage_home, "a100", tokens_per_s=0.9 * 312e12 / f, gpu="A100 80GB", peak=312, flops=f)  # another card
    _finished_run(sage_home, "qlora", tokens_per_s=0.05 * 989e12 / f, quantization="4bit", flops=f)  # another method
    _finished_run(sage_home, "tiny", tokens_per_s=0.01 * 989e12 / 1e7, flops=1e7)  # a tiny model: not this size
    assert measured_mfu("H100 80GB", "none", flops_per_token=1e7).runs == ["tiny"]  # type: ignore[union-attr]
    got = measured_mfu("H100 80GB", "none", flops_per_token=3e10)
    assert got is not None and got.value == pytest.approx(0.45, rel=1e-3)
    assert got.basis == "MFU 45% measured from 3 runs on H100 80GB"
    assert sorted(got.runs) == ["h100-0", "h100-1", "h100-2"]
    assert measured_mfu("H100 80GB", "4bit", flops_per_token=3e10).value == pytest.approx(0.05, rel=1e-3)  # type: ignore[union-attr]
    assert measured_mfu("L40S", "none") is None
    r = _estimate("--gpu", "NVIDIA H100 80GB HBM3", "--tokens", "20M", "--json")
    assert r.exit_code == 0, r.output
    t = json.loads(r.output)["time"]
    assert t["mfu"]["basis"] == "MFU 45% measured from 3 runs on H100 80GB"
    assert t["tokens_per_s"] == pytest.approx(0.45 * 989e12 / t["flops_per_token"], rel=1e-3)
    # a run from before the basis was recorded: the card from its hw events, the count from its config
    _finished_run(sage_home, "old", tokens_per_s=1000.0, gpu="L40S", basis=False)
    old = measured_mfu("L40S", "none")
    expect = 1000.0 * flops_per_token("tiny-demo", seq_len=64).total / 362e12
    assert old is not None and old.value == pytest.approx(expect, rel=1e-3) and old.runs == ["old"]


def test_plan_tokens_and_price_per_gpu():
    from types import SimpleNamespace

    assert plan_tokens(SimpleNamespace(real_tokens=12345, total_steps=9, tokens_per_step=100))[0] == 12345
    assert plan_tokens(SimpleNamespace(real_tokens=None, total_steps=9, tokens_per_step=100)) == (
        900,
        "9 steps at full rows, at most",
    )
    one = estimate_cost(_cfg(), "H100 80GB", tokens=10**9, price_per_hour=2.0)
    two = estimate_cost(_cfg(), "H100 80GB", gpus=2, tokens=10**9, price_per_hour=2.0)
    assert two.seconds == pytest.approx(one.seconds / 2) and two.cost == pytest.approx(one.cost)  # type: ignore[operator]
