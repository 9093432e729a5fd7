"""A model whose attention scores are softcapped (Gemma-2: tanh(s / c) * c before the softmax)
and windowed (sliding layers) gets, through every packed-row path of ours that `auto` may
pick for it, the logits and loss of its own eager forward — packed and alone — and the
test would fail if the softcap or the window were dropped."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from sage_ft_tui.engine.train import attention as A  # noqa: E402

LENGTHS = [9, 3, 14, 7]  # longer and shorter than the window


@pytest.fixture(scope="module")
def gemma2(tmp_path_factory):
    """A tiny Gemma-2 (real class) with a strong softcap and a short window: weights large
    enough that both change the logits."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(0)
    cfg = Gemma2Config(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        query_pre_attn_scalar=16,
        sliding_window=6,
        attn_logit_softcapping=2.0,
        final_logit_softcapping=30.0,
        initializer_range=0.3,
    )
    d = tmp_path_factory.mktemp("gemma2")
    Gemma2ForCausalLM(cfg).save_pretrained(str(d))
    return d


def _load(d, attn):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(d), attn_implementation=attn, dtype=torch.float32).eval()


def _batch(vocab):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rng = random.Random(0)
    exs = [[rng.randrange(2, vocab) for _ in range(n)] for n in LENGTHS]
    return exs, DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)([{"input_ids": e} for e in exs])


def test_auto_picks_a_softcapping_path(gemma2, monkeypatch):
    monkeypatch.delenv("SAGE_FT_ATTN", raising=False)
    needs = A.attention_needs(gemma2)
    assert needs.softcap == 2.0 and needs.sliding_window == 6
    cpu = A.choose_attention(cuda=False, dtype="float32", mdir=gemma2)
    assert cpu.name == A.VARLEN_EAGER and "softcap" in cpu.why
    assert A.choose_attention(cuda=True, dtype="bfloat16", mdir=gemma2, flash_attn=False).name == A.VARLEN_FLEX
    assert A.choose_attention(cuda=True, dtype="bfloat16", mdir=gemma2, flash_attn=True).name == A.FLASH
    assert A.softcap_score_mod(2.0) is A.softcap_score_mod(2.0)  # one compiled FlexAttention kernel per cap
    # never a path named sdpa: transformers refuses those for Gemma-2 (_supports_sdpa False)
    assert A.choose_attention(cuda=True, dtype="float32", mdir=gemma2, flash_attn=True).name == A.VARLEN_EAGER


@pytest.mark.parametrize("path", [A.VARLEN_EAGER, A.VARLEN_FLEX, A.VARLEN])
def test_packed_softcapped_equals_eager(gemma2, path):
    eager = _load(gemma2, "eager")
    ours = _load(gemma2, A.register(path))
    exs, batch = _batch(eager.config.vocab_size)
    with torch.no_grad():
        got = ours(**batch, use_cache=False)
        want = eager(**batch, use_cache=False)  # transformers' eager on the packed row (position_ids)
        assert got.loss.item() == pytest.approx(want.loss.item(), abs=1e-5)
        s = 0
        for e in exs:
            alone = eager(input_ids=torch.tensor([e]), use_cache=False).logits[0]
            assert torch.allclose(got.logits[0, s : s + len(e)], alone, atol=1e-4)
            s += len(e)


def test_the_check_has_teeth(gemma2):
    """Dropping the softcap, or the window, changes the logits far beyond the tolerance above."""
    from transformers import Gemma2ForCausalLM

    eager = _load(gemma2, "eager")
    ids = torch.tensor([_batch(eager.config.vocab_size)[0][2]])  # 14 tokens > window 6
    with torch.no_grad():
        want = eager(input_ids=ids).logits
        for change in ({"attn_logit_softcapping": None}, {"sliding_window": 4096}):
            other = Gemma2ForCausalLM(type(eager.config)(**{**eager.config.to_dict(), **change}))
            other.load_state_dict(eager.state_dict())
            other.config._attn_implementation = "eager"
            assert (other.eval()(input_ids=ids).logits - want).abs().max() > 0.1


def test_padded_batch_softcapped_equals_eager(gemma2):
    eager = _load(gemma2, "eager")
    ours = _load(gemma2, A.register(A.VARLEN_EAGER))
    ids = torch.randint(2, 128, (2, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding
    with torch.no_grad():
        got = ours(input_ids=ids, attention_mask=mask).logits
        want = eager(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(got[0], want[0], atol=1e-4)
    assert torch.allclose(got[1, 4:], want[1, 4:], atol=1e-4)


def test_auto_loads_gemma2_in_a_softcapping_path(gemma2, monkeypatch):
    """load_model's auto choice for the softcapped model: our eager-per-sequence path on CPU,
    said with its reason, no fallback needed."""
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.train.model import load_model

    monkeypatch.delenv("SAGE_FT_ATTN", raising=False)
    cfg = RunConfig.model_validate({"model": {"name": str(gemma2)}})
    att: dict = {}
    model = load_model(cfg, gemma2, att)
    assert model.config._attn_implementation == A.VARLEN_EAGER
    assert att["attention"] == A.VARLEN_EAGER and "softcap" in att["attention_why"]
    assert "attention_note" not in att


@pytest.mark.parametrize("asked", ["sdpa", "forced"])
def test_refused_attention_falls_back_with_a_note(gemma2, monkeypatch, capsys, asked):
    """Gemma-2 refuses `sdpa` (and SAGE_FT_ATTN=sage_varlen_sdpa): the model loads in the path
    auto takes for it, with one note line naming both and the model's reason, whole."""
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.train.model import load_model

    attn = "sdpa"
    if asked == "forced":
        monkeypatch.setenv("SAGE_FT_ATTN", A.VARLEN_SDPA)
        attn, asked = "auto", A.VARLEN_SDPA
    cfg = RunConfig.model_validate({"model": {"name": str(gemma2), "attn_implementation": attn}})
    att: dict = {}
    model = load_model(cfg, gemma2, att)
    assert model.config._attn_implementation == A.VARLEN_EAGER == att["attention"]
    note = att["attention_note"]
    assert f"cannot use {asked} (" in note and "scaled_dot_product_attention yet)" in note
    assert "https://" not in note and "\n" not in note
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "note: attention" in ln]
    assert len(lines) == 1 and lines[0].endswith(att["attention_why"])


@pytest.mark.parametrize("attn,words", [("auto", "applies it"), ("sdpa", "falls back from sdpa"), ("eager", None)])
def test_start_says_how_softcapping_is_honoured(gemma2, attn, words):
    """`start` prints config_warnings: one note for a softcapped model (none for eager, which
    applies the softcap itself); a model without softcapping gets none."""
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.runs.create import config_warnings

    cfg = RunConfig.model_validate({"model": {"name": str(gemma2), "attn_implementation": attn}})
    notes = [w for w in config_warnings(cfg) if w.startswith("note:")]
    if words is None:
        assert notes == []
    else:
        assert len(notes) == 1 and words in notes[0] and "(2)" in notes[0] and "\n" not in notes[0]
    assert not [w for w in config_warnings(RunConfig.model_validate({})) if w.startswith("note:")]
