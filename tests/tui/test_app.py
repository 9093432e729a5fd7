"""Pilot tests against the real app: real engine calls, real files, real workers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from textual.binding import Binding

from sage_ft_tui.tui.app import SageApp

from . import factory
from .conftest import wait_for

DONE = "qa-tiny-demo-20251231-170200"


def _stats(app) -> str:
    return str(app.screen.query_one("#mon-stats").render())


async def test_attach_finished_run_shows_final_loss(world):
    run = world / "runs" / DONE
    last = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if '"log"' in x][-1]
    app = SageApp(attach=str(run), cwd=str(world / "project"))
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.screen.model.state == "completed")
        await wait_for(pilot, lambda: f"{last['loss']:.4f}" in _stats(app))
        assert app.screen.model.step == last["step"]
        status = str(app.screen.query_one("#mon-status").render())
        assert "completed" in status and f"{last['step']}/120" in status
        assert app.screen.check_action("cancel_run", ()) is False  # nothing to cancel: hidden
        assert app.screen.check_action("after", ("merge",)) is True
        await pilot.press("t")  # a finished run leads on to chat
        assert type(app.screen).__name__ == "ChatScreen" and app.screen.run_dir == run
        await pilot.press("escape")
        await pilot.press("escape")  # back to Home
        assert type(app.screen).__name__ == "HomeScreen"


async def test_invalid_data_shows_errors_and_keeps_next_disabled(world):
    app = SageApp(cwd=str(world / "project"))
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("n")  # Home → Task
        await pilot.press("ctrl+n")  # instruction → Model
        await wait_for(pilot, lambda: app.screen.query_one("#model-table").row_count > 0)
        await pilot.press("ctrl+n")  # tiny-demo → Data
        assert type(app.screen).__name__ == "DataScreen"
        await pilot.press("ctrl+l", *"broken.jsonl", "enter")
        await wait_for(pilot, lambda: app.state.inspection is not None)
        bad = str(app.screen.query_one("#data-bad").render())
        assert "broken.jsonl:4" in bad and "not valid JSON" in bad
        assert "broken.jsonl:9" in bad and "missing field 'output'" in bad
        assert app.screen.query_one("#error").display
        assert app.screen.check_action("next", ()) is None
        await pilot.press("ctrl+n")
        assert type(app.screen).__name__ == "DataScreen"
        # a good file makes it valid
        await pilot.press("ctrl+l", *(["backspace"] * 20), *"instructions.jsonl", "enter")
        await wait_for(pilot, lambda: app.state.inspection is not None and app.state.inspection.ok)
        assert app.screen.check_action("next", ()) is True
        assert "answer (trained)" in str(app.screen.query_one("#data-legend").render())


async def test_missing_model_path_is_refused_inline(world):
    app = SageApp(cwd=str(world / "project"))
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("n", "ctrl+n")
        await wait_for(pilot, lambda: app.screen.query_one("#model-table").row_count > 0)
        await pilot.press("ctrl+l", *"/no/such/model", "enter")
        await wait_for(pilot, lambda: app.screen.query_one("#error").display)
        assert "no such folder" in str(app.screen.query_one("#error").render())
        assert app.screen.check_action("next", ()) is None
        assert app.screen.query_one("#model-path").has_class("-invalid")
        await pilot.press("ctrl+n")
        assert type(app.screen).__name__ == "ModelScreen"
        await pilot.press("escape")
        assert type(app.screen).__name__ == "TaskScreen"


async def test_bindings_palette_and_quit(world):
    from textual.screen import Screen

    from sage_ft_tui.tui.screens import home, monitor, runs
    from sage_ft_tui.tui.screens.wizard import data, hardware, model, review, task

    for mod in (data, hardware, home, model, monitor, review, runs, task):
        for cls in vars(mod).values():
            if isinstance(cls, type) and issubclass(cls, Screen) and cls.__module__.startswith("sage_ft_tui"):
                for b in cls.__dict__.get("BINDINGS", []):
                    assert isinstance(b, Binding) and b.id and b.description, (cls, b)
    app = SageApp(cwd=str(world / "project"))
    async with app.run_test(size=(80, 24)) as pilot:
        names = [c.title for c in app.get_system_commands(app.screen)]
        assert "New fine-tune" in names and "Demo run" in names
        await pilot.press("n")
        names = [c.title for c in app.get_system_commands(app.screen)]
        assert "Next" in names and "New fine-tune" not in names
        await pilot.press("r")  # not a Task binding: nothing happens
        await pilot.press("escape")
        assert type(app.screen).__name__ == "HomeScreen"
        await pilot.press("l")
        assert type(app.screen).__name__ == "RunsScreen"
        await wait_for(pilot, lambda: app.screen.query_one("#runs-table").row_count == 4)
        await pilot.press("ctrl+q")
    assert app.return_code == 0


async def test_no_color_is_honoured(world, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = factory.make_app("monitor", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.no_color
        assert any(type(f).__name__ in ("Monochrome", "NoColor") for f in app._filters)


def test_tui_process_never_imports_torch(world, tmp_path):
    """Drive the wizard (model catalogue, data inspection with the tiny model, hardware,
    review) and the monitor in a fresh interpreter; torch/transformers stay out."""
    script = textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from tests.tui import factory
        from pathlib import Path
        async def main():
            for name in ("home", "model", "data", "hardware", "review", "monitor", "runs"):
                app = factory.make_app(name, Path({str(world)!r}))
                async with app.run_test(size=(100, 32)) as pilot:
                    await pilot.pause()
        asyncio.run(main())
        from sage_ft_tui.tui.app import run_app  # the CLI's entry point
        bad = [m for m in ("torch", "transformers", "datasets", "peft", "trl") if m in sys.modules]
        print("HEAVY:", bad)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HEAVY: []" in out.stdout, out.stdout + out.stderr[-2000:]


@pytest.mark.train
async def test_full_wizard_by_keys_trains_then_cancels(world, sample_data, monkeypatch):
    """Home → Task → Model (tiny-demo) → Data (sample file) → Hardware (this CPU) →
    Review → start: the monitor shows real loss values; cancel ends the run `cancelled`."""
    monkeypatch.delenv("SAGE_FT_HW_RECORDED")  # the real machine: train where we are
    app = SageApp(cwd=str(sample_data["instruction"].parent))
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("n", "ctrl+n")  # instruction
        await wait_for(pilot, lambda: app.screen.query_one("#model-table").row_count > 0)
        await pilot.press("ctrl+n")  # tiny-demo, the first row
        await pilot.press("ctrl+l", *sample_data["instruction"].name, "enter")
        await wait_for(pilot, lambda: app.state.inspection is not None and app.screen.check_action("next", ()))
        await pilot.press("ctrl+n")
        assert type(app.screen).__name__ == "HardwareScreen"
        await wait_for(pilot, lambda: app.screen.snap is not None)
        app.screen.query_one("#f-max_steps").focus()
        await pilot.press("end", *(["backspace"] * 6), *"400")
        app.screen.query_one("#f-validation_split").focus()
        await pilot.press("end", *(["backspace"] * 6), *"0.1")
        await wait_for(pilot, lambda: app.screen.check_action("next", ()) is True)
        await pilot.press("ctrl+n")
        assert type(app.screen).__name__ == "ReviewScreen"
        assert app.screen.query_one("#cfg-training-max-steps").value == "400"
        await pilot.press("ctrl+n")  # start
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MonitorScreen", timeout=120)
        mon = app.screen
        await wait_for(pilot, lambda: len(mon.model.train) >= 2, timeout=240)
        losses = [y for _, y in mon.model.train.points]
        assert all(0 < v < 20 for v in losses)
        await wait_for(pilot, lambda: f"{mon.model.loss:.4f}" in _stats(app), timeout=5)
        await pilot.press("c")
        assert type(app.screen).__name__ == "Confirm"
        await pilot.press("y")
        await wait_for(pilot, lambda: mon._state()[0] == "cancelled", timeout=180)
        from sage_ft_tui.engine.runs.state import derive_state

        assert derive_state(mon.run)[0] == "cancelled"
