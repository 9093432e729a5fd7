"""A record as the model sees it: its training examples (token ids and the trained-token
mask) through the chat template, and images counted as the tokens their processor makes."""

from __future__ import annotations

import json

from sage_ft_tui.engine.data.images import row_image_refs
from sage_ft_tui.engine.models.vision import extra_image_tokens


def with_image_tokens(ids: list[int], mask: list[int], rec: dict, model_dir) -> tuple[list[int], list[int]]:
    """(ids, mask) counted as the model sees them: each image is as many tokens as its processor
    makes of it, not the one placeholder the text renderer writes (they lead, untrained; only
    lengths and the answers' positions are read from the result)."""
    if not rec.get("images"):
        return ids, mask
    extra = extra_image_tokens(model_dir, [(r.width, r.height) for r in row_image_refs(rec)])
    return [-1] * extra + list(ids), [0] * extra + list(mask)


def encode_record(tok, rec: dict, mask_reasoning: bool = False):
    """One sequence for a record (previews, lengths): its last training example."""
    return encode_examples(tok, rec, mask_reasoning)[-1]


def encode_examples(tok, rec: dict, mask_reasoning: bool = False) -> list:
    """The training examples of a record: one for text and for most conversations; one per
    answer where the template renders history differently from the live turn."""
    if "text" in rec:
        return [tok.encode_text(rec["text"])]
    tools = json.loads(rec["tools"]) if rec.get("tools") else None
    return tok.encode_examples(rec["messages"], tools, mask_reasoning)


def record_messages(rec: dict) -> list[dict]:
    if "messages" in rec:
        return rec["messages"]
    answer: list = next((rec[k] for k in ("chosen", "completion") if rec.get(k)), [])
    return list(rec.get("prompt") or []) + list(answer)
