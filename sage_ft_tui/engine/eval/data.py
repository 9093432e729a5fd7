"""The held-out examples an evaluation uses: the run's eval split, or a file the user gives
(read with the run's own task, format and field map, so it is prepared like training data)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.layout import RunLayout


@dataclass
class Example:
    record: dict  # a prepared record: {"messages": [...]} or {"text": ...}
    prompt: Optional[list[dict]]  # the conversation up to the last answer (None: text only)
    reference: Optional[str]  # the last assistant answer


def to_example(rec: dict) -> Example:
    msgs = rec.get("messages")
    if not msgs or msgs[-1].get("role") != "assistant":
        return Example(rec, None, None)
    return Example(rec, [dict(m) for m in msgs[:-1]], str(msgs[-1].get("content") or ""))


def load_examples(run: Path, cfg, data: Optional[str] = None) -> tuple[list[Example], str]:
    """(examples, where they came from)."""
    if data:
        from sage_ft_tui.engine.data.prepare import load_training_data

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
        return [to_example(r) for r in loaded.records], str(Path(data).expanduser())
    path = RunLayout(run).eval_data
    if not path.is_file() or path.stat().st_size == 0:
        raise SageError(
            f"run {run.name} has no eval split (the file is missing or empty)",
            where=str(path),
            kind="data",
            hint="give held-out examples with --data FILE, or train with data.validation_split > 0",
        )
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(to_example(json.loads(line)))
            except json.JSONDecodeError as e:
                raise SageError(
                    f"not JSON ({e.msg})", where=f"{path}:{n}", kind="data", hint="prepare the run's data again"
                ) from None
    return out, str(path)
