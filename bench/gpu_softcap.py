"""On a CUDA GPU: do the attention paths `auto` may take for a softcapped model (Gemma-2)
give its eager logits? A tiny random Gemma-2 (strong softcap, short window) in bf16, a packed
row of four sequences; prints, per path, the largest logit difference from eager on each
sequence alone, the loss difference, and the time of a forward+backward. Prints figures, never
passes or fails (tests/unit/test_attention_softcap.py checks the same on CPU in fp32).

    python bench/gpu_softcap.py
"""

from __future__ import annotations

import importlib.util
import random
import tempfile
import time
from pathlib import Path


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, Gemma2Config, Gemma2ForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from sage_ft_tui.engine.train import attention as A

    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to measure (the CPU paths are checked by the tests)")
        return
    torch.manual_seed(0)
    cfg = Gemma2Config(
        vocab_size=512,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=32,
        query_pre_attn_scalar=32,
        sliding_window=64,
        attn_logit_softcapping=2.0,
        final_logit_softcapping=30.0,
        initializer_range=0.3,
    )
    folder = tempfile.mkdtemp(prefix="gemma2-softcap-")
    Gemma2ForCausalLM(cfg).save_pretrained(folder)
    rng = random.Random(0)
    lengths = [300, 17, 129, 64]
    exs = [[rng.randrange(2, cfg.vocab_size) for _ in range(n)] for n in lengths]
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)([{"input_ids": e} for e in exs])
    batch = {k: v.cuda() if hasattr(v, "cuda") else v for k, v in batch.items()}

    def load(attn):
        return AutoModelForCausalLM.from_pretrained(folder, attn_implementation=attn, dtype=torch.bfloat16).cuda()

    eager = load("eager").eval()
    with torch.no_grad():
        want_loss = eager(**batch, use_cache=False).loss.float().item()
        alone = [eager(input_ids=torch.tensor([e]).cuda(), use_cache=False).logits[0].float() for e in exs]
    paths = [A.VARLEN_FLEX, A.VARLEN, A.VARLEN_EAGER]
    if importlib.util.find_spec("flash_attn") is not None:
        paths.insert(0, A.FLASH)
    print(f"auto takes: {A.choose_attention(cuda=True, dtype='bfloat16', mdir=Path(folder))}")
    for path in paths:
        try:
            model = load(A.register(path)).eval()
            with torch.no_grad():
                out = model(**batch, use_cache=False)
            s, worst = 0, 0.0
            for e, ref in zip(exs, alone):
                worst = max(worst, (out.logits[0, s : s + len(e)].float() - ref).abs().max().item())
                s += len(e)
            model.train()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(5):
                model(**batch, use_cache=False).loss.backward()
            torch.cuda.synchronize()
            ms = (time.perf_counter() - t0) / 5 * 1000
            print(
                f"{path:20s} max |logit - eager alone| {worst:.4f}   "
                f"loss {out.loss.float().item():.5f} vs eager {want_loss:.5f}   fwd+bwd {ms:.1f} ms"
            )
        except Exception as e:  # noqa: BLE001 - a path that breaks is a finding to print
            print(f"{path:20s} FAILED: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
