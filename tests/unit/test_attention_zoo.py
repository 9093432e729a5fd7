"""Every zoo family through the attention `auto` takes for it on CPU: a packed row (TRL's
padding-free collator) gives each example the logits the model's own eager attention gives
it alone — softcapping (Gemma-2), query_pre_attn_scalar (Gemma), head_dim != hidden/heads
(Mistral-Nemo), partial rotary (Phi-4-mini), GQA — with each family's sliding window shortened
to 8 tokens where the family has one, so that windowed layers are exercised."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from tests.zoo.families import FAMILIES  # noqa: E402

LENGTHS = [19, 4, 11]
WINDOW = 8


@pytest.mark.parametrize("name", list(FAMILIES))
def test_auto_packed_equals_eager_alone(zoo, name, monkeypatch):
    from transformers import AutoConfig, AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from sage_ft_tui.engine.train import attention as A

    monkeypatch.delenv("SAGE_FT_ATTN", raising=False)
    d = zoo[name]
    conf = AutoConfig.from_pretrained(str(d))
    windowed = getattr(conf, "sliding_window", None) and getattr(conf, "use_sliding_window", True) is not False
    over = {"sliding_window": WINDOW} if windowed else {}
    choice = A.choose_attention(cuda=False, dtype="float32", mdir=d)
    models = {
        a: AutoModelForCausalLM.from_pretrained(str(d), attn_implementation=a, dtype=torch.float32, **over).eval()
        for a in ("eager", A.register(choice.name))
    }
    rng = random.Random(0)
    exs = [[rng.randrange(3, conf.vocab_size) for _ in range(n)] for n in LENGTHS]
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)([{"input_ids": e} for e in exs])
    with torch.no_grad():
        packed = models[choice.name](**batch, use_cache=False).logits[0]
        s = 0
        for e in exs:
            alone = models["eager"](input_ids=torch.tensor([e]), use_cache=False).logits[0]
            assert torch.allclose(packed[s : s + len(e)], alone, atol=1e-4), (name, choice.name)
            s += len(e)
