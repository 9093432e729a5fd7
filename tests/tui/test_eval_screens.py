"""The Runs screen's compare action, the Compare screen (two runs' curves overlaid in one
chart + the table) and the Evaluate screen showing a report's base-vs-tuned texts."""

from __future__ import annotations

import json

from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.tui.app import SageApp

from .conftest import wait_for

A, B = "qa-tiny-demo-20251231-170200", "text-qwen2.5-coder-1.5b-instruct-20251230-080000"


async def test_runs_compare_overlays_two_curves(world):
    from sage_ft_tui.tui.screens.compare import CompareScreen, join_runs
    from sage_ft_tui.tui.screens.runs import RunsScreen

    app = SageApp(cwd=str(world / "project"))
    async with app.run_test(size=(130, 44)) as pilot:
        app.open("runs")

        def rows() -> int:
            tables = app.screen.query("DataTable") if isinstance(app.screen, RunsScreen) else []
            return tables[0].row_count if tables else 0

        await wait_for(pilot, lambda: rows() >= 2, timeout=60)
        await pilot.press("p")  # the run under the cursor, compared with the newest other run
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.result is not None)
        assert len(app.screen.runs) == 2 and len(set(app.screen.runs)) == 2
        await pilot.press("escape")
        app.open("compare", join_runs([str(world / "runs" / A), str(world / "runs" / B)]))
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.result is not None)
        await pilot.pause(0.2)
        runs = app.screen.result["runs"]
        assert [r["name"] for r in runs] == [A, B] and all(r["loss_curve"] for r in runs)
        chart = app.screen.query_one("#cmp-chart").render()
        styles = {str(span.style) for span in chart.spans}
        assert "#61afef" in styles and "#e5c07b" in styles  # both runs drawn in the one chart
        assert any(0x2800 < ord(ch) <= 0x28FF for ch in chart.plain)
        table = app.screen.query_one("#cmp-table").render()
        assert "final train loss" in str(table) or app.screen.result["config_differences"]


async def test_evaluate_screen_shows_the_report_side_by_side(world):
    from sage_ft_tui.tui.screens.deploy.evaluate import EvaluateScreen

    run = world / "runs" / A
    lay = RunLayout(run)
    lay.eval_dir.mkdir(exist_ok=True)
    lay.eval_report.write_text(
        json.dumps(
            {
                "run": A,
                "examples": 2,
                "prompts": 1,
                "loss": {"base": {"loss": 6.5, "perplexity": 665.1}, "tuned": {"loss": 1.2, "perplexity": 3.3}},
                "generation": {"greedy": {"base": {"rouge_l": 4.0}, "tuned": {"rouge_l": 90.0}}},
                "samples": [{"prompt": "What is X?", "reference": "X is Y.", "base": "A week.", "tuned": "X is Y."}],
            }
        )
    )
    app = SageApp(cwd=str(world / "project"))
    async with app.run_test(size=(130, 40)) as pilot:
        app.open("eval", str(run))
        await wait_for(pilot, lambda: isinstance(app.screen, EvaluateScreen))
        await pilot.pause(0.2)
        side = str(app.screen.query_one("#eval-samples").render())
        assert "What is X?" in side and "A week." in side and "tuned X is Y." in side
        assert "last report: 2 examples" in str(app.screen.query_one("#eval-stage").render())
        assert app.screen.check_action("evaluate", ()) is True


async def test_export_screen_builds_the_cli_job(world):
    from sage_ft_tui.tui.screens.deploy.export import ExportScreen, export_command

    run = str(world / "runs" / A)
    app = SageApp(cwd=str(world / "project"))
    async with app.run_test(size=(120, 36)) as pilot:
        app.open("export", run)
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen))
        assert app.screen.check_action("export", ()) is True and app.screen.run_dir.name == A
    cmd = export_command(run, "gguf:q8_0", True)
    assert cmd[3:] == ["export", run, "--json", "--format", "gguf", "--quant", "q8_0", "--force"]
    assert export_command(run, "hf:", False)[3:] == ["export", run, "--json", "--format", "hf"]
