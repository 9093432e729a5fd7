"""A decoder's shape from its config.json alone: sizes, layers, heads, its linear layers and
their parameters — what the memory estimate, the FLOPs and the time plan need, with no weights
read or downloaded.

`model_shape` takes tiny-demo, a model folder (or its config.json), a hub id in the local
Hugging Face cache, or a known model before its first download (models.known). Never imports
torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Union

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.models.hub_cache import current_snapshot, repo_folder
from sage_ft_tui.engine.models.known import known_model
from sage_ft_tui.engine.models.tiny import TINY_NAME, ensure_tiny_model, is_tiny, tiny_model_dir
from sage_ft_tui.engine.models.vision import vision_params

ModelRef = Union[str, os.PathLike, "ModelShape"]


@dataclass
class ModelShape:
    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    gated: bool = True  # SwiGLU-style gate/up/down MLP (llama, qwen, mistral...); else up/down
    experts: int = 1
    experts_per_token: int = 1
    moe_intermediate: Optional[int] = None
    attn_bias: bool = False
    max_positions: Optional[int] = None
    torch_dtype: Optional[str] = None
    source: str = ""  # where the shape came from
    fused: tuple[str, ...] = ()  # "qkv", "gate_up": one linear where others have several (Phi-3)
    attn_softcap: Optional[float] = None  # attention logit softcapping (Gemma-2): no SDPA
    vision_params: int = 0  # a vision-language model's tower and projector (frozen, loaded with it)

    # linear layers of one decoder block: name -> (in, out, copies)
    def linears(self) -> dict[str, tuple[int, int, int]]:
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        if "qkv" in self.fused:
            out = {"qkv_proj": (h, q + 2 * kv, 1), "o_proj": (q, h, 1)}
        else:
            out = {"q_proj": (h, q, 1), "k_proj": (h, kv, 1), "v_proj": (h, kv, 1), "o_proj": (q, h, 1)}
        if self.experts > 1:
            i, n = self.moe_intermediate or self.intermediate, self.experts
        else:
            i, n = self.intermediate, 1
        if self.gated and "gate_up" in self.fused:
            out.update({"gate_up_proj": (h, 2 * i, n), "down_proj": (i, h, n)})
        elif self.gated:
            out.update({"gate_proj": (h, i, n), "up_proj": (h, i, n), "down_proj": (i, h, n)})
        else:
            out.update({"up_proj": (h, i, n), "down_proj": (i, h, n)})
        return out

    @property
    def linear_params(self) -> int:
        per = sum(i * o * n for i, o, n in self.linears().values())
        router = self.hidden * self.experts if self.experts > 1 else 0
        return self.layers * (per + router)

    @property
    def embed_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    @property
    def other_params(self) -> int:
        """Norms and biases: two norms a layer plus the final one; q/k/v biases; a VLM's vision
        tower and projector (kept unquantized and frozen: weights only)."""
        bias = (self.heads + 2 * self.kv_heads) * self.head_dim if self.attn_bias else 0
        return self.layers * (2 * self.hidden + bias) + self.hidden + self.vision_params

    @property
    def total_params(self) -> int:
        return self.linear_params + self.embed_params + self.other_params

    def lora_params(self, r: int, targets: Union[str, list[str]] = "all-linear") -> int:
        """Trainable LoRA parameters (A: r×in, B: out×r) over the decoder's target linears.

        "all-linear" is PEFT's meaning: every linear layer except the output head."""
        lin = self.linears()
        if targets == "all-linear":
            names = list(lin)
        else:
            names = [t for t in targets if t in lin]
        per = sum(r * (i + o) * n for name, (i, o, n) in lin.items() if name in names)
        return self.layers * per

    def to_dict(self) -> dict:
        return asdict(self)


# Architectures whose decoder fuses projections into one linear (module names as transformers
# builds them): LoRA adapts the fused layer once, with its real in/out features.
FUSED_PROJECTIONS = {"phi3": ("qkv", "gate_up")}


