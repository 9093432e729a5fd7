"""engine/hardware/estimate.py: shapes from config.json alone, the breakdown, and the estimate
against published figures (LLaMA-Factory's hardware table)."""

import json
from pathlib import Path

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import GiB, MiB
from sage_ft_tui.engine.hardware import estimate as mem
from sage_ft_tui.engine.hardware.estimate import TrainSetup
from sage_ft_tui.engine.hardware.probe import RecordedBackend
from sage_ft_tui.engine.models import shape as shapes

MODELS = Path(__file__).parent / "fixtures" / "hardware" / "models"
HW = Path(__file__).parent / "fixtures" / "hardware"
LLAMA2, QWEN7, QWEN05 = (str(MODELS / n) for n in ("llama-2-7b", "qwen2.5-7b", "qwen2.5-0.5b"))


@pytest.mark.parametrize(
    "path,params,lora8",
    [
        (LLAMA2, 6_738_415_616, 19_988_480),  # Llama-2-7b-hf: 6.74B; PEFT prints 19,988,480 trainable at r=8 all-linear
        (QWEN7, 7_615_616_512, 20_185_088),  # Qwen2.5-7B: 7.62B (model card)
        (QWEN05, 494_032_768, 4_399_104),  # Qwen2.5-0.5B: 0.49B (model card), tied embeddings
    ],
)
def test_param_counts_match_published(path, params, lora8):
    s = shapes.model_shape(path)
    assert s.total_params == params
    assert s.lora_params(8) == lora8


# LLaMA-Factory README, "Hardware Requirement" (estimated): 7B LoRA (16-bit) 16 GB,
# QLoRA 8-bit 10 GB, QLoRA 4-bit 6 GB. Compared at LLaMA-Factory's example settings
# (per_device_train_batch_size 1, cutoff_len 2048, lora_rank 8, all linear targets,
# gradient checkpointing on). The table is a rule of thumb for "a 7B"; Llama-2-7B is within
# 15%. Qwen2.5-7B keeps 1.09B embedding/lm_head parameters (152k vocabulary, untied)
# unquantized, so its 4-bit figure is ~1.6 GiB above the rule: allowed 25% there.
PUBLISHED = [
    (LLAMA2, "none", 16, 0.15),
    (LLAMA2, "8bit", 10, 0.15),
    (LLAMA2, "4bit", 6, 0.15),
    (QWEN7, "none", 16, 0.15),
    (QWEN7, "8bit", 10, 0.15),
    (QWEN7, "4bit", 6, 0.25),
]


@pytest.mark.parametrize("path,quant,gb,rel", PUBLISHED)
def test_against_llama_factory_table(path, quant, gb, rel):
    e = mem.estimate_memory(
        path,
        TrainSetup(
            quantization=quant, micro_batch=1, max_length=2048, lora_r=8, gradient_checkpointing=True, fused_loss=True
        ),
    )
    assert e.total / GiB == pytest.approx(gb, rel=rel), e.breakdown()


def test_breakdown_sums_and_dict():
    e = mem.estimate_memory(QWEN05, TrainSetup(micro_batch=4, max_length=1024), free=10 * GiB)
    parts = e.breakdown()
    assert sum(b for _, b, _ in parts) == e.total
    d = e.to_dict()
    json.dumps(d)
    assert d["total"] == e.total and d["fits"] is True and d["budget"] == 9 * GiB


def test_checkpointing_quantization_and_batch_move_the_estimate():
    base = dict(micro_batch=4, max_length=2048, fused_loss=True)
    off = mem.estimate_memory(LLAMA2, TrainSetup(gradient_checkpointing=False, **base))
    on = mem.estimate_memory(LLAMA2, TrainSetup(gradient_checkpointing=True, **base))
    assert off.activations > 10 * on.activations
    assert mem.estimate_memory(LLAMA2, TrainSetup(quantization="4bit", **base)).weights < on.weights / 3
    assert mem.estimate_memory(
        LLAMA2, TrainSetup(gradient_checkpointing=False, micro_batch=8, max_length=2048, fused_loss=True)
    ).activations == pytest.approx(2 * off.activations, rel=0.01)
    eight = mem.estimate_memory(LLAMA2, TrainSetup(optimizer="paged_adamw_8bit", **base))
    assert eight.optimizer_states == on.optimizer_states // 4


def test_unfused_loss_dominates_big_vocab():
    fused = mem.estimate_memory(QWEN05, TrainSetup(micro_batch=8, max_length=1024, fused_loss=True))
    full = mem.estimate_memory(QWEN05, TrainSetup(micro_batch=8, max_length=1024, fused_loss=False))
    assert full.logits == 12 * 151936 * 8192
    assert full.logits > 20 * fused.logits


def test_fits_against_free():
    e = mem.estimate_memory(QWEN7, TrainSetup(max_length=2048), free=12 * GiB)
    assert e.fits is False and "does not fit" in e.summary()
    assert mem.estimate_memory(QWEN7, TrainSetup(quantization="4bit", max_length=1024), free=12 * GiB).fits


def test_config_json_only_folder_and_file(tmp_path):
    (tmp_path / "config.json").write_text((MODELS / "qwen2.5-0.5b" / "config.json").read_text())
    assert shapes.model_shape(str(tmp_path)).total_params == 494_032_768
    assert shapes.model_shape(str(tmp_path / "config.json")).vocab == 151936


