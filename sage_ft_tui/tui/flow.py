"""The wizard's step order, written once; the App owns one `WizardFlow` and moves through it.

A step screen never imports the next one: it commits its answer and posts `StepDone`;
the App asks the flow what comes after and pushes it.
"""

from __future__ import annotations

from typing import Callable, Optional

from textual.screen import Screen

from sage_ft_tui.engine.methods.registry import all_tasks

STEPS: tuple[str, ...] = ("Task", "Model", "Data", "Method", "Hardware", "Review")
QUICK_SKIPS: tuple[str, ...] = ("Task", "Model")  # a Quickstart entry answers these itself
# Steps only some tasks have: the Method step chooses a preference method or GRPO's rewards
# (after Data: which methods apply, and the rewards' check, depend on the rows).
ONLY_FOR: dict[str, tuple[str, ...]] = {
    step: tuple(n for n, t in all_tasks().items() if step in t.wizard_steps) for step in ("Method",)
}  # the tasks' descriptors name them (engine/methods)


def _factories() -> dict[str, Callable[[], Screen]]:
    # imported here: the step modules import the screens' base, which must not import the flow back
    from sage_ft_tui.tui.screens.wizard.data import DataScreen
    from sage_ft_tui.tui.screens.wizard.hardware import HardwareScreen
    from sage_ft_tui.tui.screens.wizard.method import MethodScreen
    from sage_ft_tui.tui.screens.wizard.model import ModelScreen
    from sage_ft_tui.tui.screens.wizard.review import ReviewScreen
    from sage_ft_tui.tui.screens.wizard.task import TaskScreen

    return {
        "Task": TaskScreen,
        "Model": ModelScreen,
        "Data": DataScreen,
        "Method": MethodScreen,
        "Hardware": HardwareScreen,
        "Review": ReviewScreen,
    }


class WizardFlow:
    """Which step follows which, and which are skipped (a Quickstart skips Task and Model);
    `task` (the App's answer so far) leaves out the steps other tasks do not have."""

    def __init__(self, steps: tuple[str, ...] = STEPS, task: Callable[[], Optional[str]] = lambda: None):
        self.all_steps = steps
        self.quick = False
        self._task = task

    @property
    def steps(self) -> tuple[str, ...]:
        task = self._task()
        return tuple(s for s in self.all_steps if s not in ONLY_FOR or task in ONLY_FOR[s])

    @property
    def skipped(self) -> tuple[str, ...]:
        return QUICK_SKIPS if self.quick else ()

    def first(self) -> str:
        return next(s for s in self.steps if s not in self.skipped)

    def after(self, step: str) -> Optional[str]:
        """The step after `step`, or None when `step` is the last one."""
        i = self.steps.index(step)
        return self.steps[i + 1] if i + 1 < len(self.steps) else None

    def screen(self, step: str) -> Screen:
        return _factories()[step]()
