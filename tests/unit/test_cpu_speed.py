"""CPU speed-ups keep the same training signal: the compact LM head (answer positions only)
gives TRL's fused head's loss, gradients and metrics; bf16 autocast is chosen only where it
pays (native bf16 CPU, a model wide enough) and follows the fp32 loss closely; the fused LoRA
linear gives peft's loss and gradients, falls back to peft where it would differ, and trains
an adapter that plain peft loads and generates with."""

from __future__ import annotations

import os
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

    from sage_ft_tui.engine.train.model import compact_lm_head

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
    from sage_ft_tui.engine.train import model as train_model

    wide = tmp_path / "wide"
    build_tiny_model(wide, seed=0, hidden_size=256, intermediate_size=512, num_hidden_layers=1)
    monkeypatch.setattr(train_model, "cpu_bf16_fast", lambda: True)
    monkeypatch.setattr(train_model, "on_cuda", lambda: False)

    def flags(name, **training):
        return train_model.precision_flags(RunConfig.from_dict({"model": {"name": str(name)}, "training": training}))

    assert flags(wide)["bf16"] and not flags(tiny_model)["bf16"]  # the tiny demo (hidden 64) stays fp32
    assert not flags(wide, precision="fp32")["bf16"]
    monkeypatch.setattr(train_model, "cpu_bf16_fast", lambda: False)
    assert not flags(wide)["bf16"]


def test_precision_used_is_recorded_and_hashed(monkeypatch, tmp_path):
    """The label the start event and status.json carry, and the config hash it changes:
    SAGE_FT_CPU_BF16=0 makes another run of the same config.yaml (an AMX CPU stood in)."""
    from types import SimpleNamespace

    from transformers import AutoModelForCausalLM

    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.models.tiny import build_tiny_model
    from sage_ft_tui.engine.train import model as train_model

    wide = tmp_path / "wide"
    build_tiny_model(wide, seed=0, hidden_size=256, intermediate_size=512, num_hidden_layers=1)
    monkeypatch.setattr(train_model, "on_cuda", lambda: False)
    monkeypatch.setattr(train_model, "cpu_bf16_fast", lambda: os.environ.get("SAGE_FT_CPU_BF16", "1") != "0")
    cfg = RunConfig.from_dict({"model": {"name": str(wide)}})
    model = AutoModelForCausalLM.from_pretrained(str(wide), dtype=torch.float32)
    labels = {}
    for env in ("1", "0"):
        monkeypatch.setenv("SAGE_FT_CPU_BF16", env)
        labels[env] = train_model.precision_used(SimpleNamespace(**train_model.precision_flags(cfg)), model, "none")
    assert labels == {"1": "bf16 autocast (fp32 weights)", "0": "fp32"}
    assert cfg.hash(precision=labels["1"]) != cfg.hash(precision=labels["0"])
    half = SimpleNamespace(bf16=True, fp16=False)
    assert train_model.precision_used(half, model.to(torch.bfloat16), "none") == "bf16"
    assert train_model.precision_used(half, model, "4bit") == "4-bit nf4, bf16 compute"


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


def _config(path):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(path))


def _lora_model(path, fused, dropout=0.0, seed=0):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from sage_ft_tui.engine.train import fast_lora

    torch.manual_seed(seed)
    m = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules="all-linear", init_lora_weights=False)
    m = get_peft_model(m, cfg)
    if fused:
        assert fast_lora.apply(m) == 7 * m.config.num_hidden_layers  # q k v o gate up down
    return m


def _loss_and_grads(m, batch, bf16=False):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = m(**batch, use_cache=False).loss
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in m.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("bf16", [False, True])
def test_fused_lora_same_loss_and_gradients_as_peft(tiny_model, bf16):
    """One autograd node per LoRA linear, hand-written backward: peft's loss and gradients
    (fp32: 1e-5; bf16 autocast: bf16 rounding, a looser bound)."""
    conf = _config(tiny_model)
    batch = _batch(conf.vocab_size)
    (l0, g0), (l1, g1) = (_loss_and_grads(_lora_model(tiny_model, f), batch, bf16) for f in (False, True))
    assert g0.keys() == g1.keys() and len(g0) == 2 * 7 * conf.num_hidden_layers  # A and B of each, same names
    tol = 2e-2 if bf16 else 1e-5
    assert l1 == pytest.approx(l0, abs=tol)
    for n in g0:
        scale = g0[n].abs().max().item()
        assert (g1[n] - g0[n]).abs().max().item() <= tol * max(scale, 1e-3) * (5 if bf16 else 1), n


def test_fused_lora_falls_back_where_it_differs(tiny_model):
    """Dropout, disabled adapters (DPO's reference pass): peft's own forward, same outputs."""
    from sage_ft_tui.engine.train import fast_lora

    batch = _batch(_config(tiny_model).vocab_size)
    ref, m = _lora_model(tiny_model, False, dropout=0.1), _lora_model(tiny_model, True, dropout=0.1)
    ref.train(), m.train()
    torch.manual_seed(1)
    a = ref(**batch, use_cache=False).loss
    torch.manual_seed(1)
    b = m(**batch, use_cache=False).loss
    assert b.item() == a.item()  # the same dropout masks: peft's path ran
    layer = m.get_base_model().model.layers[0].self_attn.q_proj
    x = torch.randn(3, layer.in_features)
    with m.disable_adapter():
        assert not fast_lora._plain(layer, x)
        assert torch.equal(layer(x), layer.base_layer(x))


def test_fused_lora_adapter_loads_in_plain_peft(tiny_model, tmp_path):
    """Trained through the fused path, saved by peft: plain peft loads it onto a fresh base
    and generates the same tokens; the weights are those of the unfused path's training."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    batch = _batch(_config(tiny_model).vocab_size)
    trained = []
    for fused in (False, True):
        m = _lora_model(tiny_model, fused)
        opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
        for _ in range(3):
            m(**batch, use_cache=False).loss.backward()
            opt.step()
            opt.zero_grad()
        trained.append(m)
    ref, m = trained
    for (n0, p0), (n1, p1) in zip(ref.named_parameters(), m.named_parameters()):
        assert n0 == n1 and torch.allclose(p0, p1, atol=1e-5), n0
    m.save_pretrained(str(tmp_path / "adapter"))
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32)
    plain = PeftModel.from_pretrained(base, str(tmp_path / "adapter")).eval()
    m.eval()
    prompt = batch["input_ids"][:, :12]
    kw = dict(max_new_tokens=10, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        assert torch.equal(plain.generate(input_ids=prompt, **kw), m.generate(input_ids=prompt, **kw))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):  # inference tensors: no version
        assert m(input_ids=prompt).logits.dtype == torch.bfloat16
