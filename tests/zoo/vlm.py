"""The vision-language part of the model zoo: tiny random-weight VLM folders with their real
model and processor classes (slow, PIL image processors: no torchvision here) and the
processor's real chat template, built offline on top of a text family's tokenizer.

    python -m tests.zoo.vlm DEST [NAME...]

Each folder holds what the hub repo holds: config.json (text_config + vision_config, a tiny
shape), model.safetensors, the tokenizer files (the text family's vocabulary plus the image
tokens), preprocessor_config.json (images resized to a few dozen pixels, so a few image
tokens each), chat_template.jinja, generation_config.json and zoo.json.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tests.zoo.build import TEMPLATES, _write_json, build_tokenizer, generation_config
from tests.zoo.families import TINY, Family, _t, family

IMAGE_SIDE = 28  # the processor resizes every image to this (2×2 patches of 14 px)


@dataclass(frozen=True)
class VisionFamily:
    name: str
    mimics: str
    architecture: str
    text_family: str  # the zoo text family whose tokenizer (and template facts) it extends
    template: str  # the processor's chat template, file under templates/
    image_token: str  # what the processor expands per image
    image_tokens: int  # image tokens per image at IMAGE_SIDE
    extra_tokens: tuple[str, ...] = ()  # added to the text family's tokenizer
    end_of_turn: str = ""
    completion_suffix: str = ""  # what is trained after the answer (its end of turn, as rendered)
    image_extra: int = 0  # tokens an image adds beyond its image-token ids (begin/end markers)
    notes: str = ""
    build: Callable[[VisionFamily, Path, dict[str, int], Family], None] = field(default=None, repr=False)  # type: ignore[assignment]


def _text_config(fam: Family, vocab: dict[str, int]) -> dict[str, Any]:
    size = -(-(max(vocab.values()) + 1) // 64) * 64
    cfg = {**TINY, "vocab_size": size, "rms_norm_eps": 1e-6, "max_position_embeddings": 4096}
    if fam.pad:
        cfg["pad_token_id"] = vocab[fam.pad]
    cfg["eos_token_id"] = vocab[fam.eos]
    return cfg


def _build_llava(vf: VisionFamily, dest: Path, vocab: dict[str, int], fam: Family) -> None:
    """llava-interleave-qwen: a SigLIP tower, a two-layer projector, a Qwen2 language model."""
    from transformers import LlavaConfig
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    text = dict(_text_config(fam, vocab), model_type="qwen2", tie_word_embeddings=True, rope_theta=1000000.0)
    cfg = LlavaConfig(
        text_config=text,
        vision_config=dict(
            model_type="siglip_vision_model",
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=IMAGE_SIDE,
            patch_size=14,
        ),
        image_token_index=vocab[vf.image_token],
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
        tie_word_embeddings=True,
    )
    ip = SiglipImageProcessorPil(size={"height": IMAGE_SIDE, "width": IMAGE_SIDE})
    ip.save_pretrained(dest)
    # what the real processor_config.json says (LlavaProcessor's own keys)
    _write_json(
        dest / "processor_config.json",
        {
            "image_token": vf.image_token,
            "num_additional_image_tokens": 0,
            "patch_size": 14,
            "processor_class": "LlavaProcessor",
            "vision_feature_select_strategy": "full",
        },
    )
    _save_model(vf, dest, cfg, "LlavaForConditionalGeneration")


def _save_model(vf: VisionFamily, dest: Path, cfg, cls_name: str) -> None:
    import torch
    import transformers

    cfg.architectures = [cls_name]
    torch.manual_seed(zlib.crc32(vf.name.encode()))
    model = getattr(transformers, cls_name)(cfg)
    model.save_pretrained(str(dest))


VISION_FAMILIES: dict[str, VisionFamily] = {}


def _add(vf: VisionFamily) -> None:
    VISION_FAMILIES[vf.name] = vf


_add(
    VisionFamily(
        name="llava-interleave-qwen",
        mimics="llava-hf/llava-interleave-qwen-0.5b-hf",
        architecture="LlavaForConditionalGeneration",
        text_family="qwen2.5-instruct",
        template="llava-hf-llava-interleave-qwen-0.5b-hf.jinja",
        image_token="<image>",
        image_tokens=(IMAGE_SIDE // 14) ** 2,
        extra_tokens=("<image>",),
        end_of_turn="<|im_end|>",
        completion_suffix="<|im_end|>\n",
        notes="ChatML; each image renders as <image>\\n before the turn's text (images first, then text).",
        build=_build_llava,
    )
)


def vision_family(name: str) -> VisionFamily:
    try:
        return VISION_FAMILIES[name]
    except KeyError:
        raise KeyError(f"no zoo VLM {name!r}; known: {', '.join(VISION_FAMILIES)}") from None


def build_vlm(name: str, dest: Path | str) -> Path:
    vf = vision_family(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    fam = family(vf.text_family)
    fam = dataclasses.replace(fam, added=fam.added + _t(*vf.extra_tokens), template=vf.template)
    vocab = build_tokenizer(fam, dest)
    tmpl = (TEMPLATES / vf.template).read_text(encoding="utf-8")
    (dest / "chat_template.jinja").write_text(tmpl, encoding="utf-8")
    vf.build(vf, dest, vocab, fam)
    _write_json(dest / "generation_config.json", generation_config(fam, vocab))
    _write_json(dest / "zoo.json", {"family": vf.name, "mimics": vf.mimics, "template": vf.template})
    return dest


def build_vlm_zoo(root: Path | str, names: list[str] | None = None) -> dict[str, Path]:
    import torch

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {n: build_vlm(n, root / n) for n in (names or list(VISION_FAMILIES))}
    finally:
        torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(__doc__)
        return 2
    built = build_vlm_zoo(args[0], args[1:] or None)
    print(json.dumps({k: str(v) for k, v in built.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
