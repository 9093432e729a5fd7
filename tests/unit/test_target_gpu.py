"""Planning for a GPU from anywhere: `estimate --gpu/--vram/--precision` and the auto preset
size a run for the target card, not for this (CPU) machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sage_ft_tui.cli.app import app
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import GiB
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
        ("a100 80gb", "A100 80GB"),
        ("NVIDIA H200", "H200"),
        ("L40S", "L40S"),
    ],
)
def test_find_gpu(name, want):
    assert find_gpu(name).name == want


def test_unknown_gpu_and_bad_vram_are_one_line_errors():
    with pytest.raises(SageError, match="unknown GPU"):
        find_gpu("GTX 9999")
    with pytest.raises(SageError, match="'A100' matches 2 cards: A100 40GB, A100 80GB"):
        find_gpu("A100")  # two memory sizes: never a silent pick
    with pytest.raises(SageError, match="no GPU name given"):
        target_snapshot("")
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


def test_sharded_estimate_is_per_gpu():
    from sage_ft_tui.engine.hardware.estimate import TrainSetup, estimate_memory

    model = str(MODELS / "qwen2.5-7b")
    one = estimate_memory(model, TrainSetup(max_length=512))
    four = estimate_memory(model, TrainSetup(max_length=512, shards=4))
    assert four.weights < one.weights / 2 and four.total < one.total and any("sharded" in n for n in four.notes)
    assert four.activations == one.activations  # each GPU runs its own micro-batch


LLAMA70 = str(MODELS / "llama-3-70b")
QWEN7 = str(MODELS / "qwen2.5-7b")


@pytest.mark.parametrize(
    "model,card,n,sharding,quant",
    [
        (QWEN7, "H100 80GB", 1, "none", "none"),  # fits one GPU: nothing to spread
        (QWEN7, "H100 80GB", 2, "ddp", "none"),  # fits one: a full copy on each
        (LLAMA70, "A100 40GB", 2, "fsdp", "4bit"),  # 4-bit needs ~41 GiB on one: QLoRA + FSDP
        (LLAMA70, "H100 80GB", 4, "fsdp", "none"),  # 16-bit sharded over 4 before quantizing
    ],
)
def test_auto_plan_shards_only_when_one_gpu_is_too_small(model, card, n, sharding, quant):
    from sage_ft_tui.engine.config.hardware_fit import fit_hardware

    plan = fit_hardware(model, target_snapshot(card, count=n), gpus=n)
    c = plan.config
    assert plan.sharding == sharding and plan.gpus == (list(range(n)) if n > 1 else [])
    assert ("4bit" if c.load_in_4bit else "8bit" if c.load_in_8bit else "none") == quant
    assert plan.estimate.fits and plan.estimate.total <= 0.9 * find_gpu(card).vram_gib * GiB
    text = "\n".join(plan.lines)
    if sharding == "fsdp":
        assert f"sharded over {n} GPUs (training.sharding fsdp" in text and "activations not divided" in text
        assert f"estimated peak {plan.estimate.total / GiB:.1f} GiB per GPU" in text
        assert "on one GPU: needs" in text  # why one GPU is not enough, in figures
    elif sharding == "ddp":
        assert "DDP over 2 GPUs" in text


def test_too_big_even_sharded_says_how_many_gpus():
    from sage_ft_tui.engine.config.hardware_fit import fit_hardware

    with pytest.raises(SageError) as e:
        fit_hardware(LLAMA70, target_snapshot("RTX 4090", count=2), gpus=2)
    assert "does not fit on 2 × RTX 4090" in e.value.message and "sharded over 2" in e.value.message
    assert "--gpus 4" in e.value.hint and e.value.kind == "oom"
    with pytest.raises(SageError, match="only 2 GPUs here"):
        fit_hardware(QWEN7, target_snapshot("RTX 4090", count=2), gpus=3)


def test_estimate_auto_on_two_target_gpus_is_per_gpu():
    d = _estimate("-m", LLAMA70, "--gpu", "A100 40GB", "--gpus", "2", "--preset", "auto")
    assert d["quantization"] == "4bit" and d["fits"] and d["total"] < 36 * GiB
    assert any(n.startswith("sharded over 2 GPUs") for n in d["notes"])
    assert any("training.sharding fsdp" in line for line in d["auto"])


def _cli(*args):
    return CliRunner().invoke(app, list(args))


def test_start_plans_for_a_target_gpu(tmp_path, monkeypatch):
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.recipes.demo import DEMO_DATA, sample_path
    from sage_ft_tui.engine.runs.layout import RunLayout

    monkeypatch.setenv("SAGE_FT_HOME", str(tmp_path / "runs"))
    data = str(sample_path(DEMO_DATA))
    r = _cli("start", "-m", "tiny-demo", "-d", data, "--name", "h100", "--gpu", "H100 80GB", "--json")
    assert r.exit_code == 0, r.output
    cfg = RunConfig.load(RunLayout(tmp_path / "runs" / "h100").config)
    assert cfg.preset == "auto" and cfg.training.precision == "bf16"  # the GPU plan, made on this CPU box
    r = _cli("start", "-m", "tiny-demo", "-d", data, "--name", "fp32", "--vram", "24", "--precision", "fp32")
    assert r.exit_code == 0, r.output
    assert RunConfig.load(RunLayout(tmp_path / "runs" / "fp32").config).training.precision == "fp32"
    r = _cli("start", "-m", "tiny-demo", "-d", data, "--gpu", "H100", "--preset", "cpu")
    assert r.exit_code == 2 and "plan the auto preset" in r.output
    # an existing run keeps its config
    r = _cli("run", "h100", "--gpu", "H100 80GB")
    assert r.exit_code == 2 and "an existing run keeps its config" in r.output


def test_quickstart_and_run_plan_for_two_target_gpus(tmp_path, monkeypatch):
    """On this CPU box the plan for 2 GPUs names GPUs 0 and 1: the run is refused in one line
    before anything trains, after the plan (DDP: tiny-demo fits one card) was made and shown."""
    from sage_ft_tui.engine.recipes.demo import DEMO_DATA, demo_config, sample_path

    monkeypatch.setenv("SAGE_FT_HOME", str(tmp_path / "runs"))
    data = str(sample_path(DEMO_DATA))
    r = _cli("quickstart", "instruction", "-d", data, "-m", "tiny-demo", "--gpu", "A100 40GB", "--gpus", "2")
    assert "2 × A100 40GB (GPUs 0, 1)" in r.output and "DDP over 2 GPUs" in r.output
    assert r.exit_code == 2 and "training.gpus: GPU 0 does not exist here" in r.output, r.output
    cfg = tmp_path / "c.yaml"
    demo_config(max_steps=1).save(cfg)
    r = _cli("run", str(cfg), "--preset", "auto", "--gpu", "A100 40GB", "--gpus", "2")
    assert r.exit_code == 2 and "training.gpus: GPU 0 does not exist here" in r.output, r.output
    assert "Traceback" not in r.output


def test_start_for_two_target_gpus_creates_here_and_trains_there(tmp_path, monkeypatch):
    """`start` only creates the folder: a plan for 2 GPUs this CPU box lacks is made and kept,
    with the way on; `run` here then refuses it in one line and leaves the folder as it was."""
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.recipes.demo import DEMO_DATA, sample_path
    from sage_ft_tui.engine.runs.layout import RunLayout
    from sage_ft_tui.engine.runs.state import read_status

    monkeypatch.setenv("SAGE_FT_HOME", str(tmp_path / "runs"))
    data = str(sample_path(DEMO_DATA))
    r = _cli("start", "-m", "tiny-demo", "-d", data, "--name", "two", "--gpu", "H100 80GB", "--gpus", "2")
    assert r.exit_code == 0, r.output
    assert "planned  for 2× H100 80GB: copy" in r.output
    run = tmp_path / "runs" / "two"
    cfg = RunConfig.load(RunLayout(run).config)
    assert cfg.training.gpus == [0, 1] and cfg.training.precision == "bf16"
    before = sorted(p.name for p in run.iterdir())
    r = _cli("run", "two")
    assert r.exit_code == 2 and "training.gpus: GPU 0 does not exist here" in r.output, r.output
    assert "planned for another machine" in r.output and "Traceback" not in r.output
    assert sorted(p.name for p in run.iterdir()) == before and read_status(run)["state"] == "created"
