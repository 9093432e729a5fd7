"""Vision-language models: what their folders say about images, without loading weights.

- `is_vision(model_dir)`: config.json has a `vision_config` (models/family.py owns it).
- `image_tokens(model_dir, width, height)`: how many tokens one image becomes in the
  language model's sequence, from config.json and preprocessor_config.json (the processor's
  own arithmetic, torch-free), for the truncation report and the memory estimate.
- the parts of a VLM (vision tower, projector, language model) by module name, for LoRA.
- `auto_class()`: the transformers auto class that loads one (torch inside the function).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from sage_ft_tui.engine.models.family import is_vision

# Module-name pieces of each part, across the families transformers ships (LLaVA, Qwen2-VL,
# Qwen2.5-VL, Idefics3/SmolVLM, Gemma 3, Mllama).
TOWER_NAMES = ("vision_tower", "visual", "vision_model")
PROJECTOR_NAMES = ("multi_modal_projector", "merger", "connector")
LANGUAGE_NAMES = ("language_model", "text_model")  # Idefics3/SmolVLM: text_model


def _json(p: Path) -> dict:
    try:
        v = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return v if isinstance(v, dict) else {}


@lru_cache(maxsize=16)
def _configs(model_dir: str) -> tuple[dict, dict, dict]:
    d = Path(model_dir)
    return _json(d / "config.json"), _json(d / "preprocessor_config.json"), _json(d / "processor_config.json")


def _side(size: Any, key: str, default: int) -> int:
    if isinstance(size, dict):
        v = size.get(key) or size.get("shortest_edge") or size.get("longest_edge")
        return int(v) if v else default
    return int(size) if size else default


def image_tokens(model_dir: str | Path, width: int, height: int) -> Optional[int]:
    """Tokens one width×height image takes in the sequence (None: a family not known here)."""
    conf, pre, proc = _configs(str(model_dir))
    mt = conf.get("model_type")
    vc = conf.get("vision_config") or {}
    if mt in ("qwen2_vl", "qwen2_5_vl"):
        patch = int(pre.get("patch_size") or vc.get("patch_size") or 14)
        merge = int(pre.get("merge_size") or vc.get("spatial_merge_size") or 2)
        size = pre.get("size") or {}
        lo = int(pre.get("min_pixels") or size.get("shortest_edge") or 56 * 56)
        hi = int(pre.get("max_pixels") or size.get("longest_edge") or 28 * 28 * 1280)
        h, w = _smart_resize(height, width, patch * merge, lo, hi)
        return (h // patch) * (w // patch) // (merge * merge)
    if mt in ("llava",):
        patch = int(proc.get("patch_size") or vc.get("patch_size") or 14)
        crop = pre.get("crop_size") or pre.get("size") or {}
        h = _side(crop, "height", int(vc.get("image_size") or 336))
        w = _side(crop, "width", h)
        n = (h // patch) * (w // patch) + int(proc.get("num_additional_image_tokens") or 0)
        return n - (1 if (proc.get("vision_feature_select_strategy") or "default") == "default" else 0)
    if mt == "gemma3":
        return int(proc.get("image_seq_length") or conf.get("mm_tokens_per_image") or 256) + 2  # + boi/eoi
    if mt in ("idefics3", "smolvlm"):
        seq = int(proc.get("image_seq_len") or conf.get("image_seq_len") or 64)
        if not pre.get("do_image_splitting", True):
            return seq + 3
        longest = _side(pre.get("size"), "longest_edge", 4 * 364)
        tile = _side(pre.get("max_image_size"), "longest_edge", 364)
        scale = min(1.0, longest / max(width, height))
        rows = math.ceil(height * scale / tile)
        cols = math.ceil(width * scale / tile)
        tiles = rows * cols + (1 if rows * cols > 1 else 0)  # the tiles and the global image
        return tiles * (seq + 3)
    return None


def _smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's resize: both sides multiples of `factor`, the area within [min, max] pixels."""
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def vision_params(conf: dict, text_hidden: int) -> int:
    """Parameters of a VLM's vision tower and projector from config.json (0 for a text model):
    attention and MLP per layer, the patch embedding, a two-layer projector to the text width."""
    vc = conf.get("vision_config")
    if not isinstance(vc, dict):
        return 0
    hidden = int(vc.get("hidden_size") or vc.get("embed_dim") or 0)
    if conf.get("model_type") in ("qwen2_vl",):  # hidden_size is the merger's output there
        hidden = int(vc.get("embed_dim") or hidden)
    layers = int(vc.get("num_hidden_layers") or vc.get("depth") or 0)
    inter = int(vc.get("intermediate_size") or hidden * float(vc.get("mlp_ratio") or 4))
    patch = int(vc.get("patch_size") or 14)
    tower = layers * (4 * hidden * hidden + 2 * hidden * inter) + 3 * patch * patch * hidden
    return tower + hidden * text_hidden + text_hidden * text_hidden


def part_of(module_name: str) -> str:
    """'tower', 'projector', 'language' or 'other' for a module of a VLM."""
    pieces = module_name.split(".")
    if any(p in TOWER_NAMES for p in pieces):
        # Qwen2-VL keeps its projector ("merger") inside the tower ("visual")
        return "projector" if any(p in PROJECTOR_NAMES for p in pieces) else "tower"
    if any(p in PROJECTOR_NAMES for p in pieces):
        return "projector"
    if any(p in LANGUAGE_NAMES for p in pieces):
        return "language"
    return "other"


def auto_class(model_dir: str | Path):
    """The transformers auto class for the folder: image-text-to-text for a VLM, else causal LM."""
    if is_vision(Path(model_dir)):
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM


def extra_image_tokens(model_dir: str | Path, sizes: list[tuple[int, int]]) -> int:
    """Tokens a row's images add beyond the one placeholder token each that the text renderer
    counts (0 where the family's arithmetic is not known here)."""
    return sum(max(0, (image_tokens(model_dir, w, h) or 1) - 1) for w, h in sizes)


__all__ = ["is_vision", "image_tokens", "vision_params", "extra_image_tokens", "part_of", "auto_class"]
