"""The Data step with the preference task: a pair's chosen and rejected answers side by
side under the shared prompt (real inspection of a real file, through the real app)."""

from __future__ import annotations

import shutil
from pathlib import Path

from sage_ft_tui.engine.methods.registry import all_tasks
from sage_ft_tui.tui.app import SageApp

from .conftest import wait_for

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "preference"


async def test_data_step_shows_a_pair_side_by_side(world):
    shutil.copy(FIX / "dpo_sharegpt.json", world / "project" / "pairs.json")
    app = SageApp(cwd=str(world / "project"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")  # Home → Task
        app.screen.query_one("#task-list").highlighted = list(all_tasks()).index("preference")
        await pilot.press("ctrl+n")  # preference → Model
        await wait_for(pilot, lambda: app.screen.query_one("#model-table").row_count > 0)
        await pilot.press("ctrl+n")  # tiny-demo → Data
        await pilot.press("ctrl+l", *"pairs.json", "enter")
        await wait_for(pilot, lambda: app.state.inspection is not None and app.state.inspection.ok)
        assert app.state.task == "preference" and app.state.inspection.format == "pairs"
        preview = app.screen.query_one("#data-preview")
        text = _plain(preview, 110)
        row = next(ln for ln in text.splitlines() if "Nairobi" in ln)
        assert "Mombasa" in row  # chosen and rejected in two columns of the same line
        assert "✓ chosen" in text and "✗ rejected" in text
        assert app.screen.check_action("next", ()) is True


def _plain(widget, width: int) -> str:
    from rich.console import Console

    console = Console(width=width, color_system=None, record=True)
    console.print(widget.content)  # what the screen put in the Static (a Rich renderable)
    return console.export_text()


async def test_pairs_under_the_instruction_task_name_the_task_step_not_a_flag(world):
    """Preference rows chosen on an instruction run: the Data step's way forward names the
    Task step and its key, never the CLI's `--task preference`."""
    from sage_ft_tui.tui.screens.wizard.data import DataScreen

    shutil.copy(FIX / "dpo_sharegpt.json", world / "project" / "pairs.json")
    app = SageApp(cwd=str(world / "project"), initial=lambda app: [DataScreen()])
    app.state.task, app.state.model = "instruction", "tiny-demo"
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+l", *"pairs.json", "enter")
        await wait_for(pilot, lambda: app.state.inspection is not None)
        err = app.screen.query_one("#error").render().plain
        assert "preference rows" in err and "Preference task on the Task step" in err, err
        assert "--task" not in err and "sage-ft-tui" not in err, err
