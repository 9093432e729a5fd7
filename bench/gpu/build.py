"""Random-weight models of real shapes (no hub) and a synthetic text data set."""

from __future__ import annotations

import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QWEN_05B = ROOT / "tests" / "unit" / "fixtures" / "hardware" / "models" / "qwen2.5-0.5b" / "config.json"

# Overrides of Qwen2.5-0.5B's config.json. 1.5B: Qwen2.5-1.5B's published config (hidden 1536,
# 28 layers, 12 query / 2 KV heads, MLP 8960, same 151,936-token vocabulary, tied embeddings).
# tiny: the same architecture at the size of the tiny demo, for --cpu-smoke.
SHAPES: dict[str, dict] = {
    "0.5b": {},
    "1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        max_window_layers=28,
        max_position_embeddings=131072,
        sliding_window=131072,
    ),
    "tiny": dict(
        hidden_size=64,
        intermediate_size=176,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_window_layers=2,
        max_position_embeddings=4096,
        sliding_window=4096,
    ),
}


def shape_config(name: str, vocab: int) -> dict:
    """config.json for shape `name` (the tiny one takes the tokenizer's vocabulary)."""
    conf = json.loads(QWEN_05B.read_text(encoding="utf-8"))
    conf.pop("architectures", None)
    conf.update(SHAPES[name])
    if name == "tiny":
        conf["vocab_size"] = vocab
    return conf


def build_model(out: Path, shape: str) -> Path:
    """Qwen2-architecture model of `shape` with random bf16 weights and the tiny demo's BPE
    tokenizer (ChatML template), saved as safetensors. Reused when already built."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from sage_ft_tui.engine.models.tiny import chat_tokenizer

    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return out
    out.mkdir(parents=True, exist_ok=True)
    tok = chat_tokenizer(max_length=32768)
    tok.save_pretrained(out)
    conf = shape_config(shape, len(tok))
    conf.update(
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
        torch_dtype="bfloat16",
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM._from_config(Qwen2Config(**conf), dtype=torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    return out


def build_data(path: Path, rows: int, words: int = 220) -> Path:
    """`rows` lines of {"text": ...}: random words of the packaged sample text."""
    if path.exists():
        return path
    rnd = random.Random(0)
    text = (ROOT / "sage_ft_tui" / "samples" / "text.txt").read_text(encoding="utf-8")
    vocab = [w for w in text.split() if w.isalpha()] or ["alpha", "beta", "gamma", "delta"]
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(rows):
            n = rnd.randint(words // 2, words * 2)
            fh.write(json.dumps({"text": " ".join(rnd.choice(vocab) for _ in range(n))}) + "\n")
    return path
