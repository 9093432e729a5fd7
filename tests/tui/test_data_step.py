"""The Data step: a way up in the file tree (a ".." entry, Backspace, Left), the bundled
samples per task ("Use a sample"), and a numeric field emptied says what it wants."""

from __future__ import annotations

from sage_ft_tui.tui.app import SageApp

from .conftest import wait_for


def _data_app(world, task: str) -> SageApp:
    from sage_ft_tui.tui.screens.wizard.data import DataScreen

    app = SageApp(cwd=str(world / "project"), initial=lambda app: [DataScreen()])
    app.state.task, app.state.model = task, "tiny-demo"
    return app


def _labels(tree) -> list[str]:
    return [str(n.label) for n in tree.root.children]


async def test_tree_goes_up_by_dotdot_backspace_and_left(world):
    project = world / "project"
    (project / "more").mkdir()
    (project / "more" / "rows.jsonl").write_text('{"instruction": "Say hi.", "output": "Hi."}\n')
    app = _data_app(world, "instruction")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        tree = screen.query_one("#data-tree")
        await wait_for(pilot, lambda: tree.root.children)
        assert _labels(tree)[0] == "..  (up)"  # first: the folder above
        await pilot.press("ctrl+l", *"more", "enter")  # a folder typed opens in the tree
        await wait_for(pilot, lambda: screen.folder == (project / "more").resolve() and tree.root.children)
        assert "rows.jsonl" in _labels(tree)
        await pilot.press("left")  # at the top of the tree Left goes up a folder
        await wait_for(pilot, lambda: screen.folder == project.resolve())
        await wait_for(pilot, lambda: "more" in _labels(tree))
        await pilot.press("backspace")
        await wait_for(pilot, lambda: screen.folder == world.resolve())
        await wait_for(pilot, lambda: "project" in _labels(tree))
        tree.move_cursor(tree.root.children[0])
        await pilot.press("enter")  # ".." itself
        await wait_for(pilot, lambda: screen.folder == world.resolve().parent)


async def test_use_a_sample_per_task_and_an_emptied_share_says_what_it_wants(world):
    app = _data_app(world, "instruction")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        pick = screen.query_one("#data-sample")
        names = [x.name for x in screen.samples]
        assert names[0] == "instruction_alpaca.jsonl" and "text.txt" not in names and "qa.jsonl" in names
        pick.value = str(screen.samples[names.index("qa.jsonl")].path)
        await wait_for(pilot, lambda: app.state.inspection is not None, timeout=60)
        assert app.state.inspection.ok and app.state.data_paths[0].endswith("samples/qa.jsonl")
        assert screen.query_one("#data-path").value.endswith("qa.jsonl")
        share = screen.query_one("#data-badshare")
        share.value = ""
        await pilot.pause()
        line = screen.query_one("#data-knob-error").render().plain
        assert line.startswith("✗ Bad-row share is empty: type a number, e.g. 0.05") and share.has_class("-invalid")
        share.value = "2"
        await pilot.pause()
        assert "Bad-row share must be at most 1, not '2'" in screen.query_one("#data-knob-error").render().plain
        share.value = "0.1"
        await pilot.pause()
        assert not screen.query_one("#data-knob-error").display and app.state.overrides["data.max_bad_share"] == 0.1


def test_samples_fit_their_task():
    from sage_ft_tui.engine.data.samples import samples_for

    assert [s.name for s in samples_for("preference")] == ["preference_pairs.jsonl"]
    assert [s.name for s in samples_for("text")] == ["text.txt"] and samples_for("code") == []


async def test_bad_row_counts_are_the_engines_past_the_listed_ones(world):
    """More bad rows than the inspection lists (200): the Data step counts them all, as the
    engine does, and "… and N more" counts from that, not from the list."""
    import json

    from sage_ft_tui.engine.data.inspect import inspect_data
    from sage_ft_tui.tui.screens.wizard.data import DataScreen
    from sage_ft_tui.tui.screens.wizard.data_view import MAX_BAD_SHOWN

    path = world / "project" / "many_bad.jsonl"
    rows = [{"instruction": f"Say {i}."} for i in range(230)] + [{"instruction": "Hi.", "output": "Hello."}] * 20
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    engine = inspect_data([str(path)], task="instruction", model="tiny-demo", max_length=64, preview=4)
    assert engine.bad == 230 and len(engine.bad_rows) < 230
    app = SageApp(live=False, cwd=str(world / "project"), initial=lambda app: [DataScreen()])
    app.state.task, app.state.model = "instruction", "tiny-demo"
    async with app.run_test(size=(120, 40)) as pilot:
        app.screen.choose(str(path))
        await pilot.pause()
        assert "250 rows  ·  230 bad  ·  20 usable" in app.screen.query_one("#data-summary").render().plain
        assert f"… and {230 - MAX_BAD_SHOWN} more" in app.screen.query_one("#data-bad").render().plain
        # too many bad rows: the way on names the field on this screen, not a config key
        err = app.screen.query_one("#error").render().plain
        assert "Bad-row share" in err and "max_bad_share" not in err, err
