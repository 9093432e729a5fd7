"""Attention for packed (padding-free) rows: each sequence of a row attends to itself only.

TRL packs several examples into one padding-free row (position_ids restart at each example,
its collator also passes cu_seq_lens). Plain SDPA keeps them apart with a dense
row x row block-diagonal mask: exact, but it computes every masked-out block and, on a
GPU, a mask rules out the flash kernel. The paths here, picked by `choose_attention`:

- `flash_attention_2`: transformers' own flash-attn integration (its varlen kernel, one
  call per layer), on CUDA in fp16/bf16 when flash-attn is installed;
- `sage_varlen` (torch-native, no extra wheel): ONE call per layer for the whole packed
  row — torch's own `torch.nn.attention.varlen.varlen_attn` (flash kernels, CUDA, fp16/bf16)
  where the installed torch has it, else FlexAttention with a document mask;
- `sage_varlen_flex`: FlexAttention with a document mask (compiled on CUDA; on CPU it
  runs unfused and is only useful to check the path);
- `sage_varlen_sdpa`: SDPA called once per sequence with is_causal and no mask — the
  fastest on CPU (cost Σ Lᵢ² instead of (Σ Lᵢ)², and the is_causal kernels);
- `sage_varlen_eager`: eager attention once per sequence, for models whose scores are
  changed before the softmax (attention logit softcapping: Gemma-2), which SDPA and torch's
  varlen kernel cannot do; FlexAttention (score_mod) and flash-attn (`softcap`) can;
- plain `sdpa` for models whose masks go beyond causal/sliding window (chunked attention,
  image tokens).

What a model needs is read from its config.json (`attention_needs`), never its name; at run
time the model's own keywords decide (`sliding_window`, `softcap`), so a layer is computed as
the model's eager forward would. A padded batch (a 2D attention mask, or more than one row)
goes to plain SDPA unchanged (masked eager when the scores are softcapped). Sequence bounds
come from cu_seq_lens_q or, failing that, position_ids resets.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

VARLEN_SDPA = "sage_varlen_sdpa"
VARLEN = "sage_varlen"
VARLEN_FLEX = "sage_varlen_flex"
VARLEN_EAGER = "sage_varlen_eager"
FLASH = "flash_attention_2"
# SAGE_FT_ATTN forces one of these for `attn_implementation: auto` (benchmarks, debugging).
CHOICES = (VARLEN_SDPA, VARLEN, VARLEN_FLEX, VARLEN_EAGER, FLASH, "sdpa", "eager")
OURS = (VARLEN_SDPA, VARLEN, VARLEN_FLEX, VARLEN_EAGER)
EAGER_SCORES = (VARLEN_EAGER, "eager")  # paths that keep every (query, key) score for backward


@dataclass
class AttentionChoice:
    name: str
    why: str


@dataclass(frozen=True)
class AttentionNeeds:
    """What a model's attention needs beyond causal SDPA, from its config.json."""

    softcap: Optional[float] = None  # attention logit softcapping (tanh) before the softmax
    sliding_window: Optional[int] = None
    special_masks: bool = False  # chunked attention, image tokens: plain SDPA's masks
    readable: bool = True