def shape_from_config(cfg: dict, name: str = "model", source: str = "config.json") -> ModelShape:
    """A ModelShape from a Hugging Face config.json mapping (decoder-only causal LMs)."""
    if not isinstance(cfg, dict):
        raise SageError(
            f"{name}: config.json is not a JSON object", hint="is this a Hugging Face model folder?", kind="model"
        )
    text = cfg.get("text_config")
    c = {**cfg, **text} if isinstance(text, dict) else cfg

    def first(*keys, default=None):
        for k in keys:
            v = c.get(k)
            if v is not None:
                return v
        return default

    h = first("hidden_size", "n_embd", "d_model")
    layers = first("num_hidden_layers", "n_layer", "num_layers")
    vocab = first("vocab_size", "padded_vocab_size")
    missing = [k for k, v in (("hidden_size", h), ("num_hidden_layers", layers), ("vocab_size", vocab)) if not v]
    if missing:
        raise SageError(
            f"{name}: config.json has no {missing[0]}",
            hint="the estimate needs a decoder-only causal LM's config.json",
            kind="model",
        )
    for key, v in (("hidden_size", h), ("num_hidden_layers", layers), ("vocab_size", vocab)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise SageError(
                f"{name}: config.json {key} is {v!r}, not a positive integer",
                hint="check the model's config.json",
                kind="model",
            )
    heads = int(first("num_attention_heads", "n_head", default=max(1, h // 128)))
    head_dim = int(first("head_dim", default=h // heads) or h // heads)
    kv = int(first("num_key_value_heads", "multi_query_group_num", default=heads) or heads)
    inter = int(first("intermediate_size", "n_inner", "ffn_hidden_size", default=4 * h) or 4 * h)
    act = str(first("hidden_act", "hidden_activation", "activation_function", default="silu"))
    model_type = str(c.get("model_type", ""))
    gpt2_like = "n_embd" in c or model_type in ("gpt2", "gpt_neox", "gptj", "opt", "bloom", "falcon", "phi")
    gated = not gpt2_like and act in ("silu", "swiglu", "gelu_pytorch_tanh", "gelu", "geglu")
    experts = int(first("num_local_experts", "num_experts", "n_routed_experts", default=1) or 1)
    per_tok = int(first("num_experts_per_tok", "moe_top_k", default=1) or 1)
    moe_inter = first("moe_intermediate_size")
    tied = cfg.get("tie_word_embeddings", c.get("tie_word_embeddings", True))
    dtype = cfg.get("torch_dtype") or cfg.get("dtype") or c.get("torch_dtype") or c.get("dtype")
    return ModelShape(
        name=name,
        hidden=int(h),
        layers=int(layers),
        heads=heads,
        kv_heads=kv,
        head_dim=head_dim,
        intermediate=inter,
        vocab=int(vocab),
        tied=bool(tied),
        gated=gated,
        experts=experts,
        experts_per_token=min(per_tok, experts),
        moe_intermediate=int(moe_inter) if moe_inter else None,
        attn_bias=bool(c.get("attention_bias", model_type in ("qwen2", "qwen2_moe"))),
        max_positions=first("max_position_embeddings", "n_positions", "seq_length"),
        torch_dtype=str(dtype) if dtype else None,
        source=source,
        fused=FUSED_PROJECTIONS.get(model_type, ()),
        attn_softcap=float(cap) if isinstance(cap := c.get("attn_logit_softcapping"), (int, float)) and cap else None,
        vision_params=vision_params(cfg, int(h)),
    )


def read_config(path: Path, name: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SageError(
            f"{name}: no config.json in {path.parent}",
            hint="give a Hugging Face model folder (config.json is enough)",
            kind="model",
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise SageError(
            f"{path}: not a readable config.json ({e.__class__.__name__})",
            hint="re-download or re-save the model",
            kind="model",
        ) from None


def model_shape(ref: ModelRef) -> ModelShape:
    """tiny-demo, a folder holding config.json (or the file itself), a hub id found in the
    local Hugging Face cache, or a known model (models.known) before its first download; the
    hub itself is never asked."""
    if isinstance(ref, ModelShape):
        return ref
    name = str(ref).strip()
    if not name:
        raise SageError("no model given", hint=f"pass --model with a hub id, a folder, or {TINY_NAME}", kind="model")
    if is_tiny(name):
        d = tiny_model_dir()
        d = d if (d / "config.json").is_file() else ensure_tiny_model()
        return shape_from_config(read_config(d / "config.json", name), TINY_NAME, source=f"built-in {TINY_NAME}")
    p = Path(name).expanduser()
    if p.is_file():
        if p.name != "config.json" and p.suffix != ".json":
            raise SageError(
                f"{name}: a file, not a model folder", hint="give the folder that holds config.json", kind="model"
            )
        return shape_from_config(read_config(p, name), name, source=str(p))
    if p.is_dir():
        return shape_from_config(read_config(p / "config.json", name), name, source=str(p / "config.json"))
    if name.startswith(("/", ".", "~")) or name.count("/") != 1:
        raise SageError(
            f"{name}: no such model folder",
            hint=f"give an existing folder with config.json, an org/name hub id, or {TINY_NAME}",
            kind="model",
        )
    repo = repo_folder(name)
    snap = current_snapshot(repo) if repo.is_dir() else None
    if snap is not None and (snap / "config.json").is_file():
        return shape_from_config(
            read_config(snap / "config.json", name), name, source=f"HF cache {snap / 'config.json'}"
        )
    k = known_model(name)
    if k is not None:  # before its first download: the published config.json's shape
        return shape_from_config(dict(k.config), name, source="built-in shape (the model's published config.json)")
    raise SageError(
        f"{name}: not in the local Hugging Face cache",
        hint=f"fetch its config first (hf download {name} config.json) or give a folder holding its config.json",
        kind="model",
    )


__all__ = ["ModelRef", "ModelShape", "FUSED_PROJECTIONS", "shape_from_config", "read_config", "model_shape"]
