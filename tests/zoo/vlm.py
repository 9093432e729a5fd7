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
    extra_tokens: tuple[str, ...] = ()  # added to the text family's tokenizer
    end_of_turn: str = ""
    completion_suffix: str = ""  # what is trained after the answer (its end of turn, as rendered)
    completion_prefix: str = ""  # what is trained before it (the space after "Assistant:")
    image_extra: int = 0  # tokens an image adds beyond its image-token ids (begin/end markers)
    needs_torchvision: bool = False  # transformers cannot build its processor without torchvision
    length_slack: int = 0  # tokens the torch-free count may miss per image (blank lines the vocabulary splits)
    text_overrides: dict = field(default_factory=dict)  # Family fields changed (eos, tokenizer_config...)
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


def _build_smolvlm(vf: VisionFamily, dest: Path, vocab: dict[str, int], fam: Family) -> None:
    """SmolVLM: Idefics3 (a SigLIP-style tower, pixel shuffle, a linear connector) on SmolLM2."""
    from transformers import Idefics3Config
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    text = dict(_text_config(fam, vocab), model_type="llama", tie_word_embeddings=True, rope_theta=100000.0)
    cfg = Idefics3Config(
        text_config=text,
        vision_config=dict(
            model_type="idefics3_vision",
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=IMAGE_SIDE,
            patch_size=14,
        ),
        image_token_id=vocab[vf.image_token],
        scale_factor=2,
        tie_word_embeddings=True,
        pad_token_id=vocab[fam.pad] if fam.pad else None,
    )
    # One tile per image (no splitting): (28/14)² patches, pixel-shuffled by 2 → 1 token.
    ip = Idefics3ImageProcessorPil(
        do_image_splitting=False, max_image_size={"longest_edge": IMAGE_SIDE}, size={"longest_edge": IMAGE_SIDE}
    )
    ip.save_pretrained(dest)
    _write_json(dest / "processor_config.json", {"image_seq_len": 1, "processor_class": "Idefics3Processor"})
    _save_model(vf, dest, cfg, "Idefics3ForConditionalGeneration")


def _build_gemma3(vf: VisionFamily, dest: Path, vocab: dict[str, int], fam: Family) -> None:
    """Gemma 3 (4B and up): a SigLIP tower, an average-pooling projector, Gemma 3's text model."""
    from transformers import Gemma3Config
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    text = dict(_text_config(fam, vocab), **fam.config, model_type="gemma3_text")
    text["pad_token_id"] = vocab["<pad>"]
    cfg = Gemma3Config(
        text_config=text,
        vision_config=dict(
            model_type="siglip_vision_model",
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=IMAGE_SIDE,
            patch_size=14,
            vision_use_head=False,
        ),
        mm_tokens_per_image=1,
        boi_token_index=vocab["<start_of_image>"],
        eoi_token_index=vocab["<end_of_image>"],
        image_token_index=vocab[vf.image_token],
        tie_word_embeddings=True,
    )
    ip = Gemma3ImageProcessorPil(size={"height": IMAGE_SIDE, "width": IMAGE_SIDE})
    ip.save_pretrained(dest)
    _write_json(dest / "processor_config.json", {"image_seq_length": 1, "processor_class": "Gemma3Processor"})
    _save_model(vf, dest, cfg, "Gemma3ForConditionalGeneration")


