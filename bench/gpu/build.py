"""Random-weight models of real shapes (no hub) and a synthetic text data set."""

from __future__ import annotations

import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QWEN_05B = ROOT / "tests" / "unit" / "fixtures" / "hardware" / "models" / "qwen2.5-0.5b" / "config.json"

# The families users train, at their published config.json shapes (random weights; no hub).
# Qwen: overrides of Qwen2.5-0.5B's config.json (the fixture). Llama-3.2-1B, Gemma-2-2B and
# Llama-3.1-8B: their published shapes (hidden, layers, heads, MLP, vocabulary, tying, Gemma-2's
# softcaps and sliding window). tiny-*: the same architectures at the tiny demo's size, for
# --cpu-smoke (vocabulary = the tokenizer's).
LLAMA = dict(
    model_type="llama",
    hidden_act="silu",
    rms_norm_eps=1e-5,
    rope_theta=500000.0,
    max_position_embeddings=131072,
    vocab_size=128256,
    attention_bias=False,
    mlp_bias=False,
    head_dim=64,
)
GEMMA2 = dict(
    model_type="gemma2",
    hidden_size=2304,
    intermediate_size=9216,
    num_hidden_layers=26,
    num_attention_heads=8,
    num_key_value_heads=4,
    head_dim=256,
    vocab_size=256000,
    hidden_activation="gelu_pytorch_tanh",
    attn_logit_softcapping=50.0,
    final_logit_softcapping=30.0,
    query_pre_attn_scalar=256,
    sliding_window=4096,
    max_position_embeddings=8192,
    rms_norm_eps=1e-6,
    rope_theta=10000.0,
    tie_word_embeddings=True,
)
TINY = dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
SHAPES: dict[str, dict] = {
    "qwen2.5-0.5b": {},
    "qwen2.5-1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        max_window_layers=28,
        max_position_embeddings=131072,
        sliding_window=131072,
    ),
    "llama-3.2-1b": dict(
        LLAMA,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        tie_word_embeddings=True,
    ),
    "gemma-2-2b": GEMMA2,
    "llama-3.1-8b": dict(
        LLAMA,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        tie_word_embeddings=False,
    ),
    "tiny": dict(TINY, max_window_layers=2, max_position_embeddings=4096, sliding_window=4096),
    "tiny-llama": dict(LLAMA, **TINY, head_dim=16, tie_word_embeddings=True),
    "tiny-gemma2": dict(GEMMA2, **TINY, head_dim=16, query_pre_attn_scalar=16, sliding_window=128),
}


def shape_config(name: str, vocab: int) -> dict:
    """config.json for shape `name` (the tiny ones take the tokenizer's vocabulary)."""
    conf = json.loads(QWEN_05B.read_text(encoding="utf-8"))
    conf.pop("architectures", None)
    if SHAPES[name].get("model_type", "qwen2") != "qwen2":
        conf = {"torch_dtype": "bfloat16", "use_cache": True}
    conf.update(SHAPES[name])
    if name.startswith("tiny"):
        conf["vocab_size"] = vocab
    return conf


def build_model(out: Path, shape: str, device: str = "cpu") -> Path:
    """A model of `shape` (its architecture) with random bf16 weights, initialised on `device`
    (the GPU builds the big ones in seconds), and the tiny demo's BPE tokenizer (ChatML
    template), saved as safetensors. Reused when already built."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

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
    config = AutoConfig.for_model(conf.pop("model_type", "qwen2"), **conf)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    del model
    if device != "cpu":
        torch.cuda.empty_cache()
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
