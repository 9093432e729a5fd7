"""The Queue screen through Pilot: reorder and remove change the engine's queue file; Home and
Runs reach the screen by key."""

from __future__ import annotations

from sage_ft_tui.engine import queue as Q

from . import factory


def _order() -> list[tuple[str, str]]:
    return [(e.name, e.state) for e in Q.entries() if e.state in ("queued", "removed")]


async def test_reorder_and_remove_queued_runs_reached_from_home_and_runs(world):
    first, second = factory.QUEUED
    app = factory.make_app("home", world)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        screen = app.screen
        assert screen.WHERE == "Queue"
        assert screen.current().name == first  # the cursor starts on the run that starts next
        await pilot.press("shift+up")  # already first: nothing moves
        assert _order() == [(first, "queued"), (second, "queued")]
        await pilot.press("shift+down")
        await pilot.pause()
        assert _order() == [(second, "queued"), (first, "queued")]
        assert screen.current().name == first  # the cursor follows the moved run
        await pilot.press("delete")
        await pilot.pause()
        assert _order() == [(second, "queued"), (first, "removed")]
        assert not screen.check_action("move", (1,))  # a removed entry no longer moves
        await pilot.press("up", "up", "up")
        assert screen.current().state == "started"
        assert not screen.check_action("remove", ())  # a started run is cancelled, not removed
        await pilot.press("escape", "l")  # l: All runs (r is Resume)
        await pilot.pause()
        assert app.screen.WHERE == "Runs"
        await pilot.press("q")
        await pilot.pause()
        assert app.screen.WHERE == "Queue"


async def test_runs_queues_a_created_run_and_the_real_scheduler_takes_it(world):
    """`a` on a created run in Runs queues it and starts the scheduler (a real process, on the
    recorded 2×H100); the run is pinned to a GPU that machine lacks, so the scheduler fails it
    with one line instead of waiting forever, and exits with nothing left to do."""
    import time

    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.queue.state import queue_files
    from sage_ft_tui.engine.runs.create import create_run

    cfg = RunConfig.from_dict(
        {
            "name": "pinned-to-gpu-5",
            "task": "instruction",
            "model": {"name": "tiny-demo"},
            "data": {"paths": [str(world / "project" / "instructions.jsonl")]},
            "training": {"gpus": [5]},
        }
    )
    run = create_run(cfg, prepare=False, here=False)  # planned for another machine's GPUs
    queue_files().state.unlink()  # not the fixture's overnight queue (its running run is on another host)
    app = factory.make_app("runs", world)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert app.screen.current().info.name == run.name  # the newest run is first
        await pilot.press("Q")  # Queue it (q opens the Queue)
        await pilot.pause()
    deadline = time.time() + 60
    while time.time() < deadline and (Q.scheduler_pid() or Q.entries()[-1].state == "queued"):
        time.sleep(0.1)
    assert [e.name for e in Q.entries()] == [run.name]
    last = Q.entries()[-1]
    assert (last.name, last.state) == (run.name, "failed") and "GPU 5 is not on this machine" in last.note
    assert Q.scheduler_pid() is None
