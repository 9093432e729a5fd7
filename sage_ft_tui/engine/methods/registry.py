"""The method registry: every task and preference method, read from the descriptor modules of
this package. A descriptor module defines `TASKS` (a tuple of TaskSpec) or `METHOD` (a
MethodSpec); adding one is adding a module here (docs/ARCHITECTURE.md, "How to add a training
method"). The schema's lists, the CLI's help, the wizard and the plan read this registry.

Every module directly in this package is imported to find them, so each stays light (no torch
at module level: the TUI reads the registry); trainer classes live in `methods.trainers`."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path

from sage_ft_tui.engine.data.formats import PREFERENCE_FORMATS
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.spec import MethodSpec, TaskSpec

PACKAGE = "sage_ft_tui.engine.methods"


@functools.cache
def _found() -> tuple[dict[str, TaskSpec], dict[str, MethodSpec]]:
    tasks: list[TaskSpec] = []
    methods: list[MethodSpec] = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.ispkg:  # methods.trainers: the heavy side
            continue
        mod = importlib.import_module(f"{PACKAGE}.{info.name}")
        tasks += getattr(mod, "TASKS", ())
        if isinstance(getattr(mod, "METHOD", None), MethodSpec):
            methods.append(mod.METHOD)
    return (
        {t.name: t for t in sorted(tasks, key=lambda t: t.order)},
        {m.name: m for m in sorted(methods, key=lambda m: m.order)},
    )


def all_tasks() -> dict[str, TaskSpec]:
    """Every task, in the order lists show them."""
    return _found()[0]


def preference_methods() -> dict[str, MethodSpec]:
    """Every preference method, in the order lists show them (`auto` is not one: it picks one)."""
    return _found()[1]


def task_spec(name: str) -> TaskSpec:
    t = all_tasks().get(name)
    if t is None:
        raise SageError(f"unknown task {name!r}", hint=f"choose one of: {', '.join(all_tasks())}", kind="config")
    return t


def method_spec(name: str) -> MethodSpec:
    m = preference_methods().get(name)
    if m is None:
        raise SageError(
            f"unknown preference method {name!r}",
            hint=f"choose one of: auto, {', '.join(preference_methods())}",
            kind="config",
        )
    return m


def task_names() -> tuple[str, ...]:
    return tuple(all_tasks())


def method_names() -> tuple[str, ...]:
    """`preference.method`'s values: auto, then every method."""
    return ("auto", *preference_methods())


def sequences_per_sample(task: str) -> int:
    """Sequences one sample puts through the model per step (memory estimate, planning)."""
    return task_spec(task).sequences_per_sample


def trains_own_rows(task: str) -> bool:
    """The task's rows go to a trainer other than SFT, in that trainer's columns (lengths are
    measured, nothing packed, the trainer cuts at max_length itself)."""
    return task_spec(task).trainer_rows


def check_task_format(task: str, fmt: str) -> None:
    """Refuse data of a format the task does not train on, saying which task would."""
    t = task_spec(task)
    if fmt in t.formats:
        return
    if fmt in PREFERENCE_FORMATS:
        raise SageError(
            f"the data holds preference rows ({fmt}: chosen/rejected answers or good/bad labels), "
            f"which the {task} task would train on as plain answers",
            hint="use the preference task (--task preference), or give one answer per row",
            kind="data",
            code="preference",
        )
    if set(t.formats) <= set(PREFERENCE_FORMATS):
        raise SageError(
            f"the {task} task needs chosen/rejected pairs or rows with a true/false label, but the data is {fmt}",
            hint="give prompt/chosen/rejected rows (or prompt/completion/label for KTO), or pick an SFT task",
            kind="data",
        )
    if fmt == "text":
        raise SageError(
            f"plain text has no answers to learn for the {task} task",
            hint="use the text task for plain text, or give question/answer style rows",
            kind="data",
        )
    takes = [n for n, o in all_tasks().items() if fmt in o.formats and not o.trainer_rows]
    raise SageError(
        f"the {task} task trains on plain text, but the data is {fmt}",
        hint=f"choose the {', '.join(takes[:-1])} or {takes[-1]} task for this data",
        kind="data",
    )


def image_tasks() -> tuple[str, ...]:
    """The tasks whose rows may carry images."""
    return tuple(n for n, t in all_tasks().items() if t.images)
