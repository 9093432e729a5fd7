"""Training a vision-language model: the processor, and where the adapters go.

The rows are TRL's vision prompt/completion examples (data/images.vision_examples, built by
data/trainer_data.vision_datasets); TRL's SFTTrainer, given the processor, collates them with its
own DataCollatorForVisionLanguageModeling: the processor's chat template renders the prompt
with the generation prompt and the answer after it, the processor expands each image into its
tokens and pixels, and `completion_only_loss` leaves the prompt and every image token
untrained. No hand-written collator; packing and padding-free are off (TRL refuses them for
images).

`lora.vision` says what trains besides the language model's adapters: `frozen` (nothing: the
tower and the projector keep their weights), `projector` (the projector trained fully, saved
with the adapter as peft's modules_to_save) or `tower` (adapters on the tower too, and the
projector trained).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sage_ft_tui.engine.errors import SageError, clip
from sage_ft_tui.engine.models.vision import PROJECTOR_NAMES, part_of


def load_processor(cfg, mdir: Path):
    """The model's processor (image processor + tokenizer + chat template), with a pad token."""
    from transformers import AutoProcessor, ProcessorMixin

    try:
        proc = AutoProcessor.from_pretrained(str(mdir), trust_remote_code=cfg.model.trust_remote_code)
    except (OSError, ValueError, ImportError, AttributeError, TypeError) as e:
        text = str(e).strip() or "a library its processor needs is missing"
        # Qwen2-VL's and Qwen2.5-VL's processors build a video processor, which transformers
        # makes only with torchvision installed (an ImportError, often with no message)
        needs = isinstance(e, ImportError) or "torchvision" in text or "VIDEO_PROCESSOR" in text
        raise SageError(
            f"cannot load the processor of {cfg.model.name}: {type(e).__name__}: {clip(text)}",
            kind="model",
            hint="install torchvision (pip install torchvision), which this model's processor needs"
            if needs
            else "the model folder needs its preprocessor_config.json and tokenizer files",
        ) from None
    if not isinstance(proc, ProcessorMixin):
        # transformers falls back to the bare tokenizer when the processor cannot be built
        # (Qwen2-VL's needs torchvision for its video processor)
        raise SageError(
            f"{cfg.model.name} is a vision-language model, but its processor could not be built "
            "(only its tokenizer loaded)",
            kind="model",
            hint="install torchvision, which this model's processor needs (pip install torchvision), "
            "or check its preprocessor_config.json",
        )
    tok = proc.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return proc


def vision_targets(model, target_modules, vision: str) -> dict[str, Any]:
    """LoraConfig arguments for a VLM: adapters on the language model's linear layers (those
    named in target_modules, or all of them), on the tower's too with `tower`; the projector
    trained fully (modules_to_save) with `projector` or `tower`."""
    import torch

    parts = {"language"} | ({"tower"} if vision == "tower" else set())
    names = []
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear) or name.endswith("lm_head"):
            continue
        if part_of(name) not in parts:
            continue
        if target_modules != "all-linear" and name.rsplit(".", 1)[-1] not in target_modules:
            continue
        names.append(name)
    if not names:
        raise SageError(
            f"lora.target_modules {target_modules!r}: no such linear layer in the language model",
            kind="config",
            hint="use all-linear, or names such as q_proj, v_proj",
        )
    out: dict[str, Any] = {"target_modules": names}
    if vision in ("projector", "tower"):
        found = sorted({p for n, _ in model.named_modules() for p in n.split(".") if p in PROJECTOR_NAMES})
        if found:
            out["modules_to_save"] = found
    return out
