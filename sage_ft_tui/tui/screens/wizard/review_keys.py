"""Review's settings as the screen shows them: the config's keys grouped in sections (common
ones first), found by name, each named "Section › label", typed values read as YAML, and an
engine message with the keys it names in those words. Pure functions, no widgets."""

from __future__ import annotations

import json
import re
import typing
from typing import Any, Optional

import yaml

from sage_ft_tui.engine.config.schema import RunConfig, field_help
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.registry import all_tasks

# Keys the Output section holds (the rest go by their config section); `version` is fixed.
OUTPUT_KEYS = (
    "preset",
    "training.logging_steps",
    "training.eval_steps",
    "training.save_steps",
    "training.save_total_limit",
    "training.report_to",
)
PATH_KEYS = ("data.paths", "data.eval_paths", "data.repo")  # shown relative to the folder the app started in
REWARDS_KEY = "grpo.rewards"  # its file.py:function entries too
SKIP = ("version", "name")  # name has its own row at the top
# Keys a task's own trainer never reads: not shown for it (packing is the SFT trainer's).
NOT_READ_BY = {"training.packing": tuple(n for n, t in all_tasks().items() if not t.packs)}
# The config's sections as collapsible groups: (title, key prefixes, open at first, only for these tasks).
# The ones people change most come first and open; the rest are a key or a search away.
SECTIONS: tuple[tuple[str, tuple[str, ...], bool, tuple[str, ...]], ...] = (
    ("Training", ("training.",), True, ()),
    ("LoRA", ("lora.",), True, ()),
    ("Preference", ("preference.",), True, ("preference",)),
    ("GRPO", ("grpo.",), True, ("grpo",)),
    ("Data", ("data.",), False, ()),
    ("Model", ("task", "model."), False, ()),
    ("Guardrails", ("training.guard.",), False, ()),
    ("Output", (), False, ()),
    ("Notify", ("notify.",), False, ()),
)
# Commonly changed keys: first in their section, in this order.
COMMON = (
    "training.epochs",
    "training.max_steps",
    "training.learning_rate",
    "training.max_length",
    "training.micro_batch_size",
    "training.grad_accumulation",
    "training.packing",
    "lora.r",
    "lora.alpha",
    "lora.dropout",
    "preference.method",
    "preference.beta",
    "preference.loss_type",
    "grpo.rewards",
    "grpo.num_generations",
    "data.paths",
    "data.validation_split",
    "model.name",
    "model.quantization",
)


def _section_of(key: str) -> str:
    if key in OUTPUT_KEYS:
        return "Output"
    best = ("", "")  # the longest matching prefix wins (training.guard. before training.)
    for title, prefixes, _open, _tasks in SECTIONS:
        for pre in prefixes:
            if (key == pre or key.startswith(pre)) and len(pre) > len(best[1]):
                best = (title, pre)
    return best[0]


def grouped_keys(task: Optional[str] = None) -> list[tuple[str, list[str]]]:
    """(section title, dotted keys) in SECTIONS' order, common keys first; the sections of
    another task's method (preference, GRPO) left out when `task` is given."""
    keys = [k for k in field_help() if k not in SKIP and task not in NOT_READ_BY.get(k, ())]
    out = []
    for title, _prefixes, _open, tasks in SECTIONS:
        if tasks and task is not None and task not in tasks:
            continue
        mine = [k for k in keys if _section_of(k) == title]
        mine.sort(key=lambda k: COMMON.index(k) if k in COMMON else len(COMMON))
        out.append((title, mine))
    return out


def is_open(title: str) -> bool:
    return next(o for t, _p, o, _t in SECTIONS if t == title)


def matches(key: str, query: str) -> bool:
    """The find box: every word of `query` in the key ("max st" finds training.max_steps)."""
    words = query.lower().replace(".", " ").replace("_", " ").split()
    k = key.lower().replace("_", " ")
    return all(w in k for w in words)


def choices(key: str) -> tuple[str, ...]:
    """The allowed values of a Literal-typed key (shown in its help), else ()."""
    model: Any = RunConfig
    *parents, leaf = key.split(".")
    for part in parents:
        model = model.model_fields[part].annotation
    ann = model.model_fields[leaf].annotation
    for arg in (ann, *typing.get_args(ann)):
        if typing.get_origin(arg) is typing.Literal:
            return tuple(str(a) for a in typing.get_args(arg))
    return ()


def shown_as(key: str) -> str:
    """A key as Review shows it: its section's title, then its label ("LoRA › dropout")."""
    return f"{_section_of(key)} › {key.split('.', 1)[-1] if key != 'task' else key}"


SECTION_TITLE = {pre.rstrip("."): title for title, prefixes, _o, _t in SECTIONS for pre in prefixes if "." in pre}
DOTTED = re.compile(r"\b(?:training|model|lora|data|preference|grpo|notify)\.[a-z_.]*[a-z_]")


def in_review_words(message: str) -> str:
    """An engine message with each config key it names as Review shows it: "preference.method /
    training.micro_batch_size: ..." → "Preference › method / Training › micro_batch_size: ...";
    a bare section ("grpo.num_generations / training: ...") by its title."""
    known = set(field_help())
    msg = re.sub(r"^(edited|settings|wizard): ", "", message)
    head, sep, body = msg.partition(": ")
    names = head.split(" / ")
    if sep and all(p in known or p in SECTION_TITLE for p in names):  # the keys the message is about
        msg = " / ".join(shown_as(p) if p in known else SECTION_TITLE[p] for p in names) + sep + body
    return DOTTED.sub(lambda m: shown_as(m[0]) if m[0] in known else m[0], msg)


def bad_line(key: str, typed: str, e: SageError) -> str:
    """One short line for a refused field, named as the screen shows it (section › label),
    what the value must be, what was typed ("Training › learning_rate must be a number, not 'abc'")."""
    where = shown_as(key)
    problem = getattr(e, "problem", None)
    if problem and getattr(e, "field", key) == key:
        return f"{where} {problem}, not {typed.strip()!r}" if typed.strip() else f"{where} {problem}"
    msg = in_review_words(e.message)
    return msg if where in msg else f"{where}: {msg}"


def show_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return f"{v:g}"
    return json.dumps(v)


def parse_value(text: str) -> Any:
    """What the user typed, read as YAML: 3, 0.1, true, null, [q_proj, v_proj], or a string."""
    text = text.strip()
    if not text:
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def field_id(key: str) -> str:
    return "cfg-" + key.replace(".", "-").replace("_", "-")
