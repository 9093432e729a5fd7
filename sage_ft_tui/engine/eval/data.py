"""The held-out examples an evaluation uses: the run's eval split, or a file the user gives
(read with the run's own task, format and field map, so it is prepared like training data).
Every task's records become conversations (`as_conversation`): preference pairs are scored
on their chosen answer, KTO rows with label true, GRPO prompts on their reference answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.data.load import load_training_data
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.layout import RunLayout


@dataclass
class Example:
    record: dict  # a prepared record: {"messages": [...]} or {"text": ...}
    prompt: Optional[list[dict]]  # the conversation up to the last answer (None: text only)
    reference: Optional[str]  # the last assistant answer


def as_conversation(rec: dict) -> Optional[dict]:
    """A prepared record of any task as the conversation eval scores: SFT as it is; a
    preference pair as its prompt + the chosen answer; a KTO row as prompt + completion
    when its label is true (None when false: a bad answer is no reference); a GRPO row as
    its prompt + the reference answer."""
    if "messages" in rec or "text" in rec:
        return rec
    extra = {"tools": rec["tools"]} if rec.get("tools") else {}
    prompt = [dict(m) for m in rec.get("prompt") or []]
    if "chosen" in rec:
        return {"messages": prompt + [dict(m) for m in rec["chosen"]], **extra}
    if "completion" in rec:
        return {"messages": prompt + [dict(m) for m in rec["completion"]], **extra} if rec.get("label") else None
    if "answer" in rec:
        return {"messages": prompt + [{"role": "assistant", "content": str(rec["answer"])}], **extra}
    return None


def to_example(rec: dict) -> Example:
    msgs = rec.get("messages")
    if not msgs or msgs[-1].get("role") != "assistant":
        return Example(rec, None, None)
    return Example(rec, [dict(m) for m in msgs[:-1]], str(msgs[-1].get("content") or ""))


def _examples(records: list[dict], source: str) -> list[Example]:
    convs = [as_conversation(r) for r in records]
    kept = [to_example(c) for c in convs if c is not None]
    if records and not kept:
        raise SageError(
            f"no example in {source} has a good answer to score (KTO rows with label true)",
            kind="data",
            hint="give held-out rows with label true (or chosen/rejected pairs) via --data FILE",
        )
    return kept


NO_EVAL_SPLIT = "This run has nothing held out to evaluate on."


def has_eval_split(run: Path) -> bool:
    """Whether the run's data holds evaluation rows (Evaluate without a file of its own)."""
    path = RunLayout(run).eval_data
    return path.is_file() and path.stat().st_size > 0


def load_examples(run: Path, cfg, data: Optional[str] = None) -> tuple[list[Example], str]:
    """(examples, where they came from)."""
    if data:
        d = cfg.data
        loaded = load_training_data(
            [data],
            task=cfg.task,
            fmt=d.format,
            field_map=d.field_map,
            system_prompt=d.system_prompt,
            max_bad_share=d.max_bad_share,
            max_length=cfg.training.max_length,
        )
        return _examples(loaded.records, str(Path(data).expanduser())), str(Path(data).expanduser())
    path = RunLayout(run).eval_data
    if not has_eval_split(run):
        raise SageError(
            NO_EVAL_SPLIT,
            kind="data",
            hint="evaluate on a file of held-out examples with --data FILE, or train a new run with "
            "data.validation_split above 0 (by default 5% is held out from 60 rows on)",
        )
    records = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SageError(
                    f"not JSON ({e.msg})", where=f"{path}:{n}", kind="data", hint="prepare the run's data again"
                ) from None
    return _examples(records, str(path)), str(path)
