"""Loss and perplexity on the answer tokens only, with the same rendering and mask that
training used (engine.data.template), so "eval loss" here means what the trainer meant."""

from __future__ import annotations

import math
from typing import Callable, Optional

from sage_ft_tui.engine.data.encode import encode_examples
from sage_ft_tui.engine.data.images import vision_examples


def answer_loss(
    pair,
    records: list[dict],
    which: str,
    *,
    batch_size: int = 8,
    max_length: int = 2048,
    progress: Optional[Callable[[int], None]] = None,
) -> dict:
    """Mean token-level cross-entropy over the trained (answer) tokens of `records`."""
    import torch

    if pair.proc is not None:
        return _vision_loss(pair, records, which, batch_size, progress)
    encs = [e for r in records for e in encode_examples(pair.chat, r)]
    encs = [e for e in encs if any(e.completion_mask)]
    total, count = 0.0, 0
    pad = pair.tok.pad_token_id if pair.tok.pad_token_id is not None else 0
    with pair.side(which), torch.no_grad():
        for i in range(0, len(encs), batch_size):
            chunk = encs[i : i + batch_size]
            n = min(max_length, max(len(e.input_ids) for e in chunk))
            ids = torch.full((len(chunk), n), pad, dtype=torch.long)
            att = torch.zeros((len(chunk), n), dtype=torch.long)
            lab = torch.full((len(chunk), n), -100, dtype=torch.long)
            for j, e in enumerate(chunk):  # right padding: positions as in training
                k = min(n, len(e.input_ids))
                ids[j, :k] = torch.tensor(e.input_ids[:k])
                att[j, :k] = 1
                m = torch.tensor(e.completion_mask[:k], dtype=torch.bool)
                lab[j, :k] = torch.where(m, ids[j, :k], torch.tensor(-100))
            logits = pair.model(input_ids=ids.to(pair.device), attention_mask=att.to(pair.device)).logits.float()
            shift_logits, shift_labels = logits[:, :-1].reshape(-1, logits.shape[-1]), lab[:, 1:].reshape(-1)
            loss = torch.nn.functional.cross_entropy(
                shift_logits, shift_labels.to(pair.device), ignore_index=-100, reduction="sum"
            )
            total += float(loss)
            count += int((shift_labels != -100).sum())
            if progress:
                progress(len(chunk))
    mean = total / count if count else float("nan")
    return {
        "loss": round(mean, 6),
        "perplexity": round(math.exp(min(mean, 50.0)), 4) if count else None,
        "answer_tokens": count,
        "examples": len(encs),
    }


def _vision_loss(pair, records: list[dict], which: str, batch_size: int, progress) -> dict:
    """The same figure for a vision-language model, batches made as training made them (TRL's
    vision collator on images.vision_examples: prompt and image tokens not scored)."""
    import torch
    from PIL import Image
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    examples = [e for r in records if "messages" in r for e in vision_examples(r)]
    collate = DataCollatorForVisionLanguageModeling(processor=pair.proc, completion_only_loss=True)
    total, count = 0.0, 0
    with pair.side(which), torch.no_grad():
        for i in range(0, len(examples), max(1, batch_size)):
            chunk = examples[i : i + max(1, batch_size)]
            batch = collate([dict(e, images=[Image.open(p).convert("RGB") for p in e["images"]]) for e in chunk])
            lab = batch.pop("labels")
            logits = pair.model(**{k: v.to(pair.device) for k, v in batch.items()}).logits.float()
            shift_logits, shift_labels = logits[:, :-1].reshape(-1, logits.shape[-1]), lab[:, 1:].reshape(-1)
            loss = torch.nn.functional.cross_entropy(
                shift_logits, shift_labels.to(pair.device), ignore_index=-100, reduction="sum"
            )
            total += float(loss)
            count += int((shift_labels != -100).sum())
            if progress:
                progress(len(chunk))
    mean = total / count if count else float("nan")
    return {
        "loss": round(mean, 6),
        "perplexity": round(math.exp(min(mean, 50.0)), 4) if count else None,
        "answer_tokens": count,
        "examples": len(examples),
    }
