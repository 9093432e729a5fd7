"""The screens use the terminal they are given: Home's Start menu and the Monitor's Training
panel grow, run names are cut in the middle (their start and their date kept) and are whole
where there is room, every figure of a preference run is reachable at 80×24, and with
NO_COLOR an unfocused panel's border is still visible."""

from __future__ import annotations

import json
import shutil

from sage_ft_tui.engine.runs.state import list_runs

from . import factory

DPO = "preference-tiny-demo-20260101-100000"
REWARDS = ("reward chosen", "reward rejected", "reward margin", "reward acc")


def _text(app) -> str:
    from rich.console import Console

    width = app.size.width
    con = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    con.print(app.screen._compositor.render_update(full=True))
    return con.export_text()


def _dpo_run(world):
    """A preference run whose log events carry the reward figures the trainer writes."""
    src, dst = world / "runs" / factory.RUNNING, world / "runs" / DPO
    shutil.copytree(src, dst)
    lines = (dst / "events.jsonl").read_text().splitlines()
    out = []
    for line in lines:
        ev = json.loads(line)
        if ev.get("kind") == "log":
            s = ev["step"] / 400
            ev |= {"rewards_chosen": 0.2 + s, "rewards_rejected": -0.1 - s, "rewards_margin": 0.3 + 2 * s}
            ev |= {"rewards_accuracy": 0.5 + s / 2}
        out.append(json.dumps(ev))
    (dst / "events.jsonl").write_text("\n".join(out) + "\n")
    return dst


async def test_home_start_menu_and_run_names_use_the_width(world):
    names = sorted(r.name for r in list_runs(world / "runs"))
    widths = {}
    for size in ((80, 24), (200, 60)):
        app = factory.make_app("home", world)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await pilot.pause()
            widths[size] = app.screen.query_one("#home-menu-box").region.width
            text = _text(app)
        if size == (200, 60):  # every description whole, every name whole
            assert "…" not in text, text
            assert all(n in text for n in names), text
        else:  # cut in the middle: the start (task) and the end (date and time) both shown
            for n in names:
                assert any(ln for ln in text.splitlines() if n[:5] in ln and n[-9:] in ln and "…" in ln), (n, text)
    assert widths[(80, 24)] >= 44 and widths[(200, 60)] > 60, widths


async def test_runs_names_whole_at_200_columns_and_cut_in_the_middle_at_80(world):
    names = [r.name for r in list_runs(world / "runs")]
    for size in ((80, 24), (200, 60)):
        app = factory.make_app("runs", world)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await pilot.pause()
            text = _text(app)
        long = max(names, key=len)
        if size == (200, 60):
            assert all(n in text for n in names), text
        else:
            rows = [ln for ln in text.splitlines() if ln.startswith("│")]  # the table (the detail line has it whole)
            assert not [ln for ln in rows if long in ln], rows
            assert any(long[:10] in ln and long[-15:] in ln for ln in rows), rows


async def test_runs_table_fits_its_panel_where_there_is_room(world):
    """At 120 and 200 columns every column is on screen: the Run column takes only what the
    others leave (it was given a fixed estimate, and at 120×40 'Marks' was cut off-screen)."""
    from textual.widgets import DataTable

    for size in ((120, 40), (200, 60)):
        app = factory.make_app("runs", world)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await pilot.pause()
            table = app.screen.query_one(DataTable)
            assert table.virtual_size.width <= table.scrollable_content_region.width, (size, table.virtual_size)
            assert "Marks" in _text(app), size


async def test_monitor_training_panel_grows_and_every_reward_is_reachable_at_80x24(world):
    run = _dpo_run(world)
    from sage_ft_tui.tui.screens.monitor import MonitorScreen

    sizes = {}
    for size in ((200, 60), (80, 24)):
        app = factory.make_app("home", world)
        async with app.run_test(size=size) as pilot:
            app.push_screen(MonitorScreen(str(run)))
            await pilot.pause()
            await pilot.pause()
            side = app.screen.query_one("#mon-side")
            sizes[size] = side.region.width
            if size == (200, 60):
                assert all(r in _text(app) for r in REWARDS), _text(app)
                continue
            text = _text(app)
            assert "more" in text and "tab" in text, text  # the panel says it scrolls, and how
            seen = {r for r in REWARDS if r[:13] in text}  # 80 columns: the first 13 of a label
            for _ in range(6):  # tab to the panel, then down: each figure comes into view
                await pilot.press("tab")
                if app.focused is side:
                    break
            assert app.focused is side, app.focused
            for _ in range(4):  # a page at a time (↓ steps one line at a time)
                await pilot.press("pagedown")
                await pilot.pause()
                text = _text(app)
                seen |= {r for r in REWARDS if r[:13] in text}
                if side.scroll_y >= side.max_scroll_y:
                    break
            assert seen == set(REWARDS), seen
            assert "checkpoint" in text  # the last figure too
    assert sizes[(80, 24)] >= 30 and sizes[(200, 60)] >= 50, sizes


async def test_no_color_keeps_unfocused_panel_borders_visible(world, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = factory.make_app("home", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        box = app.screen.query_one("#home-runs-box")  # Recent runs: not focused (the menu is)
        assert app.focused is not None and box not in app.focused.ancestors_with_self
        y = box.region.y
        line = app.screen._compositor.render_strips()[y]
        for f in app._filters:
            line = line.apply_filter(f, app.screen.styles.background)
        cells = [s for s in line if s.text.strip("╭─╮") == "" and s.text and s.style and s.style.color]
        border = cells[-1].style  # the right-hand panel's top border
        fg, bg = border.color.get_truecolor(), border.bgcolor.get_truecolor()
        assert abs(sum(fg) - sum(bg)) / 3 > 50, (fg, bg)


async def test_task_titles_stay_on_one_line_cut_in_the_middle_at_80_and_whole_at_120(world):
    """At 80 columns a long task title wrapped onto a second line under its name; each title is
    one line, its start and end kept, and whole where there is room."""
    app = factory.make_app("task", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = _text(app).splitlines()
        row = next(line for line in lines if " grpo " in line)
        assert "Reasoning" in row and "(GRPO)" in row and "…" in row, row
        before = lines[lines.index(row) - 1]
        assert "preference" in before and "Preference tuning" in before, before  # nothing wrapped between
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        await pilot.pause()
        assert "Reasoning with verifiable rewards (GRPO)" in _text(app), _text(app)
