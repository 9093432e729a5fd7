"""The Method step: only preference and GRPO runs have it; it chooses the preference method
and its settings, or GRPO's rewards (a file reward checked by the engine's own probe)."""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console

from sage_ft_tui.engine.methods.registry import preference_methods
from sage_ft_tui.tui.app import SageApp

from .conftest import wait_for

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "preference"


def _app(world, task: str, data: str) -> SageApp:
    from sage_ft_tui.tui.screens.wizard.data import DataScreen

    shutil.copy(FIX / data, world / "project" / data)
    app = SageApp(cwd=str(world / "project"), initial=lambda app: [DataScreen()])
    app.state.task, app.state.model = task, "tiny-demo"
    return app


def _method_app(world, task: str, data: str) -> SageApp:
    """The Method step itself, after the engine's real inspection of `data` (no Data step to drive)."""
    from sage_ft_tui.tui.screens.wizard.data import inspect
    from sage_ft_tui.tui.screens.wizard.method import MethodScreen

    path = world / "project" / data
    shutil.copy(FIX / data, path)
    app = SageApp(cwd=str(world / "project"), initial=lambda app: [MethodScreen()])
    s = app.state
    s.task, s.model, s.data_paths = task, "tiny-demo", [str(path)]
    s.inspection = inspect([str(path)], task, "tiny-demo", 512)
    return app


async def _to_method(app, pilot, data: str) -> None:
    await pilot.press("ctrl+l", *data, "enter")
    await wait_for(pilot, lambda: app.state.inspection is not None and app.state.inspection.ok)
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "MethodScreen")


def test_only_preference_and_grpo_have_the_method_step():
    from sage_ft_tui.tui.flow import WizardFlow

    task = {"t": "instruction"}
    flow = WizardFlow(task=lambda: task["t"])
    assert "Method" not in flow.steps and flow.after("Data") == "Hardware"
    for t in ("preference", "grpo"):
        task["t"] = t
        assert flow.steps.index("Method") == flow.steps.index("Data") + 1 and flow.after("Method") == "Hardware"


async def test_preference_chooses_method_and_beta(world):
    app = _app(world, "preference", "dpo_sharegpt.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await _to_method(app, pilot, "dpo_sharegpt.json")
        screen = app.screen
        assert "Method" in screen.query_one("#steps").render().plain
        # auto, then dpo, orpo: two keys down, each with its one-line help
        await pilot.press("down", "down")
        assert screen._method() == "orpo"
        assert not screen.query_one("#row-loss_type").display  # a DPO setting, not ORPO's
        beta = screen.query_one("#m-beta")
        beta.value = ""
        await pilot.pause()
        err = screen.query_one("#error").render().plain
        assert err == "✗ Beta must be a number, e.g. 0.1 (now empty)" and screen.check_action("next", ()) is None
        beta.value = "0"
        await pilot.pause()
        assert screen.query_one("#error").render().plain == "✗ Beta must be greater than 0"
        beta.value = "0.25"
        await pilot.pause()
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "HardwareScreen")
        cfg = app.state.build_config()
        assert (cfg.preference.method, cfg.preference.beta) == ("orpo", 0.25)


async def test_labelled_rows_leave_only_kto(world):
    app = _method_app(world, "preference", "kto_messages.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        ol = app.screen.query_one("#method-list")
        disabled = [ol.get_option_at_index(i).id for i in range(ol.option_count) if ol.get_option_at_index(i).disabled]
        # every pairs method of the registry (dpo, orpo, simpo, ...): only kto and auto stay
        assert disabled == [n for n, m in preference_methods().items() if not m.labelled]
        assert {"dpo", "orpo", "simpo"} <= set(disabled) and "kto" not in disabled
        assert "labelled good/bad" in app.screen.query_one("#method-note").render().plain


async def test_grpo_rewards_builtin_or_a_checked_file(world):
    project = world / "project"
    (project / "my_rewards.py").write_text(
        "def score(completions, answer, **kw):\n    return [float(len(str(c)) < 40) for c in completions]\n"
    )
    app = _method_app(world, "grpo", "grpo_math.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert app.state.build_config().grpo.rewards == ["exact_match"]
        await pilot.press("down", "space")  # number_match on as well
        files = screen.query_one("#reward-files")
        files.value = "my_rewards.py:nope"
        await pilot.pause()
        assert "defines no function 'nope'" in screen.query_one("#error").render().plain
        assert screen.check_action("next", ()) is None
        files.value = "my_rewards.py:score"
        await pilot.pause()
        assert screen.check_action("next", ()) is True
        # ctrl+k is this step's one key of its own: in the footer and in the key panel (F1)
        assert ("ctrl+k", "Check rewards") in {(k.key, k.description) for k in screen.query("FooterKey")}
        await pilot.press("f1")
        await pilot.pause()
        console = Console(width=80)
        with console.capture() as shown:
            for w in app.screen.query_one("KeyPanel").query("BindingsTable"):
                console.print(w.render())
        assert "Check rewards" in shown.get()
        await pilot.press("escape")
        await pilot.press("ctrl+k")  # the engine's probe: the reward called on the first row, in a child
        await wait_for(pilot, lambda: screen.checked is not None, timeout=60)
        assert screen.checked, screen.query_one("#error").render().plain
        assert "every reward ran" in screen.query_one("#reward-check").render().plain
        assert app.state.build_config().grpo.rewards == [
            "exact_match",
            "number_match",
            f"{project}/my_rewards.py:score",
        ]
