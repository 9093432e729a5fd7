"""Every screen's footer at 80 columns shows the actions that work now, most useful ones
included, none dimmed and none cut (an action that does not apply is hidden)."""

from __future__ import annotations

from . import factory
from .conftest import footer_keys

# (route, fixture run, actions the footer must show): one screen of each kind, in the
# states the fixture world holds (a running, a failed and a completed, unmerged run)
CASES = [
    ("runs", None, {"Back"}),
    ("monitor", factory.RUNNING, {"Cancel", "Save now", "Detach"}),
    ("monitor", factory.FAILED, {"Resume", "Back"}),
    ("monitor", factory.DONE, {"Merge", "Serve", "Chat", "Back"}),
    ("merge", factory.DONE, {"Merge"}),
    ("serve", factory.DONE, {"Start server", "Merge first"}),
    ("chat", factory.DONE, {"Reset chat", "Start server"}),
    ("eval", factory.DONE, {"Evaluate"}),
    ("export", factory.DONE, {"Export"}),
    ("queue", None, {"Move up", "Move down", "Remove", "Start queue"}),
]


async def test_footers_at_80_columns_show_what_works_now(world):
    from sage_ft_tui.tui.routes import ROUTES

    app = factory.make_app("home", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        seen = {"home": footer_keys(app.screen)}
        for route, run, _ in CASES:
            app.push_screen(ROUTES[route][0](str(world / "runs" / run) if run else None))
            await pilot.pause()
            await pilot.pause()
            seen[f"{route} {run}"] = footer_keys(app.screen)
            app.pop_screen()
            await pilot.pause()
    assert {"New fine-tune", "All runs", "Attach"} <= {d for d, _, _ in seen["home"]}
    for (route, run, must), keys in zip(CASES, list(seen.values())[1:]):
        where = f"{route} {run}: {keys}"
        assert must <= {d for d, _, _ in keys}, where
        assert not [d for d, dim, _ in keys if dim], where  # nothing dimmed: hidden when it does not apply
        assert all(inside for _, _, inside in keys), where  # nothing past column 80
    assert "Cancel" not in {d for d, _, _ in seen[f"monitor {factory.DONE}"]}
    for run in (factory.DONE, factory.FAILED):  # a finished run: nothing to detach from
        assert "Detach" not in {d for d, _, _ in seen[f"monitor {run}"]}
    assert "Back" not in {d for d, _, _ in seen[f"monitor {factory.RUNNING}"]}  # Detach says it
    assert "Evaluate" not in {d for d, _, _ in seen[f"monitor {factory.DONE}"]}  # nothing held out
    assert "Stop server" not in {d for d, _, _ in seen[f"serve {factory.DONE}"]}


async def test_evaluate_is_offered_for_a_finished_run_with_held_out_rows(world):
    """The finished Monitor's footer and the Runs actions offer Evaluate once the run holds
    evaluation rows; e opens the Evaluate screen on that run; escape leaves the Monitor."""
    from sage_ft_tui.engine.runs.layout import RunLayout
    from sage_ft_tui.tui.routes import ROUTES

    run = world / "runs" / factory.DONE
    app = factory.make_app("home", world)
    async with app.run_test(size=(80, 24)) as pilot:  # nothing held out: said in whole sentences, no flags
        app.push_screen(ROUTES["eval"][0](str(run)))
        await pilot.pause()
        err = app.screen.query_one("#error")
        text = err.render().plain
        assert err.display and text.startswith("✗ This run has nothing held out to evaluate on.\n"), text
        assert text.rstrip().endswith("by default.") and "Hardware step" in text and "--" not in text, text
        box = app.screen.query_one("#eval-left").region
        assert err.region.height >= 4 and err.region.bottom < box.bottom, (err.region, box)  # all of it, at 80×24
    eval_rows = RunLayout(run).eval_data
    eval_rows.parent.mkdir(parents=True, exist_ok=True)
    eval_rows.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n')
    app = factory.make_app("home", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.push_screen(ROUTES["monitor"][0](str(run)))
        await pilot.pause()
        await pilot.pause()
        keys = footer_keys(app.screen)
        assert {"Merge", "Evaluate", "Back"} <= {d for d, _, _ in keys} and all(i for _, _, i in keys), keys
        await pilot.press("e")
        assert type(app.screen).__name__ == "EvaluateScreen" and app.screen.run_dir == run
        await pilot.press("escape", "escape")  # Evaluate → Monitor → Home
        assert type(app.screen).__name__ == "HomeScreen"
        app.push_screen(ROUTES["runs"][0](str(run)))
        await pilot.pause()
        await pilot.pause()
        keys = footer_keys(app.screen)
        assert "Evaluate" in {d for d, _, _ in keys} and all(i for _, _, i in keys), keys
        await pilot.press("e")
        assert type(app.screen).__name__ == "EvaluateScreen" and app.screen.run_dir == run


async def test_home_without_runs_offers_no_attach(sage_home):
    from sage_ft_tui.tui.app import SageApp

    app = SageApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.pause()
        shown = [d for d, _, _ in footer_keys(app.screen)]
        assert "New fine-tune" in shown and "Demo run" in shown and "Attach" not in shown, shown
