"""The Model step (cached list, search as you type, offline marking, a typed folder checked as
typed) and the Data step's fit-length memory cost: Pilot against the real app and engine,
on the fixed world (a cache with two models, HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import json

from rich.text import Text

from . import factory

UNCACHED = "Qwen/Qwen2.5-7B-Instruct"
CACHED = "Qwen/Qwen2.5-Coder-1.5B-Instruct"


def _text(screen, wid: str) -> str:
    r = screen.query_one(wid).render()
    return r.plain if isinstance(r, Text) else str(r)


def _keys(table) -> list[str]:
    return [k.value for k in table.rows]


async def test_cached_list_search_and_offline_marking(world):
    app = factory.make_app("model", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        s = app.screen
        table = s.query_one("#model-table")
        assert _keys(table)[:2] == ["tiny-demo", CACHED] and "meta-llama/Llama-3.2-1B-Instruct" in _keys(table)
        cached, uncached = table.get_row(CACHED), table.get_row(UNCACHED)
        assert cached[-1].plain == "✓ cached" and cached[2].plain == "2.9 GiB" and cached[3].plain != "—"
        assert uncached[-1].plain == "not cached — offline" and uncached[0].style == "dim"
        # the search filters the table as you type
        await pilot.press("ctrl+l", *"llama 1b")
        assert _keys(table) == ["meta-llama/Llama-3.2-1B-Instruct"]
        assert "1 of 5 models match" in _text(s, "#model-check")
        field = s.query_one("#model-path")
        field.value = "nothing-like-it"
        await pilot.pause()
        assert table.row_count == 0 and s.check_action("next", ()) is None
        # an uncached hub id typed offline: marked as typed, refused on enter with the way forward
        field.value = UNCACHED
        await pilot.pause()
        assert "not cached — offline" in _text(s, "#model-check")
        await pilot.press("enter")
        err = _text(s, "#error")
        assert s.query_one("#error").display and "HF_HUB_OFFLINE=1" in err and "pick a ✓ model, tiny-demo" in err
        assert s.query_one("#model-path").has_class("-invalid") and type(app.screen).__name__ == "ModelScreen"


async def test_choosing_an_uncached_row_offline_says_how_to_go_on(world):
    app = factory.make_app("model", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        s = app.screen
        table = s.query_one("#model-table")
        table.move_cursor(row=_keys(table).index(UNCACHED))
        await pilot.pause()
        assert s.check_action("next", ()) is None and "not cached — offline" in _text(s, "#model-detail")
        await pilot.press("enter")  # choose it: one line on this screen, not a later failure
        assert type(app.screen).__name__ == "ModelScreen"
        assert "tiny-demo, or type a model folder" in _text(s, "#error")
        await pilot.press("up", "up")  # to the cached coder model
        await pilot.pause()
        assert s.chosen.id == CACHED and not s.query_one("#error").display
        await pilot.press("enter")
        assert type(app.screen).__name__ == "DataScreen" and app.state.model == CACHED


async def test_typed_folder_is_checked_as_typed_then_used(world):
    mine = world / "project" / "models" / "mine"
    mine.mkdir(parents=True)
    (mine / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "vocab_size": 8}))
    app = factory.make_app("model", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        s = app.screen
        await pilot.press("ctrl+l", *"./models/mine")
        assert "no weights in this folder" in _text(s, "#model-check")  # config.json alone
        (mine / "model.safetensors").write_bytes(b"\0" * 16)
        await pilot.press("backspace", "e")
        assert "✓ model folder" in _text(s, "#model-check") and "LlamaForCausalLM" in _text(s, "#model-check")
        await pilot.press("enter")
        assert s.chosen is not None and s.chosen.id == str(mine.resolve()) and s.focused.id == "model-table"
        await pilot.press("ctrl+n")
        assert type(app.screen).__name__ == "DataScreen" and app.state.model == str(mine.resolve())


async def test_fit_length_shows_its_memory_cost(world):
    from sage_ft_tui.engine.fsutil import fmt_bytes
    from sage_ft_tui.engine.runs.plan import length_cost

    app = factory.make_app("data", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        s = app.screen
        assert "max length fits 99%" in _text(s, "#data-fit")  # 64 already fits the fixture's p99 (35)
        w = s.query_one("#data-maxlen")
        w.value = "512"
        await pilot.pause()
        cost = length_cost(app.state.build_config(), 64)
        assert cost.current_length == 512 and cost.other < cost.current
        line = _text(s, "#data-fit")
        assert f"ctrl+y → 64 fits 99% · ~{fmt_bytes(cost.current)} → ~{fmt_bytes(cost.other)}" in line
        await pilot.press("ctrl+y")
        await pilot.pause()
        assert w.value == "64" and app.state.max_length == 64
        assert f"~{fmt_bytes(cost.other)} to train" in _text(s, "#data-fit")


async def test_unreachable_hub_is_tried_only_when_a_download_is_chosen(world, monkeypatch):
    """No HF_HUB_OFFLINE, and the hub cannot be reached (a local port nothing listens on).
    Opening the Model step and moving over the list opens no connection; going on with an
    uncached id tries the hub once and says on this screen why not, marking those ids."""
    import socket

    from sage_ft_tui.engine.models import resolve
    from sage_ft_tui.tui.app import SageApp

    from .conftest import wait_for

    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(k, raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    probed: dict = {}
    monkeypatch.setattr(resolve, "_probed", probed)
    app = SageApp(cwd=str(world / "project"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n", "ctrl+n")
        await wait_for(pilot, lambda: app.screen.query("#model-table"))
        table = app.screen.query_one("#model-table")
        await wait_for(pilot, lambda: UNCACHED in _keys(table))
        await pilot.press("down", "down")
        await pilot.pause()
        assert not probed and not app.screen.offline  # nothing tried yet
        assert table.get_row(UNCACHED)[-1].plain == "download"
        table.move_cursor(row=_keys(table).index(UNCACHED))
        await pilot.press("enter")
        await wait_for(pilot, lambda: "cannot be reached" in _text(app.screen, "#error"))
        assert "offline (127.0.0.1 cannot be reached)" in _text(app.screen, "#error")
        assert list(probed) == ["127.0.0.1"] and app.screen.STEP == "Model"
        assert table.get_row(UNCACHED)[-1].plain == "not cached — offline"


async def test_chosen_model_names_its_family(world, zoo):
    """A Gemma-2 folder typed in: the step names its family, end of turn and that its template
    has no system role (folded) — and moving back to tiny-demo shows tiny-demo's."""
    app = factory.make_app("model", world)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        s = app.screen
        assert _text(s, "#model-family").startswith("Family: Llama (llama) · end of turn <|im_end|>")
        await pilot.press("ctrl+l")
        s.query_one("#model-path").value = str(zoo["gemma-2-it"])
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        line = _text(s, "#model-family")
        assert line.startswith("Family: Gemma 2 (gemma2) · end of turn <end_of_turn>"), line
        assert "system prompt folded into the first user turn" in line
        s.query_one("#model-path").value = ""  # the whole list again, the typed folder pinned
        await pilot.pause()
        table = s.query_one("#model-table")
        table.move_cursor(row=_keys(table).index("tiny-demo"))
        await pilot.pause()
        assert "Llama (llama)" in _text(s, "#model-family")


