"""Validation in the user's words: a refused field named by its on-screen label, in one
line ("Learning rate must be greater than 0, not '0'"; "Bad-row share is empty: type a
number from 0 to 1, e.g. 0.05"), never a dotted config key or pydantic's text."""

from __future__ import annotations

import re
from typing import Any, Optional

from sage_ft_tui.engine.errors import SageError


def short(label: str) -> str:
    """A label without its parenthesis: "Max steps (-1 off)" → "Max steps"."""
    return re.sub(r"\s*\(.*\)\s*$", "", label).strip()


def unreadable(label: str, text: str, typ: type, example: Any = None) -> str:
    """The line for text that is not a number at all (or nothing)."""
    kind = "a whole number" if typ is int else "a number"
    eg = f", e.g. {example:g}" if isinstance(example, float) else f", e.g. {example}" if example is not None else ""
    if not text.strip():
        return f"{short(label)} is empty: type {kind}{eg}"
    return f"{short(label)} must be {kind}{eg}, not {text.strip()!r}"


def in_words(err: SageError, labels: dict[str, str], typed: Optional[dict[str, str]] = None) -> SageError:
    """`err` from the config builder with every config key it names replaced by the label the
    screen shows for it (`labels`: dotted key → label); one line, no hint naming a key."""
    field, problem = getattr(err, "field", None), getattr(err, "problem", None)
    if field in labels and problem:
        text = (typed or {}).get(field, "")
        line = f"{short(labels[field])} {problem}" + (f", not {text.strip()!r}" if text.strip() else "")
        return SageError(line, hint="")
    msg = re.sub(r"^(edited|settings|wizard): ", "", err.message)
    for key in sorted(labels, key=len, reverse=True):  # dotted keys first, then their last part
        msg = msg.replace(key, short(labels[key]))
    for key in labels:
        msg = re.sub(rf"\b{re.escape(key.rsplit('.', 1)[-1])}\b", short(labels[key]), msg)
    hint = err.hint if err.hint and not any(k in err.hint for k in labels) else ""
    return SageError(msg, hint=hint, kind=err.kind)


def labelled(err: Optional[SageError], labels: dict[str, str]) -> Optional[SageError]:
    """`err` with each dotted config key it names, in its message and its hint, replaced by the
    label the screen shows for it ("raise data.max_bad_share" → "raise Bad-row share"); the
    hint is kept (it says what to do), unlike `in_words`, which drops a hint naming a key."""
    if err is None:
        return None
    msg, hint = err.message, err.hint
    for key, label in labels.items():
        msg, hint = msg.replace(key, short(label)), hint.replace(key, short(label))
    return SageError(msg, hint=hint, kind=err.kind, where=err.where, code=err.code)


SECTION_TITLES = {
    "training": "Training",
    "model": "Model",
    "lora": "LoRA",
    "data": "Data",
    "preference": "Preference",
    "grpo": "GRPO",
}


def app_words(line: str) -> str:
    """An engine line written for the command line, in the app's words: `--gpus N` flags
    and dotted config keys become the setting and where Review shows it."""
    line = re.sub(r"--gpus N or ", "", line)
    line = re.sub(r"--gpus (\d+)", r"gpus \1", line)
    return re.sub(
        r"\b(training|model|lora|data|preference|grpo)\.([a-z_]+)",
        lambda m: f"{m[2]} (Review › {SECTION_TITLES[m[1]]})",
        line,
    )
