"""CPU speed-ups keep the same training signal: the compact LM head (answer positions only)
gives TRL's fused head's loss, gradients and metrics; bf16 autocast is chosen only where it
pays (native bf16 CPU, a model wide enough) and follows the fp32 loss closely."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")


def _batch(vocab):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rng = random.Random(0)
    rows = []
    for n in (40, 7, 90, 33):
        ids = [rng.randrange(10, vocab) for _ in range(n)]
        rows.append({"input_ids": ids, "completion_mask": [0] * (n // 3) + [1] * (n - n // 3)})
    return DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(rows)


def test_compact_head_equals_trl_fused_head(tiny_model):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from sage_ft_tui.engine.train.trainer import compact_lm_head

    outs = []
    for compact in (False, True):
        torch.manual_seed(0)
        m = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32)
        m = get_peft_model(m, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
        add_fused_lm_head(m.get_base_model(), outputs=("log_probs", "entropy", "is_top1"))
        if compact:
            assert compact_lm_head(m)
        batch = _batch(m.config.vocab_size)
        assert (batch["labels"] == -100).any() and (batch["labels"] != -100).any()
        out = m(**batch, fused_lm_head=True, use_cache=False)
        out.loss.backward()
        grad = next(p.grad for n, p in m.named_parameters() if "lora_A" in n)
        outs.append((out.loss.item(), out.entropy.sum().item(), out.is_top1.sum().item(), grad.clone()))
    (l0, e0, t0, g0), (l1, e1, t1, g1) = outs
    assert l1 == pytest.approx(l0, abs=1e-5)
    assert e1 == pytest.approx(e0, rel=1e-4) and t1 == t0
    assert torch.allclose(g0, g1, atol=1e-6)


def test_bf16_autocast_only_where_it_pays(monkeypatch, tiny_model, tmp_path):
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.models.tiny import build_tiny_model
    from sage_ft_tui.engine.train import trainer

    wide = tmp_path / "wide"
    build_tiny_model(wide, seed=0, hidden_size=256, intermediate_size=512, num_hidden_layers=1)
    monkeypatch.setattr(trainer, "cpu_bf16_fast", lambda: True)
    monkeypatch.setattr(trainer, "_cuda", lambda: False)

    def flags(name, **training):
        return trainer.precision_flags(RunConfig.from_dict({"model": {"name": str(name)}, "training": training}))

    assert flags(wide)["bf16"] and not flags(tiny_model)["bf16"]  # the tiny demo (hidden 64) stays fp32
    assert not flags(wide, precision="fp32")["bf16"]
    monkeypatch.setattr(trainer, "cpu_bf16_fast", lambda: False)
    assert not flags(wide)["bf16"]


def test_bf16_autocast_loss_follows_fp32(tiny_model):
    """Forward + loss under CPU bf16 autocast (fp32 weights) within 1% of fp32."""
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32).eval()
    batch = _batch(m.config.vocab_size)
    with torch.no_grad():
        ref = m(**batch, use_cache=False).loss.item()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = m(**batch, use_cache=False).loss.item()
    assert low == pytest.approx(ref, rel=1e-2)
