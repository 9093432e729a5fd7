"""The FLOP count behind MFU and the time plan (engine/hardware/flops.py), on known shapes,
and the cards' peaks by precision (engine/hardware/gpus.py)."""

from __future__ import annotations

import pytest

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.hardware.flops import flops_per_token, mfu
from sage_ft_tui.engine.hardware.gpus import close_names, find_gpu, peak_tflops
from sage_ft_tui.engine.models.shape import shape_from_config

# Meta-Llama-3-8B's config.json (the fields the count reads)
LLAMA3_8B = dict(
    hidden_size=4096,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14336,
    vocab_size=128256,
    tie_word_embeddings=False,
    hidden_act="silu",
    model_type="llama",
)
# Mixtral-8x7B: 8 experts, 2 per token
MIXTRAL = dict(LLAMA3_8B, vocab_size=32000, num_local_experts=8, num_experts_per_tok=2, model_type="mixtral")


@pytest.fixture(scope="module")
def llama():
    return shape_from_config(LLAMA3_8B, "llama-3-8b")


def test_full_fine_tune_is_the_textbook_six_n(llama):
    assert 8.0e9 < llama.total_params < 8.1e9
    n = llama.linear_params + llama.vocab * llama.hidden  # less the input embedding (a lookup) and norms
    assert 7.4e9 < n < 7.6e9
    f = flops_per_token(llama, method="full", seq_len=128)
    assert f.trained == pytest.approx(6 * n) and f.frozen == 0
    assert f.total == pytest.approx(6 * n, rel=0.01)  # attention is small at 128 tokens


def test_lora_skips_the_frozen_weights_gradients(llama):
    n = llama.linear_params + llama.vocab * llama.hidden
    f = flops_per_token(llama, lora_r=16, seq_len=128)
    assert f.frozen == pytest.approx(4 * n)
    assert f.trained == pytest.approx(6 * llama.lora_params(16))  # 42M adapters: 6·n
    assert f.total / (6 * n) == pytest.approx(2 / 3, abs=0.01)
    # fewer targets, fewer adapter FLOPs; the frozen part is the same
    qv = flops_per_token(llama, lora_r=16, target_modules=["q_proj", "v_proj"], seq_len=128)
    assert qv.frozen == f.frozen and qv.trained < f.trained / 5


def test_attention_grows_with_length_and_checkpointing_adds_a_forward(llama):
    short, long = flops_per_token(llama, seq_len=1024), flops_per_token(llama, seq_len=8192)
    # PaLM's 12·L·H·Q·T, halved by the causal mask
    assert long.attention == pytest.approx(6 * 32 * 8192 * 4096) == 8 * short.attention
    ckpt = flops_per_token(llama, seq_len=1024, gradient_checkpointing=True)
    head = llama.vocab * llama.hidden
    decoder_fwd = 2 * (llama.linear_params + llama.lora_params(16))
    assert ckpt.recompute == pytest.approx(decoder_fwd + short.attention / 3)
    assert ckpt.total > short.total and short.recompute == 0
    assert ckpt.recompute < 2 * (llama.linear_params + head + llama.lora_params(16))  # not the LM head


def test_head_dim_and_moe_count_what_a_token_meets():
    # Gemma-style: head_dim 256 with 8 heads of a 2048 hidden: attention is 8·256, not 2048
    g = shape_from_config(dict(LLAMA3_8B, hidden_size=2048, num_attention_heads=8, head_dim=256), "g")
    assert flops_per_token(g, seq_len=1000).attention == pytest.approx(6 * 32 * 1000 * 8 * 256)
    m = shape_from_config(MIXTRAL, "mixtral")
    f = flops_per_token(m, seq_len=128)
    mlp = 3 * 4096 * 14336
    # 2 of 8 experts: 6 experts' MLPs fewer than all of them, in every layer
    all_experts = m.linear_params + m.vocab * m.hidden
    assert f.frozen == pytest.approx(4 * (all_experts - 32 * 6 * mlp))


def test_bad_inputs_are_one_line_errors(llama):
    with pytest.raises(SageError, match="sequence length"):
        flops_per_token(llama, seq_len=0)
    with pytest.raises(SageError, match="unknown training method"):
        flops_per_token(llama, method="prefix")


def test_peaks_by_precision_and_mfu():
    h100 = find_gpu("NVIDIA H100 80GB HBM3")
    assert (h100.peak("bfloat16"), h100.peak("float16"), h100.peak("tf32"), h100.peak("float32")) == (
        989,
        989,
        494,
        67,
    )
    assert peak_tflops("Tesla T4", "float16") == 65 and peak_tflops("Tesla T4") is None  # no bf16 on Turing
    assert find_gpu("NVIDIA A10G").name == "A10G" and find_gpu("AMD Instinct MI300X").peak() == 1307
    for name in ("H100 PCIe", "H200", "A100 40GB", "A100 80GB", "L40S", "RTX 4090", "RTX 3090", "L4", "V100"):
        assert find_gpu(name).peak("float16")
    assert "H100 80GB" in close_names("H100 80G") and "RTX 4090" in close_names("RTX 4080")
    with pytest.raises(SageError, match=r"unknown GPU 'RTX 4080' \(close: RTX 4090"):
        find_gpu("RTX 4080")
    assert mfu(1000.0, 4e10, 989) == pytest.approx(1000 * 4e10 / 989e12)
    assert mfu(2000.0, 4e10, 989, gpus=2) == pytest.approx(mfu(1000.0, 4e10, 989))
    assert mfu(1000.0, 4e10, None) is None and mfu(None, 4e10, 989) is None