async def test_building_tiny_demo_keeps_the_screen_answering(world, tiny_model, tmp_path, monkeypatch):
    """tiny-demo not built yet (an empty cache): the Model step builds it in a worker, says so
    at once with its progress, keeps moving in the list meanwhile, and enables Next once built.
    The build itself is stood in for (the real one takes about a minute): it reports progress
    and waits until the test lets it finish, then lays the real tiny model in place."""
    import shutil
    import threading

    from sage_ft_tui.engine.models import tiny
    from sage_ft_tui.tui.app import SageApp

    from .conftest import wait_for

    monkeypatch.setenv("SAGE_FT_CACHE", str(tmp_path / "empty-cache"))
    assert not tiny.is_built()
    go = threading.Event()
    calls = []

    def build(target=None, progress=None):
        calls.append(1)
        progress(0.4, "pre-training")
        assert go.wait(30)
        dest = tiny.tiny_model_dir()
        shutil.copytree(tiny_model, dest)
        return dest

    monkeypatch.setattr(tiny, "ensure_tiny_model", build)
    app = SageApp(cwd=str(world / "project"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n", "ctrl+n")  # Home → Task → Model
        await wait_for(
            pilot, lambda: app.screen.query("#model-table") and app.screen.query_one("#model-table").row_count
        )
        s = app.screen
        table = s.query_one("#model-table")
        assert s.chosen.id == "tiny-demo"
        await wait_for(pilot, lambda: "40%" in _text(s, "#model-build"))
        assert "building tiny-demo" in _text(s, "#model-build") and s.query_one("#model-build").display
        assert s.check_action("next", ()) is None  # Next waits for the build
        await pilot.press("down")  # the list answers while it builds
        assert table.cursor_row == 1 and s.chosen.id != "tiny-demo"
        await pilot.press("up")
        assert table.cursor_row == 0 and s.chosen.id == "tiny-demo" and len(calls) == 1  # one build
        await pilot.press("enter")
        assert type(app.screen).__name__ == "ModelScreen"  # not on while it builds
        go.set()
        await wait_for(pilot, lambda: not s.building)
        assert not s.query_one("#model-build").display and s.check_action("next", ()) is True
        assert table.get_row("tiny-demo")[-1].plain == "✓ built in"
        await pilot.press("enter")
        assert type(app.screen).__name__ == "DataScreen" and app.state.model == "tiny-demo"
