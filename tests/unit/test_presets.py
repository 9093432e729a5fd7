"""engine/config/presets.py: the auto preset on recorded hardware, and its explanation."""

from pathlib import Path

import pytest

from sage_ft_tui.engine.config.build import apply_preset
from sage_ft_tui.engine.config.hardware_fit import auto_preset, explain_choice, fit_hardware
from sage_ft_tui.engine.config.presets import PresetConfigs
from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import GiB
from sage_ft_tui.engine.hardware import probe as hw
from sage_ft_tui.engine.hardware import readings
from sage_ft_tui.engine.hardware.estimate import TrainSetup, estimate_memory

FIX = Path(__file__).parent / "fixtures" / "hardware"
M = FIX / "models"
LLAMA2, QWEN7, QWEN05 = (str(M / n) for n in ("llama-2-7b", "qwen2.5-7b", "qwen2.5-0.5b"))


def rec(name):
    return hw.RecordedBackend(FIX / f"{name}.json")


def quant(c):
    return "8bit" if c.load_in_8bit else "4bit" if c.load_in_4bit else "none"


@pytest.mark.parametrize(
    "hw_name,model,q",
    [
        ("rtx3060", QWEN05, "none"),
        ("rtx3060", QWEN7, "8bit"),
        ("rtx4090", QWEN7, "none"),
        ("rtx4090", LLAMA2, "none"),
        ("a100x8", QWEN7, "none"),
        ("h100_mig", QWEN7, "none"),
        ("shared_a100_70pct", QWEN7, "8bit"),
    ],
)
def test_quantizes_only_when_needed(hw_name, model, q):
    plan = fit_hardware(model, rec(hw_name))
    assert quant(plan.config) == q
    assert plan.estimate.fits and plan.estimate.total <= 0.9 * plan.gpu.mem_free
    assert plan.config.bf16 and not plan.config.fp16 and plan.config.preset == "auto"


def test_largest_that_fits():
    """One step up in micro-batch (or length) would not fit under 90%."""
    plan = fit_hardware(LLAMA2, rec("rtx4090"))
    c = plan.config
    bigger = estimate_memory(
        LLAMA2,
        TrainSetup(
            micro_batch=c.batch_size * 2,
            max_length=c.max_length,
            gradient_checkpointing=c.gradient_checkpointing,
            lora_r=c.lora.r,
        ),
        free=plan.gpu.mem_free,
    )
    assert not bigger.fits or c.batch_size * 2 * c.max_length > 32768
    assert c.batch_size * c.gradient_accumulation_steps == 16


def test_small_gpu_shortens_before_failing():
    tiny_free = readings.snapshot_from_dict(readings.snapshot_to_dict(rec("rtx3060").snapshot()))
    g = tiny_free.gpus[0]
    g.mem_free = int(7.6 * GiB)
    plan = fit_hardware(QWEN7, tiny_free)
    assert quant(plan.config) == "4bit" and plan.config.gradient_checkpointing
    assert plan.config.max_length < 2048 and any("wanted 2048" in l for l in plan.lines)
    g.mem_free = 5 * GiB
    with pytest.raises(SageError, match="does not fit on GPU 0") as e:
        fit_hardware(QWEN7, tiny_free)
    assert e.value.kind == "oom"


def test_fp16_on_pre_ampere():
    snap = rec("rtx3060").snapshot()
    snap.gpus[0].bf16, snap.gpus[0].compute_capability = False, (7, 5)
    c = auto_preset(QWEN05, snap)
    assert c.fp16 and not c.bf16
    assert any("fp16" in l for l in explain_choice(QWEN05, snap))


def test_cpu_preset_without_gpu():
    c = auto_preset(QWEN05, rec("no_gpu"))
    assert not (c.bf16 or c.fp16 or c.load_in_4bit or c.load_in_8bit) and c.max_length == 512
    assert explain_choice(QWEN05, rec("no_gpu"))[0].startswith("no GPU")


def test_explanation_mentions_shared_and_mig():
    assert any("shared GPU" in l for l in explain_choice(QWEN05, rec("shared_a100_70pct")))
    assert any("MIG instance" in l for l in explain_choice(QWEN05, rec("h100_mig")))
    assert any("8 GPUs visible" in l for l in explain_choice(QWEN05, rec("a100x8")))


def test_kwargs_and_wanted_length():
    c = auto_preset(QWEN05, rec("rtx4090"), max_length=512, task="chat", num_epochs=1, lora_r=8)
    assert c.max_length == 512 and c.task == "chat" and c.num_epochs == 1 and c.lora.r == 8


def test_presetconfigs_auto_and_apply_preset(monkeypatch):
    monkeypatch.setenv(hw.RECORDED_ENV, str(FIX / "rtx3060.json"))
    monkeypatch.setattr(hw, "_cached", None)
    assert quant(PresetConfigs.auto(QWEN7)) == "8bit"
    rc = apply_preset(RunConfig.from_dict({"model": {"name": QWEN7}}), "auto")
    assert rc.model.quantization == "8bit" and rc.preset == "auto" and rc.training.precision == "bf16"


def test_unknown_model_is_one_line_error():
    with pytest.raises(SageError, match="not in the local Hugging Face cache"):
        auto_preset("org/never-downloaded", rec("rtx4090"))
    with pytest.raises(SageError, match="Snapshot or a backend"):
        auto_preset(QWEN05, hardware=42)
