"""Images in the terminal (issue 25 item 5): the Data step's preview of image rows under
NO_COLOR is one plain line a picture (the half-block picture is test_snapshots' data_images),
and the image widget's size and fallbacks."""

from __future__ import annotations

from PIL import Image

from . import factory


def test_data_preview_of_image_rows_under_no_color_is_plain_lines(snap_compare, world, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    # tall enough that the whole preview shows without scrolling (a scrolled frame is not stable)
    assert snap_compare(factory.make_app("data_images", world), terminal_size=(100, 52))


def test_cells_keep_the_aspect_never_upscale_and_fit_the_panel():
    from sage_ft_tui.tui.widgets.image import cells

    assert cells(640, 480, 48, 10) == (27, 10)  # 64×24 cells natural, height-bound
    assert cells(640, 480, 20, 10) == (20, 8)  # a narrow panel: width-bound
    assert cells(40, 20, 48, 10) == (4, 1)  # small stays small
    assert cells(0, 10, 48, 10) == (0, 0)


async def test_the_widget_says_what_it_cannot_draw(tmp_path, monkeypatch):
    from textual.app import App

    from sage_ft_tui.tui.widgets.image import ImageView

    Image.new("RGB", (300, 100), "green").save(tmp_path / "ok.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "ok.png").read_bytes()[:40])
    monkeypatch.setenv("SAGE_FT_IMAGES", "halfcell")

    class One(App):
        def compose(self):
            yield ImageView(str(tmp_path / "ok.png"), max_cols=20, id="ok")
            yield ImageView(str(tmp_path / "cut.png"), id="cut")
            yield ImageView(str(tmp_path / "gone.png"), id="gone")

    async with One().run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        ok, cut, gone = (pilot.app.query_one(f"#{n}", ImageView) for n in ("ok", "cut", "gone"))
        assert ok.shown == "picture" and ok.children[0].size == (20, 3)  # 30×5 natural, capped at 20 wide
        for view, name in ((cut, "cut.png"), (gone, "gone.png")):
            assert view.shown == "missing" and str(view.children[0].render()) == f"[image missing: {name}]"
