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
    ("monitor", factory.FAILED, {"Resume", "Detach"}),
    ("monitor", factory.DONE, {"Merge", "Serve", "Chat"}),
    ("merge", factory.DONE, {"Merge"}),
    ("serve", factory.DONE, {"Start server", "Merge first"}),
    ("chat", factory.DONE, {"Reset chat", "Server"}),
    ("eval", factory.DONE, {"Evaluate"}),
    ("export", factory.DONE, {"Export"}),
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
    assert "Stop server" not in {d for d, _, _ in seen[f"serve {factory.DONE}"]}


async def test_home_without_runs_offers_no_attach(sage_home):
    from sage_ft_tui.tui.app import SageApp

    app = SageApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.pause()
        shown = [d for d, _, _ in footer_keys(app.screen)]
        assert "New fine-tune" in shown and "Demo run" in shown and "Attach" not in shown, shown
