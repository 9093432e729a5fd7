"""Planning for a GPU from anywhere: `estimate --gpu/--vram/--precision` and the auto preset
size a run for the target card, not for this (CPU) machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sage_ft_tui.cli.app import app
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.hardware.estimate import GiB
from sage_ft_tui.engine.hardware.gpus import find_gpu, peak_tflops, target_snapshot

MODELS = Path(__file__).parent / "fixtures" / "hardware" / "models"


@pytest.mark.parametrize(
    "name,want",
    [
        ("RTX 4090", "RTX 4090"),
        ("4090", "RTX 4090"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("h100", "H100 80GB"),
        ("NVIDIA H100 80GB HBM3", "H100 80GB"),
        ("NVIDIA A100-SXM4-40GB", "A100 40GB"),
        ("a100", "A100 80GB"),
        ("NVIDIA H200", "H200"),
        ("L40S", "L40S"),
    ],
)
def test_find_gpu(name, want):
    assert find_gpu(name).name == want


def test_unknown_gpu_and_bad_vram_are_one_line_errors():
    with pytest.raises(SageError, match="unknown GPU"):
        find_gpu("GTX 9999")
    with pytest.raises(SageError):
        target_snapshot(vram_gib=-1)
    assert peak_tflops("H100") == 989 and peak_tflops("nope") is None


def test_target_snapshot():
    s = target_snapshot("A10", count=2)
    assert len(s.gpus) == 2 and s.gpus[0].mem_free == 24 * GiB and s.gpus[0].bf16
    assert not target_snapshot("T4").gpus[0].bf16
    assert target_snapshot(vram_gib=48).gpus[0].mem_total == 48 * GiB


def _estimate(*args):
    r = CliRunner().invoke(app, ["estimate", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_7b_lora_planned_on_a_cpu_box_is_a_bf16_gpu_plan():
    model = str(MODELS / "qwen2.5-7b")
    d = _estimate("-m", model, "--gpu", "H100 80GB", "--preset", "auto")
    assert d["device"] == "cuda" and d["dtype"] == "bfloat16" and d["fits"]
    assert d["free"] == 80 * GiB and any("H100" in line for line in d["auto"])
    t4 = _estimate("-m", model, "--gpu", "T4", "--preset", "auto")
    assert t4["dtype"] == "float16" and t4["quantization"] != "none"  # 16 GiB: quantized, fp16
    v = _estimate("-m", model, "--vram", "24", "--precision", "fp16", "--batch", "1")
    assert v["dtype"] == "float16" and v["free"] == 24 * GiB


def test_bad_target_flags_exit_2_with_one_line():
    r = CliRunner().invoke(app, ["estimate", "-m", "tiny-demo", "--gpu", "GTX 9999"])
    assert r.exit_code == 2 and "unknown GPU" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["estimate", "-m", "tiny-demo", "--vram", "24", "--precision", "fp8"])
    assert r.exit_code == 2 and "--precision" in r.output


def test_sharded_estimate_is_per_gpu_and_the_plan_says_so():
    from sage_ft_tui.engine.config.presets import plan_auto
    from sage_ft_tui.engine.hardware.estimate import estimate_memory

    model = str(MODELS / "qwen2.5-7b")
    one = estimate_memory(model, max_length=512)
    four = estimate_memory(model, max_length=512, shards=4)
    assert four.weights < one.weights / 2 and four.total < one.total and any("sharded" in n for n in four.notes)
    plan = plan_auto(model, target_snapshot("RTX 3060", count=4), max_length=512)
    line = next(x for x in plan.lines if "sharded over 4 GPUs" in x)
    assert "per GPU" in line and "fits" in line
