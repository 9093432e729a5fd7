"""Merged HF folder → one GGUF file, written with llama.cpp's own Python package `gguf`
(GGUFWriter for the file, gguf.quants for Q8_0, TensorNameMap for the tensor names).

llama.cpp's full converter (convert_hf_to_gguf.py) is a script in its repository, not part
of the `gguf` wheel on PyPI, so this module does the same steps for the architectures it
knows (llama-style: Llama and Mistral), in the same way: q/k rows permuted to GGML's rotary
layout, 1-D tensors kept F32, the byte-level BPE vocabulary with merges and special tokens,
the chat template. Quant types `gguf` cannot produce (the K-quants: it only dequantizes
them) are refused, with the llama.cpp command that makes them from our f16 file."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from sage_ft_tui.engine.errors import SageError

QUANTS = ("f16", "q8_0", "q4_k_m")
# Quant types produced here; the rest are made by llama.cpp's `llama-quantize` from f16.
PRODUCIBLE = ("f16", "q8_0")
ARCHITECTURES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama"}
Q8_BLOCK = 32


def refuse_quant(quant: str) -> None:
    if quant not in QUANTS:
        raise SageError(f"--quant {quant!r} is not one of {', '.join(QUANTS)}", hint="e.g. --quant q8_0")
    if quant not in PRODUCIBLE:
        raise SageError(
            f"--quant {quant} cannot be produced here: the `gguf` package only reads K-quants, "
            "and making them needs llama.cpp's compiled llama-quantize",
            hint="export --quant f16, then run `llama-quantize MODEL-f16.gguf MODEL-q4_k_m.gguf Q4_K_M` "
            "from a llama.cpp build",
        )


def _permute(w, n_head: int, n_head_kv: Optional[int]):
    """llama.cpp's LlamaModel.permute: HF's rotary half-split rows → GGML's interleaved rows."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tokenizer_pre(tok_json: dict) -> str:
    pre = tok_json.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"  # GPT-2's split regex, which ByteLevel(use_regex) applies
    return "default"


def _vocab(model_dir: Path, vocab_size: int):
    """(tokens, token types, tokenizer_pre, merges-bearing SpecialVocab) as llama.cpp writes them."""
    import json

    import gguf
    from transformers import AutoTokenizer

    tj_path = model_dir / "tokenizer.json"
    tj = json.loads(tj_path.read_text(encoding="utf-8")) if tj_path.is_file() else {}
    if (tj.get("model") or {}).get("type") != "BPE" or (tj.get("decoder") or {}).get("type") != "ByteLevel":
        raise SageError(
            "GGUF export handles byte-level BPE tokenizers (GPT-2 / Llama-3 style) only",
            where=str(tj_path),
            kind="model",
            hint="use llama.cpp's convert_hf_to_gguf.py on the merged folder (`export --format hf`)",
        )
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    reverse = {i: t for t, i in tok.get_vocab().items()}
    added = tok.get_added_vocab()
    decoder = tok.added_tokens_decoder
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif reverse[i] in added:
            tokens.append(reverse[i])
            types.append(gguf.TokenType.CONTROL if decoder[i].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(reverse[i])
            types.append(gguf.TokenType.NORMAL)
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=len(tokens))
    return tokens, types, _tokenizer_pre(tj), special


def write_gguf(
    model_dir: Path,
    out: Path,
    *,
    quant: str,
    name: str,
    chat_template: Optional[str],
    say: Callable[[str, dict], None] = lambda s, i: None,
) -> dict:
    """Write `out` from the merged folder `model_dir`; returns what was written."""
    import gguf
    import numpy as np
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    refuse_quant(quant)
    cfg = AutoConfig.from_pretrained(str(model_dir))
    archs = list(getattr(cfg, "architectures", None) or [])
    arch = next((ARCHITECTURES[a] for a in archs if a in ARCHITECTURES), None)
    if arch is None:
        raise SageError(
            f"GGUF export knows {', '.join(ARCHITECTURES)}; this model is {', '.join(archs) or 'unknown'}",
            kind="model",
            hint="export --format hf, then run llama.cpp's convert_hf_to_gguf.py on that folder",
        )
    say("load", {"model": str(model_dir)})
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    del model
    n_layers, n_head = cfg.num_hidden_layers, cfg.num_attention_heads
    n_kv = getattr(cfg, "num_key_value_heads", None) or n_head
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)

    w = gguf.GGUFWriter(str(out), arch)
    w.add_name(name)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    theta = getattr(cfg, "rope_theta", None) or (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta")
    if theta:
        w.add_rope_freq_base(float(theta))
    w.add_vocab_size(cfg.vocab_size)
    ftype = gguf.LlamaFileType.MOSTLY_Q8_0 if quant == "q8_0" else gguf.LlamaFileType.MOSTLY_F16
    w.add_file_type(ftype)

    say("vocab", {})
    tokens, types, pre, special = _vocab(model_dir, cfg.vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    if chat_template:
        special.chat_template = chat_template  # the one training used (also when the folder has none)
    special.add_to_gguf(w, quiet=True)

    say("tensors", {"count": len(state), "quant": quant})
    kinds: dict[str, int] = {}
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    for hf_name, data in state.items():
        if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue
        new = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise SageError(f"no GGUF name for tensor {hf_name}", kind="model", hint="export --format hf instead")
        if hf_name.endswith("q_proj.weight"):
            data = _permute(data, n_head, n_head)
        elif hf_name.endswith("k_proj.weight"):
            data = _permute(data, n_head, n_kv)
        if data.ndim <= 1:
            qtype = gguf.GGMLQuantizationType.F32
        elif quant == "q8_0" and data.shape[-1] % Q8_BLOCK == 0:
            qtype = gguf.GGMLQuantizationType.Q8_0
        else:  # f16, and rows Q8_0 blocks do not divide (llama.cpp falls back the same way)
            qtype = gguf.GGMLQuantizationType.F16
        if qtype == gguf.GGMLQuantizationType.F32:
            w.add_tensor(new, data.astype(np.float32))
        elif qtype == gguf.GGMLQuantizationType.F16:
            w.add_tensor(new, data.astype(np.float16))
        else:
            w.add_tensor(new, gguf.quants.quantize(data.astype(np.float32), qtype), raw_dtype=qtype)
        kinds[qtype.name] = kinds.get(qtype.name, 0) + 1
    say("write", {"path": str(out)})
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"arch": arch, "tokenizer_pre": pre, "tensor_types": kinds, "tokens": len(tokens)}
