"""Navigation, Runs actions, Review editing, size notice and palette: Pilot against the real app."""

from __future__ import annotations

from sage_ft_tui.tui.app import SageApp
from sage_ft_tui.tui.run_model import RunModel

from . import factory
from .conftest import wait_for


async def test_quickstart_offline_picks_an_available_model(world):
    app = SageApp(cwd=str(world / "project"))
    async with app.run_test(size=(80, 24)) as pilot:
        app.start_wizard(quick_task="instruction")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "DataScreen")
        # the fixture cache holds the default Qwen coder 1.5B: Quickstart uses it, never an uncached one
        assert app.state.model == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
        assert app.flow.skipped == ("Task", "Model")
        app.wizard_goto("Model")  # change the model from the Data step
        await wait_for(
            pilot, lambda: app.screen.query("#model-table") and app.screen.query_one("#model-table").row_count
        )
        assert type(app.screen).__name__ == "ModelScreen" and app.flow.skipped == ()


async def test_review_edits_every_key_validated_as_you_type(world):
    app = factory.make_app("review", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert screen.focused.id == "review-name"
        assert screen.query_one("#cfg-lora-dropout").value == "0.05"
        w = screen.query_one("#cfg-lora-dropout")
        w.value = "2"  # dropout must be < 1
        await pilot.pause()
        assert w.has_class("-invalid") and screen.check_action("next", ()) is None
        assert screen.query_one("#error").render().plain == "✗ LoRA › dropout must be less than 1, not '2'"
        lr = screen.query_one("#cfg-training-learning-rate")
        lr.value = "abc"
        await pilot.pause()
        # one short line per marked field, in words, no pydantic text and no second "fix it" line
        assert screen.query_one("#error").render().plain == (
            "✗ LoRA › dropout must be less than 1, not '2'\n  Training › learning_rate must be a number, not 'abc'"
        )
        lr.value = "0.0002"
        w.value = "0.1"
        await pilot.pause()
        assert not w.has_class("-invalid") and app.state.overrides["lora.dropout"] == 0.1
        assert screen.check_action("next", ()) is True
        assert "total steps" in _plain(screen.query_one("#review-figures"))
        assert app.state.name == "my-first-run"

        # sections by the config's own (collapsible; Training and LoRA open, the rest closed), and
        # ctrl+f finds a setting: max_steps in a handful of keys, not ~30 tabs
        titles = [(c.title, c.collapsed) for c in screen.query("Collapsible")]
        assert titles[:2] == [("Training", False), ("LoRA", False)] and ("Data", True) in titles
        assert "Preference" not in dict(titles)  # an instruction run does not read that section
        await pilot.press("ctrl+f", *"max st", "enter")
        assert screen.focused.id == "cfg-training-max-steps" and screen.focused.value == "60"
        assert not screen.query_one("#row-cfg-lora-r").display  # filtered out while the find box holds text
        await pilot.press("ctrl+f", "ctrl+u", *"quanti", "enter")  # in a closed section: opened to show it
        assert screen.focused.id == "cfg-model-quantization"
        assert not screen.query_one("#sec-model").collapsed and screen.focused.region.height == 1
        await pilot.press("escape")  # clears the filter, stays on Review
        assert app.screen is screen and screen.query_one("#row-cfg-lora-r").display
        assert screen.query_one("#review-find").value == ""


async def test_runs_screen_acts_on_the_selected_run(world):
    app = factory.make_app("runs", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        table = screen.query_one("#runs-table")
        keys = [k.value for k in table.rows]
        done = keys.index(str(world / "runs" / factory.DONE))
        table.move_cursor(row=done)
        await pilot.pause()
        assert screen.check_action("open", ("merge",)) is True and screen.check_action("resume", ()) is False
        await pilot.press("delete")
        assert type(app.screen).__name__ == "Confirm"
        assert factory.DONE in str(app.screen.query_one("#confirm-q").render())
        assert "config, events and logs" in str(app.screen.query_one("#confirm-detail").render())
        await pilot.press("y")
        await wait_for(pilot, lambda: not (world / "runs" / factory.DONE).exists())
        await wait_for(pilot, lambda: table.row_count == 3)
        failed = [k.value for k in table.rows].index(str(world / "runs" / factory.FAILED))
        table.move_cursor(row=failed)
        await pilot.pause()
        assert screen.check_action("resume", ()) is True and screen.check_action("open", ("chat",)) is False


async def test_too_small_terminal_says_so(world):
    app = SageApp(cwd=str(world / "project"))
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        assert type(app.screen).__name__ == "TooSmall"
        assert "needs 80×24" in str(app.screen.query_one("#too-small").render())


async def test_palette_lists_quickstart_deploy_and_per_run_commands(world):
    from sage_ft_tui.tui.palette import RunCommands

    app = SageApp(cwd=str(world / "project"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        provider = RunCommands(app.screen)
        await provider.startup()
        titles = [t for t, _h, _r in provider.commands()]
        assert "Quickstart instruction" in titles and {"Merge", "Serve", "Chat"} <= set(titles)
        assert f"merge {factory.DONE}" in titles and f"attach {factory.RUNNING}" in titles


def test_monitor_model_is_exact_across_resumes():
    m = RunModel()
    m.feed(
        [
            {"t": 0, "kind": "status", "state": "preparing"},
            {"t": 10, "kind": "start", "total_steps": 6},
            {"t": 20, "kind": "log", "step": 5, "loss": 1.0, "tokens": 500, "eta_s": 10},
        ]
    )
    assert m.eta_at(25) == 5 and m.elapsed(30) == 30  # preparing counts; the ETA ticks down
    m.feed([{"t": 30, "kind": "status", "state": "cancelled", "step": 6}])
    assert m.step == 6 and m.elapsed(999) == 30  # the final step, not the last logged one
    m.feed(
        [
            {"t": 100, "kind": "status", "state": "preparing", "resume": True},
            {"t": 110, "kind": "log", "step": 8, "loss": 0.9, "tokens": 200, "rewards_margin": 0.5},
            {"t": 120, "kind": "status", "state": "completed", "step": 9},
        ]
    )
    assert m.tokens == 700 and m.elapsed(999) == 50 and m.step == 9
    assert list(m.extra["rewards_margin"]) == [0.5]


def _plain(widget, width: int = 80) -> str:
    from rich.console import Console

    console = Console(width=width, color_system=None, record=True)
    console.print(widget.content)  # what the screen put in the Static (a Rich renderable)
    return console.export_text()
