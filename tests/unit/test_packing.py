"""Packing without cross-example attention: a padding-free packed row, built by TRL's own
collator exactly as SFTTrainer builds it, gives every example the loss it gets alone."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

LENGTHS = [37, 5, 120, 300, 64]


def _examples(vocab: int) -> list[list[int]]:
    rng = random.Random(0)
    return [[rng.randrange(10, vocab) for _ in range(n)] for n in LENGTHS]


def _per_example(logits, ids, lengths):
    out, s = [], 0
    for n in lengths:
        out.append(torch.nn.functional.cross_entropy(logits[0, s : s + n - 1], ids[0, s + 1 : s + n]).item())
        s += n
    return out


@pytest.fixture(scope="module")
def models(tiny_model):
    from transformers import AutoModelForCausalLM

    from sage_ft_tui.engine.train.attention import register_varlen_sdpa

    torch.manual_seed(0)
    name = register_varlen_sdpa()
    out = {
        a: AutoModelForCausalLM.from_pretrained(str(tiny_model), attn_implementation=a, dtype=torch.float32).eval()
        for a in ("sdpa", name)
    }
    out[name].load_state_dict(out["sdpa"].state_dict())
    return out


@pytest.mark.parametrize("attn", ["sdpa", "sage_varlen_sdpa"])
def test_packed_losses_equal_unpacked(models, attn):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model = models[attn]
    exs = _examples(model.config.vocab_size)
    batch = DataCollatorForLanguageModeling(pad_token_id=model.config.pad_token_id, padding_free=True)(
        [{"input_ids": e} for e in exs]
    )
    assert batch["input_ids"].shape == (1, sum(LENGTHS)) and "attention_mask" not in batch
    with torch.no_grad():
        # use_cache=False: what SFTTrainer.compute_loss passes.
        packed_out = model(**batch, use_cache=False)
        packed = _per_example(packed_out.logits, batch["input_ids"], LENGTHS)
        alone = [_per_example(model(input_ids=torch.tensor([e])).logits, torch.tensor([e]), [len(e)])[0] for e in exs]
    assert packed == pytest.approx(alone, abs=1e-5)
    # The trainer's loss over the packed row = the token-weighted mean of the examples alone.
    weights = [n - 1 for n in LENGTHS]
    expected = sum(w * x for w, x in zip(weights, alone)) / sum(weights)
    assert packed_out.loss.item() == pytest.approx(expected, abs=1e-5)


def test_varlen_bounds_from_position_ids_even_with_cache(models):
    """Without cu_seq_lens (a caller passing position_ids only) and even with use_cache on, where
    transformers builds no packed mask for plain SDPA, sequences stay apart."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model = models["sage_varlen_sdpa"]
    exs = _examples(model.config.vocab_size)
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)([{"input_ids": e} for e in exs])
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        alone = [_per_example(model(input_ids=torch.tensor([e])).logits, torch.tensor([e]), [len(e)])[0] for e in exs]
    assert _per_example(logits, batch["input_ids"], LENGTHS) == pytest.approx(alone, abs=1e-5)


def test_padded_batch_unchanged(models):
    """A padded batch (packing off) goes through plain SDPA with its mask: same logits."""
    ids = torch.tensor([[11, 12, 13, 14, 15], [21, 22, 23, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        a = models["sdpa"](input_ids=ids, attention_mask=mask, use_cache=False).logits
        b = models["sage_varlen_sdpa"](input_ids=ids, attention_mask=mask, use_cache=False).logits
    assert torch.allclose(a[mask.bool()], b[mask.bool()], atol=1e-5)


def test_auto_attention_on_cpu_is_varlen(tiny_model):
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.train.model import load_model

    if torch.cuda.is_available():
        pytest.skip("CPU choice")
    cfg = RunConfig.from_dict({"model": {"name": "tiny-demo", "dtype": "float32"}}, source="test")
    model = load_model(cfg, tiny_model)
    assert model.config._attn_implementation == "sage_varlen_sdpa"


def test_sliding_window_layers_keep_their_window():
    """A sliding-window model (Mistral-style, window 16 < some sequences): per-sequence calls
    apply the window, packed or not, as plain SDPA's mask does."""
    from transformers import MistralConfig, MistralForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from sage_ft_tui.engine.train.attention import register_varlen_sdpa

    name = register_varlen_sdpa()
    torch.manual_seed(0)
    cfg = MistralConfig(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=16,
        pad_token_id=0,
    )
    ref = MistralForCausalLM(cfg).eval()
    ref.set_attn_implementation("sdpa")
    ours = MistralForCausalLM(cfg).eval()
    ours.load_state_dict(ref.state_dict())
    ours.set_attn_implementation(name)
    exs = _examples(300)
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)([{"input_ids": e} for e in exs])
    with torch.no_grad():
        packed = _per_example(ours(**batch, use_cache=False).logits, batch["input_ids"], LENGTHS)
        alone = [
            _per_example(ref(input_ids=torch.tensor([e]), use_cache=False).logits, torch.tensor([e]), [len(e)])[0]
            for e in exs
        ]
        alone_ours = [
            _per_example(ours(input_ids=torch.tensor([e]), use_cache=False).logits, torch.tensor([e]), [len(e)])[0]
            for e in exs
        ]
    assert packed == pytest.approx(alone, abs=1e-5)
    assert alone_ours == pytest.approx(alone, abs=1e-5)