def test_hub_id_from_local_cache(tmp_path, monkeypatch):
    snap = tmp_path / "models--org--m" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text((MODELS / "llama-2-7b" / "config.json").read_text())
    (tmp_path / "models--org--m" / "refs").mkdir()
    (tmp_path / "models--org--m" / "refs" / "main").write_text("abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert shapes.model_shape("org/m").layers == 32
    with pytest.raises(SageError, match="not in the local Hugging Face cache"):
        shapes.model_shape("org/other")
    assert shapes.model_shape("Qwen/Qwen2.5-7B-Instruct").total_params == 7_615_616_512  # built-in shape


def test_multimodal_text_config():
    cfg = {"model_type": "llava", "text_config": json.loads((MODELS / "llama-2-7b" / "config.json").read_text())}
    assert shapes.shape_from_config(cfg).hidden == 4096


@pytest.mark.parametrize(
    "ref,msg",
    [
        ("", "no model given"),
        ("/no/such/dir", "no such model folder"),
        ("a b c", "no such model folder"),
    ],
)
def test_bad_model_refs(ref, msg):
    with pytest.raises(SageError, match=msg):
        shapes.model_shape(ref)


@pytest.mark.parametrize(
    "content,msg",
    [
        ("{", "not a readable config.json"),
        ("[]", "not a JSON object"),
        ('{"hidden_size": 8}', "no num_hidden_layers"),
        ('{"hidden_size": 8, "num_hidden_layers": "x", "vocab_size": 10}', "not a positive integer"),
    ],
)
def test_bad_configs(tmp_path, content, msg):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(SageError, match=msg) as e:
        shapes.model_shape(str(tmp_path))
    assert "\n" not in e.value.oneline()


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(micro_batch=0), "micro-batch"),
        (dict(max_length=-1), "max length"),
        (dict(quantization="3bit"), "quantization"),
        (dict(dtype="int8"), "dtype"),
        (dict(optimizer="lion"), "optimizer"),
        (dict(device="tpu"), "device"),
        (dict(quantization="4bit", device="cpu"), "need a CUDA GPU"),
        (dict(target_modules=["c_attn"]), "match no linear"),
    ],
)
def test_bad_estimate_inputs(kw, msg):
    with pytest.raises(SageError, match=msg):
        mem.estimate_memory(QWEN05, TrainSetup(**kw))


def test_estimate_for_config_uses_hardware():
    rc = RunConfig.from_dict(
        {
            "model": {"name": QWEN7},
            "training": {"max_length": 2048, "micro_batch_size": 1, "gradient_checkpointing": True},
        }
    )
    snap = RecordedBackend(HW / "shared_a100_70pct.json").snapshot()
    e = mem.estimate_for_config(rc, snap)
    assert e.device == "cuda" and e.dtype == "bfloat16" and e.free == snap.gpus[0].mem_free and e.fits is False
    cpu = mem.estimate_for_config(rc, RecordedBackend(HW / "no_gpu.json").snapshot())
    assert cpu.device == "cpu" and cpu.dtype == "float32" and cpu.cuda_overhead < GiB


def test_tiny_demo(tmp_path, monkeypatch):
    """tiny-demo resolves to its built folder's config.json (written here as the builder would)."""
    from sage_ft_tui.engine.models.tiny import ARCH, VOCAB, tiny_model_dir

    monkeypatch.setenv("SAGE_FT_CACHE", str(tmp_path))
    tiny_model_dir().mkdir(parents=True)
    (tiny_model_dir() / "config.json").write_text(
        json.dumps({**ARCH, "vocab_size": VOCAB, "model_type": "llama", "tie_word_embeddings": True})
    )
    e = mem.estimate_memory("tiny-demo", TrainSetup(device="cpu", dtype="float32", max_length=256))
    assert e.total_params < 5_000_000 and e.total < GiB


def test_cpu_estimate_follows_the_bench_run_and_its_autocast(tmp_path, monkeypatch):
    """The ~18M bench model (bench/bench_vs_llamafactory.py: 8 × 512 packed tokens, LoRA r 8, no
    dropout) on CPU: fp32 measured at a 2,100 MiB peak RSS (bench/profile_memory.py, 2026-12-06);
    the estimate stays within ±10%. Under bf16 autocast the activations are kept as 16-bit."""
    from sage_ft_tui.engine.models.tiny import ARCH, VOCAB

    arch = dict(hidden_size=384, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=6)
    conf = {**ARCH, **arch, "num_key_value_heads": 2, "head_dim": 64, "vocab_size": VOCAB}
    (tmp_path / "config.json").write_text(json.dumps({**conf, "model_type": "llama", "tie_word_embeddings": True}))
    kw = dict(device="cpu", dtype="float32", micro_batch=8, max_length=512, gradient_checkpointing=False)
    kw |= dict(lora_r=8, lora_dropout=0.0, optimizer="adamw_torch")
    fp32 = mem.estimate_memory(str(tmp_path), TrainSetup(**kw))
    assert fp32.total / MiB == pytest.approx(2100, rel=0.10)
    bf16 = mem.estimate_memory(str(tmp_path), TrainSetup(autocast=True, **kw))
    assert bf16.weights == fp32.weights and bf16.activations < 0.6 * fp32.activations
    # who autocasts: asked for, or auto on a native-bf16 CPU for a model wide enough
    assert mem.cpu_autocasts("bf16", "auto", 64, native=False)
    assert mem.cpu_autocasts("auto", "auto", 384, native=True) and not mem.cpu_autocasts("auto", "auto", 64, True)
    assert not mem.cpu_autocasts("auto", "auto", 384, native=False) and not mem.cpu_autocasts("fp32", "auto", 384, True)
    rc = RunConfig.from_dict({"model": {"name": str(tmp_path)}, "training": {"precision": "bf16"}})
    est = mem.estimate_for_config(rc, RecordedBackend(HW / "no_gpu.json").snapshot())
    assert any("autocast" in n for n in est.notes)
    monkeypatch.setenv("SAGE_FT_CPU_BF16", "0")
    assert not mem.cpu_native_bf16()