def _build_qwen2_vl(vf: VisionFamily, dest: Path, vocab: dict[str, int], fam: Family) -> None:
    """Qwen2-VL: a ViT with 2D RoPE and a patch merger, Qwen2's language model with M-RoPE. Its
    processor class cannot be built without torchvision (transformers needs it for the video
    processor), so the processor's files are written as the hub repo has them."""
    from transformers import Qwen2VLConfig
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    text = dict(
        _text_config(fam, vocab),
        model_type="qwen2_vl_text",
        rope_theta=1000000.0,
        rope_scaling={"type": "mrope", "mrope_section": [8, 12, 12]},  # half of head_dim 64
        tie_word_embeddings=True,
    )
    cfg = Qwen2VLConfig(
        text_config=text,
        vision_config=dict(
            depth=1, embed_dim=32, hidden_size=TINY["hidden_size"], num_heads=2, mlp_ratio=2, patch_size=14
        ),
        image_token_id=vocab[vf.image_token],
        video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"],
        bos_token_id=vocab["<|endoftext|>"],
        eos_token_id=vocab["<|im_end|>"],
        tie_word_embeddings=True,
    )
    side = 2 * IMAGE_SIDE  # Qwen2-VL's smallest: one 2×2 merge of 14 px patches is 28 px; 56² → 4 tokens
    ip = Qwen2VLImageProcessorPil(min_pixels=side * side, max_pixels=side * side)
    ip.save_pretrained(dest)
    pre = json.loads((dest / "preprocessor_config.json").read_text(encoding="utf-8"))
    pre.update(image_processor_type="Qwen2VLImageProcessor", processor_class="Qwen2VLProcessor")
    pre.update(min_pixels=side * side, max_pixels=side * side)
    _write_json(dest / "preprocessor_config.json", pre)
    _save_model(vf, dest, cfg, "Qwen2VLForConditionalGeneration")


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
        extra_tokens=("<image>",),
        end_of_turn="<|im_end|>",
        completion_suffix="<|im_end|>\n",
        notes="ChatML; each image renders as <image>\\n before the turn's text (images first, then text).",
        build=_build_llava,
    )
)


_add(
    VisionFamily(
        name="qwen2-vl",
        mimics="Qwen/Qwen2-VL-2B-Instruct",
        architecture="Qwen2VLForConditionalGeneration",
        text_family="qwen2.5-instruct",
        template="Qwen-Qwen2-VL-2B-Instruct.jinja",
        image_token="<|image_pad|>",
        end_of_turn="<|im_end|>",
        completion_suffix="<|im_end|>\n",
        needs_torchvision=True,
        notes="ChatML; an image is <|vision_start|><|image_pad|><|vision_end|> where it stands (the pad expands).",
        build=_build_qwen2_vl,
    )
)
_add(
    VisionFamily(
        name="smolvlm",
        mimics="HuggingFaceTB/SmolVLM-256M-Instruct",
        architecture="Idefics3ForConditionalGeneration",
        text_family="smollm2-instruct",
        template="HuggingFaceTB-SmolVLM-256M-Instruct.jinja",
        image_token="<image>",
        extra_tokens=("<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"),
        end_of_turn="<end_of_utterance>",
        completion_suffix="<end_of_utterance>\n",
        completion_prefix=" ",
        image_extra=3,  # <fake_token_around_image><global-img> … <fake_token_around_image>
        text_overrides={"eos": "<end_of_utterance>", "gen_eos": ("<end_of_utterance>",)},
        notes="'User:'/'Assistant:' turns ending in <end_of_utterance>; no image splitting in the tiny folder.",
        build=_build_smolvlm,
    )
)
_add(
    VisionFamily(
        name="gemma-3-vision",
        mimics="google/gemma-3-4b-it",
        architecture="Gemma3ForConditionalGeneration",
        text_family="gemma-3-it",
        template="google-gemma-3-it.jinja",
        image_token="<image_soft_token>",
        extra_tokens=("<image_soft_token>",),
        end_of_turn="<end_of_turn>",
        completion_suffix="<end_of_turn>\n",
        image_extra=2,  # <start_of_image> … <end_of_image>
        length_slack=4,  # the processor writes "\n\n" around them: 2 tokens in Gemma's vocabulary, more here
        text_overrides={
            "tokenizer_config": {
                "add_bos_token": True,
                "add_eos_token": False,
                "spaces_between_special_tokens": False,
                "boi_token": "<start_of_image>",
                "eoi_token": "<end_of_image>",
                "image_token": "<image_soft_token>",
            }
        },
        notes="The system message folds into the first user turn; an image is <start_of_image> in the text.",
        build=_build_gemma3,
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
    extra = tuple(t for t in _t(*vf.extra_tokens) if t not in fam.added)
    fam = dataclasses.replace(fam, added=fam.added + extra, template=vf.template, **vf.text_overrides)
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
