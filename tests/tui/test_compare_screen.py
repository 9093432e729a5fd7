"""Compare: runs picked from a list (space), columns labelled by what differs between the
runs' configs, never a cut name; F5 reloads (r means something else on Home and Runs)."""

from __future__ import annotations

from sage_ft_tui.tui.app import SageApp

from . import factory


async def test_compare_picks_runs_and_labels_columns_by_what_differs(world):
    from sage_ft_tui.tui.screens.compare import CompareScreen

    app = SageApp(live=False, cwd=str(world / "project"), initial=lambda app: [CompareScreen(None)])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert "Pick two runs in the list" in screen.query_one("#cmp-need").render().plain
        assert "sage-ft-tui" not in screen.query_one("#cmp-need").render().plain  # no shell command
        pick = screen.query_one("#cmp-pick")
        names = [str(pick.get_option_at_index(i).value).rsplit("/", 1)[-1] for i in range(pick.option_count)]
        done, failed = names.index(factory.DONE), names.index(factory.FAILED)
        pick.highlighted = done
        await pilot.press("space")
        assert "one more run" in screen.query_one("#cmp-need").render().plain
        pick.highlighted = failed
        await pilot.press("space")
        assert screen.result is not None and [r["name"] for r in screen.result["runs"]] == [
            factory.DONE,
            factory.FAILED,
        ]
        headers = [str(c.header) for c in screen.query_one("#cmp-table").content.columns[1:]]
        # the runs differ in task and model (and more): the headers say so, in full, not "qa-tiny-demo-…"
        assert headers[0].startswith("● qa · tiny-demo") and headers[1].startswith("◆ chat · Qwen2.5-7B-Instruct")
        assert not any(factory.DONE[:12] in h for h in headers)
        keys = {b.key for b in screen.BINDINGS}
        assert "r" not in keys and "f5" in keys
        await pilot.press("space")  # the second run unpicked: one left, asked for another
        assert screen.result is None and "one more run" in screen.query_one("#cmp-need").render().plain


def test_labels_of_runs_with_the_same_config_use_their_date():
    from sage_ft_tui.engine.eval.compare import run_labels

    same = {"runs": [{"name": "qa-tiny-demo-20251231-170200"}, {"name": "qa-tiny-demo-20260101-090000"}]}
    assert run_labels({**same, "config_differences": {}}) == ["#1 2025-12-31 17:02", "#2 2026-01-01 09:00"]
    diffs = {"lora.r": [8, 16], "training.learning_rate": [0.0002, 0.0001], "task": ["qa", "qa2"], "seed": [1, 2]}
    assert run_labels({**same, "config_differences": diffs}) == [
        "qa · r=8 · seed=1 · +1 more",
        "qa2 · r=16 · seed=2 · +1 more",
    ]