def _config(mdir: Path) -> Optional[dict]:
    try:
        conf = json.loads((Path(mdir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return conf if isinstance(conf, dict) else None


def attention_needs(mdir: Path) -> AttentionNeeds:
    conf = _config(mdir)
    if conf is None:
        return AttentionNeeds(special_masks=True, readable=False)
    text = conf.get("text_config")
    c = {**conf, **text} if isinstance(text, dict) else conf
    cap = c.get("attn_logit_softcapping")
    win = c.get("sliding_window")
    layer_types = c.get("layer_types") or []
    sliding = c.get("use_sliding_window", True) is not False or "sliding_attention" in layer_types
    return AttentionNeeds(
        softcap=float(cap) if isinstance(cap, (int, float)) and not isinstance(cap, bool) and cap > 0 else None,
        sliding_window=int(win) if isinstance(win, int) and win > 0 and sliding else None,
        special_masks=bool(c.get("attention_chunk_size") or "vision_config" in conf),
    )


def special_masks(mdir: Path) -> bool:
    """Masks beyond causal + sliding window (chunked attention, image tokens): plain SDPA."""
    return attention_needs(mdir).special_masks


VARLEN_KEYWORDS = ("scale", "window_size", "enable_gqa")  # what torch_varlen passes


def torch_varlen_available() -> bool:
    """torch's varlen_attn exists and takes the keywords we pass (torch 2.10's took
    `is_causal` instead and would raise at the first step: FlexAttention then)."""
    import inspect

    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return False
    try:
        params = inspect.signature(varlen_attn).parameters
    except (TypeError, ValueError):
        return False
    return all(k in params for k in VARLEN_KEYWORDS)


def choose_attention(
    *,
    cuda: bool,
    dtype: str,
    mdir: Optional[Path] = None,
    flash_attn: Optional[bool] = None,
    torch_varlen: Optional[bool] = None,
    honour_env: bool = True,
    needs: Optional[AttentionNeeds] = None,
) -> AttentionChoice:
    """Which attention `attn_implementation: auto` takes, and why (doctor prints the why).
    `honour_env=False`: what auto takes for this model whatever SAGE_FT_ATTN says (a fallback).
    `needs`: the model's needs when there is no folder to read them from (the estimate)."""
    forced = os.environ.get("SAGE_FT_ATTN", "") if honour_env else ""
    if forced:
        if forced not in CHOICES:
            from sage_ft_tui.engine.errors import SageError

            raise SageError(f"SAGE_FT_ATTN={forced!r} is not one of {', '.join(CHOICES)}", hint="unset SAGE_FT_ATTN")
        return AttentionChoice(forced, f"forced by SAGE_FT_ATTN={forced}")
    if needs is None:
        needs = attention_needs(mdir) if mdir is not None else AttentionNeeds()
    half = dtype in ("bfloat16", "float16")
    if flash_attn is None:
        flash_attn = importlib.util.find_spec("flash_attn") is not None
    if needs.softcap:
        cap = f"attention logit softcapping ({needs.softcap:g}), which SDPA cannot apply"
        if needs.special_masks:
            return AttentionChoice("eager", f"{cap}, and masks beyond causal/sliding window: eager")
        if cuda and flash_attn and half:
            return AttentionChoice(FLASH, f"{cap}: flash-attn's softcap, its varlen kernel")
        if cuda and half:
            return AttentionChoice(VARLEN_FLEX, f"{cap}: FlexAttention with a softcap score_mod, document mask")
        return AttentionChoice(VARLEN_EAGER, f"{cap}: eager attention with the softcap, once per packed sequence")
    if needs.special_masks:
        return AttentionChoice("sdpa", "the model's masks go beyond causal/sliding window: plain SDPA")
    if not cuda:
        return AttentionChoice(VARLEN_SDPA, "CPU: SDPA once per packed sequence (is_causal kernels, no dense mask)")
    if torch_varlen is None:
        torch_varlen = torch_varlen_available()
    if flash_attn and half:
        return AttentionChoice(FLASH, "flash-attn installed: its varlen kernel, one call per layer")
    if torch_varlen and half:
        return AttentionChoice(VARLEN, "torch's own varlen_attn (flash kernels, no extra wheel): one call per layer")
    if not half:
        return AttentionChoice(VARLEN_SDPA, f"{dtype} on CUDA: no varlen kernel; SDPA once per packed sequence")
    return AttentionChoice(
        VARLEN_FLEX, "no flash-attn, and no torch varlen_attn taking scale/window/GQA: FlexAttention, document mask"
    )


def start_note(requested: str, mdir: Path, model: str) -> Optional[str]:
    """What `start` says of attention before training (config.json only, no torch): a model
    that cannot take the attention asked for, or that needs a path beyond SDPA. None: nothing."""
    needs = attention_needs(mdir)
    if not needs.readable:
        return None
    if needs.softcap:
        cap = f"{model} softcaps its attention logits ({needs.softcap:g}), which SDPA cannot do"
        if requested == "sdpa":
            return f"note: {cap}: training falls back from sdpa to a path that applies the softcap (see train.log)"
        if requested == "auto":
            return (
                f"note: {cap}: attention runs through a path that applies it (eager per packed sequence on CPU; "
                "flash-attn or FlexAttention on a GPU)"
            )
    if requested == FLASH and importlib.util.find_spec("flash_attn") is None:
        return "note: flash-attn is not installed here: training falls back from flash_attention_2 to the auto choice"
    return None


# ---- the registered functions ----------------------------------------------------------------


def _bounds(kwargs: dict, length: int, device) -> Optional[list[int]]:
    import torch

    cu = kwargs.get("cu_seq_lens_q")
    if cu is None and kwargs.get("position_ids") is not None:
        pos = kwargs["position_ids"].reshape(-1)
        cu = torch.cat([(pos == 0).nonzero().flatten(), torch.tensor([pos.numel()], device=pos.device)])
    if cu is None:
        return None
    b = cu.tolist()
    return b if b and b[0] == 0 and b[-1] == length else None


def _packed(query, key, attention_mask, module, is_causal) -> bool:
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    length = query.shape[2]
    return attention_mask is None and causal and length > 1 and key.shape[2] == length and query.shape[0] == 1


_STRIP = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k", "position_ids")


def per_sequence_sdpa(module, query, key, value, bounds, *, dropout=0.0, scaling=None, window=None, **rest):
    """SDPA once per sequence of a packed row, causal, no mask (a window mask for sliding layers)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    # split, not slices: the backward of a slice builds a zero tensor of the whole row per
    # sequence; split's backward concatenates the sequences' gradients once.
    lengths = [e - s for s, e in zip(bounds[:-1], bounds[1:])]
    outs = []
    for n, q, k, v in zip(lengths, *(t.split(lengths, dim=2) for t in (query, key, value))):
        if n <= 0:
            continue
        m = None
        if window and n > window:  # a sliding-window layer: causal within the window only
            i = torch.arange(n, device=query.device)
            m = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window)
        outs.append(
            sdpa_attention_forward(
                module,
                q,
                k,
                v,
                m,
                dropout=dropout,
                scaling=scaling,
                is_causal=m is None,
                **rest,
            )[0]
        )
    return torch.cat(outs, dim=1)


def eager_scores_attention(module, query, key, value, mask, *, dropout=0.0, scaling=None, softcap=None):
    """The eager forward of softcapped models (Gemma-2's): scores, tanh softcap, mask, fp32
    softmax. `mask`: None (causal, aligned to the last key), boolean (True = attend) or additive.
    (B, H, Lq, D) in, (B, Lq, H, D) out."""
    import torch

    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key, value = (t.repeat_interleave(groups, dim=1) for t in (key, value))
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    lq, lk = query.shape[2], key.shape[2]
    if mask is None and lq > 1:
        i = torch.arange(lq, device=query.device)[:, None] + (lk - lq)
        mask = torch.arange(lk, device=query.device)[None, :] <= i
    if mask is not None:
        mask = mask[..., :lk]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    if dropout and module.training:
        weights = torch.nn.functional.dropout(weights, p=dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous()


def per_sequence_eager(module, query, key, value, bounds, *, dropout=0.0, scaling=None, window=None, softcap=None):
    """Eager (softcapped) attention once per sequence of a packed row, causal within the window."""
    import torch

    lengths = [e - s for s, e in zip(bounds[:-1], bounds[1:])]
    outs = []
    for n, q, k, v in zip(lengths, *(t.split(lengths, dim=2) for t in (query, key, value))):
        if n <= 0:
            continue
        i = torch.arange(n, device=query.device)
        m = i[None, :] <= i[:, None]
        if window and n > window:
            m = m & (i[None, :] > i[:, None] - window)
        outs.append(eager_scores_attention(module, q, k, v, m, dropout=dropout, scaling=scaling, softcap=softcap))
    return torch.cat(outs, dim=1)


def _varlen_kernel() -> Callable:
    """torch's varlen_attn (CUDA flash kernels). A function so tests can stand in a CPU
    reference with the same signature."""
    from torch.nn.attention.varlen import varlen_attn

    return varlen_attn


def torch_varlen(module, query, key, value, bounds, *, scaling=None, window=None, kernel=None):
    """One varlen_attn call for the whole packed row: (1, H, L, D) in, (1, L, H, D) out."""
    import torch

    kernel = kernel or _varlen_kernel()
    cu = torch.tensor(bounds, dtype=torch.int32, device=query.device)
    longest = max(e - s for s, e in zip(bounds[:-1], bounds[1:]))
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # (L, H, D)
    out = kernel(
        q,
        k,
        v,
        cu,
        cu,
        longest,
        longest,
        scale=scaling,
        window_size=(window - 1, 0) if window else (-1, 0),
        enable_gqa=query.shape[1] != key.shape[1],
    )
    return out.unsqueeze(0)


_BLOCK_MASKS: dict[tuple, Any] = {}
_COMPILED_FLEX: list = []


def _flex_fn(device_type: str):
    from torch.nn.attention.flex_attention import flex_attention

    if device_type != "cuda":
        return flex_attention  # unfused eager path: correct, slow (CPU checks only)
    if not _COMPILED_FLEX:
        import torch

        _COMPILED_FLEX.append(torch.compile(flex_attention, dynamic=True))
    return _COMPILED_FLEX[0]


def document_block_mask(bounds: list[int], window: Optional[int], device):
    """FlexAttention block mask: causal within each document (and its window), cached per row
    layout (all layers of a step share it)."""
    import torch
    from torch.nn.attention.flex_attention import create_block_mask

    key = (tuple(bounds), window, str(device))
    if key in _BLOCK_MASKS:
        return _BLOCK_MASKS[key]
    length = bounds[-1]
    doc = torch.zeros(length, dtype=torch.int32, device=device)
    for i, (s, e) in enumerate(zip(bounds[:-1], bounds[1:])):
        doc[s:e] = i

    def mask_mod(b, h, q, kv):
        keep = (doc[q] == doc[kv]) & (q >= kv)
        return keep & (q - kv < window) if window else keep

    bm = create_block_mask(mask_mod, None, None, length, length, device=str(device))
    if len(_BLOCK_MASKS) > 8:
        _BLOCK_MASKS.clear()
    _BLOCK_MASKS[key] = bm
    return bm


_SCORE_MODS: dict[float, Callable] = {}


def softcap_score_mod(softcap: float) -> Callable:
    """tanh(s / c) * c as a FlexAttention score_mod: one function per cap, so the compiled
    kernel is reused by every layer and step (a new closure per call would recompile)."""
    if softcap not in _SCORE_MODS:
        import torch

        def score_mod(score, b, h, q, kv):
            return torch.tanh(score / softcap) * softcap

        _SCORE_MODS[softcap] = score_mod
    return _SCORE_MODS[softcap]


def flex_varlen(module, query, key, value, bounds, *, scaling=None, window=None, softcap=None):
    bm = document_block_mask(bounds, window, query.device)
    score_mod = softcap_score_mod(float(softcap)) if softcap else None
    out = _flex_fn(query.device.type)(
        query, key, value, block_mask=bm, score_mod=score_mod, scale=scaling, enable_gqa=query.shape[1] != key.shape[1]
    )
    return out.transpose(1, 2).contiguous()


def _make(kind: str):
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    def attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
        softcap = kwargs.pop("softcap", None)  # the model's own: Gemma-2 passes it on every layer
        if _packed(query, key, attention_mask, module, is_causal):
            bounds = _bounds(kwargs, query.shape[2], query.device) or [0, query.shape[2]]
            window = kwargs.get("sliding_window")
            rest = {k: v for k, v in kwargs.items() if k not in _STRIP and k != "sliding_window"}
            training_dropout = dropout if module.training else 0.0
            use = kind
            if kind == VARLEN:
                fast = query.is_cuda and query.dtype in (torch.float16, torch.bfloat16) and torch_varlen_available()
                use = "torch" if fast and not training_dropout and not softcap else "flex"
            if use == "torch":
                return torch_varlen(module, query, key, value, bounds, scaling=scaling, window=window), None
            if use in ("flex", VARLEN_FLEX) and not training_dropout:
                out = flex_varlen(module, query, key, value, bounds, scaling=scaling, window=window, softcap=softcap)
                return out, None
            if softcap or use == VARLEN_EAGER:  # SDPA cannot softcap: the eager scores, per sequence
                out = per_sequence_eager(
                    module, query, key, value, bounds, dropout=dropout, scaling=scaling, window=window, softcap=softcap
                )
                return out, None
            return (
                per_sequence_sdpa(
                    module, query, key, value, bounds, dropout=dropout, scaling=scaling, window=window, **rest
                ),
                None,
            )
        if softcap or kind == VARLEN_EAGER:
            out = eager_scores_attention(
                module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, softcap=softcap
            )
            return out, None
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )

    return attention


def register(name: str = VARLEN_SDPA) -> str:
    """Register one of our attention functions (and its no-mask mask function) with
    transformers; returns the name to pass as attn_implementation."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if name not in OURS:
        return name
    if name in AttentionInterface._global_mapping:
        return name

    def mask(*args, attention_mask=None, **kw):
        # No 2D padding mask = padding-free (or unpadded) batch: the attention bounds each
        # sequence itself (and applies a sliding window), so no dense mask is built.
        if attention_mask is None:
            return None
        return sdpa_mask(*args, attention_mask=attention_mask, **kw)

    AttentionInterface.register(name, _make(name))
    AttentionMaskInterface.register(name, mask)
    return name


def register_varlen_sdpa() -> str:
    return register(VARLEN_SDPA)


__all__ = [
    "AttentionChoice",
    "choose_attention",
    "register",
    "register_varlen_sdpa",
    "special_masks",
    "VARLEN_SDPA",
    "VARLEN",
    "VARLEN_FLEX",
    "VARLEN_EAGER",
    "attention_needs",
    "start_note",
]
