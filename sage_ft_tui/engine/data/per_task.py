"""The one place where the kind of task changes what happens to the data: for each kind
(conversation, text, preference, GRPO) how a row becomes its training record, how records
are measured in tokens (truncation, trained tokens), and how a record is previewed.

Everything else asks `task_data(task)` instead of comparing task names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from sage_ft_tui.engine.data.code.records import build_code_records
from sage_ft_tui.engine.data.encode import encode_record, with_image_tokens
from sage_ft_tui.engine.data.findings import Finding
from sage_ft_tui.engine.data.formats import RowError, normalize
from sage_ft_tui.engine.data.grpo_checks import grpo_checks
from sage_ft_tui.engine.data.images import ImageRef, resolve_row_images, row_image_refs
from sage_ft_tui.engine.data.loaded import LoadedData
from sage_ft_tui.engine.data.options import LoadOptions
from sage_ft_tui.engine.data.preference import (
    encode_preference,
    normalize_kto,
    normalize_pair,
    normalize_prompt,
    preview_pair,
    prompt_text,
    sequence_lengths,
)
from sage_ft_tui.engine.data.rows import Row
from sage_ft_tui.engine.data.truncation import Truncation, truncation, truncation_of_lengths
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.preference import pairs_only
from sage_ft_tui.engine.methods.registry import task_spec

ROW_CHARS_PER_TOKEN = 64  # a token is rarely over 10 characters: 64x max_length is far past any truncation
PREVIEW_TEXT_CHARS = 2000


@dataclass
class Measured:
    """What the model's max length does to some records, and how many tokens train."""

    truncation: Truncation
    trained: int = 0  # tokens trained (within max length), for the report's trained share


@dataclass
class Preview:
    """One record for the Data step: (text, trained) segments, its images, and for
    preference/GRPO rows the prompt and answers side by side."""

    segments: list[tuple[str, bool]]
    images: list[ImageRef] = field(default_factory=list)
    pair: Optional[dict] = None


@dataclass(frozen=True)
class MeasureOptions:
    max_length: int
    model_dir: Any = None  # image rows: their processor's token counts
    mask_reasoning: bool = False


@dataclass(frozen=True)
class TaskData:
    """A kind of task, as the data path sees it (one function per step)."""

    record: Callable[[Row, str, LoadOptions], dict]  # a row in format `fmt` → its record (RowError: a bad row)
    measure: Callable[[Any, list[dict], MeasureOptions], Measured]  # tokenizer, records → lengths
    preview: Callable[[Any, dict], Preview]  # tokenizer, record → what the Data step shows
    check: Callable[[str, Optional[str]], None] = lambda fmt, method: None  # the data's format against the method
    # the records come from elsewhere than data files: (run config, tokenizer) → (LoadedData, report sections)
    source: Optional[Callable[[Any, Any], tuple[LoadedData, dict]]] = None
    # checks only run creation makes (run config, tokenizer, data) → findings; SageError refuses
    run_checks: Callable[[Any, Any, LoadedData], list[Finding]] = lambda cfg, tok, loaded: []
    # a record → the rows its own trainer reads (tokenizer, record, unpair); None: SFT's input_ids + completion_mask
    trainer_rows: Optional[Callable[[Any, dict, bool], list[dict]]] = None
    needs_template: bool = False  # the model must have a chat template


# ---- how a row becomes a record --------------------------------------------------------


def _squashed(msgs: Any) -> Any:
    """A conversation with its whitespace runs made one space: what a whitespace-only edit leaves equal."""
    if not isinstance(msgs, list):
        return msgs
    return [
        (m.get("role"), " ".join(str(m.get("content") or "").split()), m.get("tool_calls"))
        if isinstance(m, dict)
        else m
        for m in msgs
    ]


def conversation_record(r: Row, fmt: str, opts: LoadOptions) -> dict:
    """A conversation: images resolved (absolute paths, each opened and checked); a row so
    long that truncation would keep only a sliver of it is refused (tokenizing a
    multi-megabyte row takes minutes and trains on almost none of it)."""
    rec = normalize(r.data, fmt, opts.system_prompt)
    if "messages" not in rec:
        return rec
    resolve_row_images(rec, r.file)
    if opts.max_length:
        n = sum(len(m.get("content") or "") for m in rec["messages"] if isinstance(m, dict))
        if n > opts.max_length * ROW_CHARS_PER_TOKEN:
            raise RowError(
                f"row too long: {n:,} characters, more than {ROW_CHARS_PER_TOKEN} × "
                f"training.max_length ({opts.max_length} tokens); almost all of it would be cut"
            )
    return rec


def preference_record(r: Row, fmt: str, opts: LoadOptions) -> dict:
    rec = (normalize_kto if fmt == "kto" else normalize_pair)(r.data, opts.system_prompt)
    if "chosen" in rec and _squashed(rec["chosen"]) == _squashed(rec["rejected"]):
        raise RowError("chosen and rejected differ only in whitespace: no preference to learn")
    return rec


