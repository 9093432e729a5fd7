"""The attention paths for packed rows agree with each other on CPU: per-sequence SDPA,
FlexAttention with a document mask (the torch-native GPU path, unfused on CPU), and the
torch varlen_attn wrapper (its CUDA kernel stood in by a CPU reference of the same
signature); and `choose_attention` picks the path the doctor reports."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from sage_ft_tui.engine.train import attention as A  # noqa: E402

BOUNDS = [0, 37, 42, 162, 230]


class _Module(torch.nn.Module):
    is_causal = True
    num_key_value_groups = 2  # 4 query heads over 2 KV heads, as transformers sets it


def _qkv(heads=4, kv=2, dim=8):
    g = torch.Generator().manual_seed(0)
    n = BOUNDS[-1]
    return (torch.randn(1, h, n, dim, generator=g) for h in (heads, kv, kv))


def _reference_varlen(q, k, v, cu_q, cu_k, max_q, max_k, *, scale=None, window_size=(-1, -1), enable_gqa=False):
    """torch varlen_attn's contract ((L, H, D) in and out, causal via window (-1, 0)) on CPU."""
    outs = []
    for s, e in zip(cu_q.tolist()[:-1], cu_q.tolist()[1:]):
        qs, ks, vs = (t[s:e].transpose(0, 1) for t in (q, k, v))
        i = torch.arange(e - s)
        m = i[None, :] <= i[:, None]
        if window_size[0] >= 0:
            m &= i[None, :] >= i[:, None] - window_size[0]
        o = torch.nn.functional.scaled_dot_product_attention(
            qs, ks, vs, attn_mask=m, scale=scale, enable_gqa=enable_gqa
        )
        outs.append(o.transpose(0, 1))
    return torch.cat(outs)


@pytest.mark.parametrize("window", [None, 16])
def test_flex_and_varlen_equal_per_sequence_sdpa(window):
    q, k, v = _qkv()
    mod = _Module()
    ref = A.per_sequence_sdpa(mod, q, k, v, BOUNDS, scaling=0.3, window=window)
    flex = A.flex_varlen(mod, q, k, v, BOUNDS, scaling=0.3, window=window)
    var = A.torch_varlen(mod, q, k, v, BOUNDS, scaling=0.3, window=window, kernel=_reference_varlen)
    assert ref.shape == flex.shape == var.shape == (1, BOUNDS[-1], 4, 8)
    assert torch.allclose(flex, ref, atol=1e-5)
    assert torch.allclose(var, ref, atol=1e-5)


def test_flex_model_keeps_packed_sequences_apart(tiny_model):
    """The tiny model with attn_implementation sage_varlen_flex: a packed row built by TRL's
    collator gives each example its loss alone (as tests/unit/test_packing.py does for SDPA)."""
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rng = random.Random(0)
    exs = [[rng.randrange(10, 1000) for _ in range(n)] for n in (37, 5, 120, 68)]
    name = A.register(A.VARLEN_FLEX)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), attn_implementation=name, dtype=torch.float32).eval()
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)([{"input_ids": e} for e in exs])
    with torch.no_grad():
        logits = model(**batch, use_cache=False).logits
        s = 0
        for e in exs:
            alone = model(input_ids=torch.tensor([e]), use_cache=False).logits
            assert torch.allclose(logits[0, s : s + len(e)], alone[0], atol=1e-4)
            s += len(e)


@pytest.mark.parametrize(
    "cuda,dtype,flash,varlen,want",
    [
        (False, "float32", False, False, A.VARLEN_SDPA),
        (True, "bfloat16", True, True, A.FLASH),
        (True, "bfloat16", False, True, A.VARLEN),
        (True, "float16", False, False, A.VARLEN_FLEX),
        (True, "float32", True, True, A.VARLEN_SDPA),
    ],
)
def test_choose_attention(monkeypatch, cuda, dtype, flash, varlen, want):
    monkeypatch.delenv("SAGE_FT_ATTN", raising=False)
    c = A.choose_attention(cuda=cuda, dtype=dtype, flash_attn=flash, torch_varlen=varlen)
    assert c.name == want and c.why


def test_choose_attention_forced_and_special(monkeypatch, tmp_path):
    import json

    from sage_ft_tui.engine.errors import SageError

    monkeypatch.setenv("SAGE_FT_ATTN", A.VARLEN_FLEX)
    assert A.choose_attention(cuda=False, dtype="float32").name == A.VARLEN_FLEX
    monkeypatch.setenv("SAGE_FT_ATTN", "nope")
    with pytest.raises(SageError):
        A.choose_attention(cuda=False, dtype="float32")
    monkeypatch.delenv("SAGE_FT_ATTN")
    (tmp_path / "config.json").write_text(json.dumps({"attention_chunk_size": 8192}))
    assert A.choose_attention(cuda=True, dtype="bfloat16", mdir=tmp_path).name == "sdpa"


def test_doctor_says_which_path_and_why(monkeypatch):
    from sage_ft_tui.engine.hardware.doctor import training_paths

    monkeypatch.delenv("SAGE_FT_ATTN", raising=False)
    cpu = training_paths(cuda=False, bf16=False)
    assert cpu["attention"].startswith(A.VARLEN_SDPA) and "precision" in cpu
    gpu = training_paths(cuda=True, bf16=True)
    want = A.choose_attention(cuda=True, dtype="bfloat16").name
    assert gpu["attention"].startswith(want + ":") and gpu["precision"].startswith("bf16")
    assert "quantization" in gpu and "kernels" in gpu


def test_torch_varlen_needs_the_keywords_we_pass(monkeypatch):
    """A varlen_attn without scale/window_size/enable_gqa (torch 2.10 took is_causal) counts as
    absent, so a CUDA bf16 run takes FlexAttention instead of raising at its first step."""
    import types

    import torch.nn.attention.varlen as tv

    from sage_ft_tui.engine.train import attention

    assert attention.torch_varlen_available()  # this torch's varlen_attn takes them

    def old(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, is_causal=False):
        raise AssertionError("never called")

    monkeypatch.setattr(tv, "varlen_attn", old)
    assert not attention.torch_varlen_available()
    monkeypatch.setattr(tv, "varlen_attn", types.SimpleNamespace())  # no signature to read
    assert not attention.torch_varlen_available()
