"""The Queue screen through Pilot: reorder and remove change the engine's queue file; Home and
Runs reach the screen by key."""

from __future__ import annotations

from sage_ft_tui.engine import queue as Q

from . import factory


def _order() -> list[tuple[str, str]]:
    return [(e.name, e.state) for e in Q.entries() if e.state in ("queued", "removed")]


async def test_reorder_and_remove_queued_runs(world):
    first, second = factory.QUEUED
    app = factory.make_app("queue", world)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert screen.current().name == first  # the cursor starts on the run that starts next
        await pilot.press("u")  # already first: nothing moves
        assert _order() == [(first, "queued"), (second, "queued")]
        await pilot.press("d")
        await pilot.pause()
        assert _order() == [(second, "queued"), (first, "queued")]
        assert screen.current().name == first  # the cursor follows the moved run
        await pilot.press("x")
        await pilot.pause()
        assert _order() == [(second, "queued"), (first, "removed")]
        assert not screen.check_action("move", (1,))  # a removed entry no longer moves
        await pilot.press("up", "up", "up")
        assert screen.current().state == "started"
        assert not screen.check_action("remove", ())  # a started run is cancelled, not removed


async def test_home_and_runs_open_the_queue(world):
    app = factory.make_app("home", world)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert app.screen.WHERE == "Queue"
        await pilot.press("escape", "r")
        await pilot.pause()
        assert app.screen.WHERE == "Runs"
        await pilot.press("q")
        await pilot.pause()
        assert app.screen.WHERE == "Queue"
