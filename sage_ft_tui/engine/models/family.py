"""Which family a model folder is, read from config.json (model_type, architectures), never
from the model's name; whether it reads images. Light: no torch, no transformers. The family
with its chat template's facts in one line: models.family_facts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

# How a model_type's words are spelled for people (everything else is title-cased).
_SPELLING = {
    "deepseek": "DeepSeek",
    "moe": "MoE",
    "gpt": "GPT",
    "neox": "NeoX",
    "oss": "OSS",
    "glm": "GLM",
    "olmo": "OLMo",
    "vl": "VL",
}
_DROP = {"text", "causal", "lm"}  # gemma3_text is Gemma 3's text-only model


@dataclass(frozen=True)
class ModelFamily:
    model_type: str  # config.json model_type, as transformers knows it
    architecture: Optional[str]  # config.json architectures[0]
    name: str  # for people: "Gemma 2"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.model_type})"


def _spell(model_type: str) -> str:
    words: list[str] = []
    for part in model_type.split("_"):
        if not part or part in _DROP:
            continue
        if part.isdigit() and words and words[-1][-1:].isdigit():  # qwen2_5 is Qwen 2.5
            words[-1] += "." + part
            continue
        m = re.fullmatch(r"([a-z]+?)(\d[\d.]*)?", part)
        if m is None:
            words.append(part)
            continue
        word, num = m.group(1), m.group(2)
        sep = "" if len(word) == 1 else " "  # deepseek_v3: DeepSeek V3
        words.append(_SPELLING.get(word, word.capitalize()) + (f"{sep}{num}" if num else ""))
    return " ".join(words) or model_type


def family_of(model_dir: Path) -> Optional[ModelFamily]:
    """The family of the model in `model_dir`, from its config.json (None: no readable one)."""
    try:
        conf = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(conf, dict):
        return None
    archs = conf.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    model_type = conf.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        if arch is None:
            return None
        model_type = re.sub(r"(For\w+|Model)$", "", arch).lower() or arch
    return ModelFamily(model_type, arch, _spell(model_type))


def is_vision(model_dir: Path) -> bool:
    """Whether the model reads images: its config.json has a vision tower (`vision_config`),
    as every vision-language family transformers knows has (Qwen2-VL, LLaVA, Idefics3, Gemma 3)."""
    try:
        conf = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(conf, dict) and isinstance(conf.get("vision_config"), dict)


__all__ = ["ModelFamily", "family_of", "is_vision"]