def grpo_record(r: Row, fmt: str, opts: LoadOptions) -> dict:
    return normalize_prompt(r.data, opts.answer_field, opts.system_prompt)


# ---- how records are measured ----------------------------------------------------------


def measure_conversations(tok, records: list[dict], opts: MeasureOptions) -> Measured:
    """Each record's last training example (image tokens counted): cut, EOS lost, no trained token."""
    encoded = []
    for rec in records:
        enc = encode_record(tok, rec, opts.mask_reasoning)
        encoded.append(with_image_tokens(enc.input_ids, enc.completion_mask, rec, opts.model_dir))
    t = truncation(encoded, opts.max_length, is_text=False)
    return Measured(t, sum(sum(m[: opts.max_length]) for _, m in encoded))


def measure_text(tok, records: list[dict], opts: MeasureOptions) -> Measured:
    """Documents are split into max_length pieces (nothing lost): only their lengths count."""
    encoded = [encode_record(tok, rec) for rec in records]
    t = truncation([(e.input_ids, e.completion_mask) for e in encoded], opts.max_length, is_text=True)
    return Measured(t, sum(sum(e.completion_mask) for e in encoded))


def measure_pairs(tok, records: list[dict], opts: MeasureOptions) -> Measured:
    """Pairs / prompts: lengths only (the trainer scores its own tokens)."""
    seqs = [sequence_lengths(tok, rec) for rec in records]
    return Measured(truncation_of_lengths([n for n, _ in seqs], opts.max_length), sum(sc for _, sc in seqs))


# ---- the rows a task's own trainer reads ------------------------------------------------


def preference_rows(tok, rec: dict, unpair: bool) -> list[dict]:
    """prompt_ids + chosen_ids/rejected_ids (or completion_ids + label); with `unpair` a
    pair becomes a good and a bad row (KTO)."""
    if not (unpair and rec.get("chosen")):
        return [encode_preference(tok, rec)]
    base = {k: v for k, v in rec.items() if k not in ("chosen", "rejected")}
    return [
        encode_preference(tok, base | {"completion": rec[side], "label": side == "chosen"})
        for side in ("chosen", "rejected")
    ]


def grpo_rows(tok, rec: dict, unpair: bool) -> list[dict]:
    """The rendered prompt and the reference answer (TRL generates from the prompt)."""
    return [{"prompt": prompt_text(tok, rec), "answer": rec["answer"]}]


# ---- how a record is previewed ---------------------------------------------------------


def preview_conversation(tok, rec: dict) -> Preview:
    if "text" in rec:
        return preview_text(tok, rec)
    tools = json.loads(rec["tools"]) if rec.get("tools") else None
    return Preview(tok.segments(rec["messages"], tools), row_image_refs(rec))


def preview_text(tok, rec: dict) -> Preview:
    return Preview([(rec["text"][:PREVIEW_TEXT_CHARS], True)])


def _preview_pair(tok, rec: dict, answer_trained: bool) -> Preview:
    pair = preview_pair(tok, rec)
    answer = pair.get("chosen", pair.get("completion", pair.get("answer", "")))
    return Preview([(pair["prompt"], False), (answer, answer_trained)], pair=pair)


def preview_preference(tok, rec: dict) -> Preview:
    return _preview_pair(tok, rec, True)


def preview_grpo(tok, rec: dict) -> Preview:
    return _preview_pair(tok, rec, False)  # GRPO trains on its own samples, not on the reference answer


def check_preference_method(fmt: str, method: Optional[str]) -> None:
    """Labelled (KTO) rows cannot train a method that needs chosen/rejected pairs."""
    if fmt == "kto" and method and pairs_only(method):
        raise SageError(
            f"preference.method {method} needs chosen/rejected pairs, but the data has one answer "
            "per row with a true/false label",
            hint="use preference.method kto (or auto) for labelled rows",
            kind="data",
        )


CONVERSATION = TaskData(conversation_record, measure_conversations, preview_conversation)
CHAT = TaskData(conversation_record, measure_conversations, preview_conversation, needs_template=True)
TEXT = TaskData(conversation_record, measure_text, preview_text)
CODE = TaskData(conversation_record, measure_text, preview_text, source=build_code_records)
PREFERENCE = TaskData(
    preference_record, measure_pairs, preview_preference, check_preference_method, trainer_rows=preference_rows
)
GRPO = TaskData(grpo_record, measure_pairs, preview_grpo, run_checks=grpo_checks, trainer_rows=grpo_rows)

# the data path's kinds, by name: each task's descriptor names its kind (TaskSpec.records, engine/methods)
DATA_KINDS: dict[str, TaskData] = {
    "conversation": CONVERSATION,
    "chat": CHAT,
    "text": TEXT,
    "code": CODE,
    "preference": PREFERENCE,
    "grpo": GRPO,
}


def task_data(task: str) -> TaskData:
    return DATA_KINDS[task_spec(task).records]  # an unknown task: task_spec's one error line
