"""A picture in the terminal (the Data preview's row images, Chat's attachments).

textual-image draws it with what the terminal supports: sixel, kitty's graphics protocol
(TGP) or coloured half blocks. One plain line "[image 640×480 receipt.png]" instead under
NO_COLOR, when nothing would draw it (no terminal: output piped, headless), or when
`SAGE_FT_IMAGES=text`; "[image missing: receipt.png]" when the file cannot be read.
`SAGE_FT_IMAGES=halfcell` forces the half blocks (snapshots and screenshots: the same
frame on every machine).

textual-image asks the terminal what it can draw when it is first imported, which only
works before Textual owns the terminal: `prime()` runs before the app starts.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path
from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static

from sage_ft_tui.engine.data.images import ImageRef

RENDERER_ENV = "SAGE_FT_IMAGES"  # auto (default) | halfcell | text
RENDERERS = ("auto", "halfcell", "text")
MAX_COLS = 48  # a preview, not a viewer: at most this many cells wide …
MAX_ROWS = 10  # … and this many high (less when the panel is narrower)
THUMB_PX = 512  # decoded once, shrunk to this: drawing stays cheap at any source size


def renderer() -> str:
    """The renderer asked for: 'text' under NO_COLOR (any value, no-color.org), else SAGE_FT_IMAGES."""
    if os.environ.get("NO_COLOR"):
        return "text"
    asked = os.environ.get(RENDERER_ENV, "auto").strip().lower() or "auto"
    return asked if asked in RENDERERS else "auto"


@cache
def _picture_base(kind: str) -> Optional[type]:
    """textual-image's widget class for `kind`, or None when nothing would draw a picture."""
    if kind == "text":
        return None
    # a terminal that does not answer its questions is logged as a warning with a traceback,
    # which Python would print on the user's screen: not an error here (half blocks follow)
    logging.getLogger("textual_image").addHandler(logging.NullHandler())
    try:
        from textual_image import renderable
        from textual_image.widget import HalfcellImage
        from textual_image.widget import Image as AutoImage
    except Exception:  # not installed, or no terminal to ask (stdout closed): the text line
        return None
    if kind == "halfcell":
        return HalfcellImage
    if renderable.Image is renderable.UnicodeImage:  # not a terminal: grey shade blocks, not a picture
        return None
    return AutoImage


def prime() -> None:
    """Let textual-image ask the terminal what it can draw (sixel? kitty?) now, before the
    app starts: once Textual reads stdin the answer would be lost and a key swallowed."""
    _picture_base(renderer())


def caption(path: str, width: int, height: int) -> str:
    """ "[image 640×480 receipt.png]": the engine's own label of an image (ImageRef.label)."""
    return ImageRef(str(path), width, height).label()


def missing(path: str) -> str:
    return f"[image missing: {Path(path).name}]"


def cells(px_w: int, px_h: int, max_cols: int, max_rows: int, cell: tuple[int, int] = (10, 20)) -> tuple[int, int]:
    """The picture's size in cells: its natural size (one cell = cell px), never upscaled,
    shrunk with its aspect ratio kept to fit max_cols × max_rows."""
    if px_w <= 0 or px_h <= 0 or max_cols <= 0 or max_rows <= 0:
        return 0, 0
    cols, rows = px_w / cell[0], px_h / cell[1]
    scale = min(1.0, max_cols / cols, max_rows / rows)
    return max(1, round(cols * scale)), max(1, round(rows * scale))


def _load(path: str) -> tuple[Any, tuple[int, int]]:
    """The picture decoded and shrunk (PIL.Image) with its own size, or None when it cannot be read."""
    try:
        from PIL import Image as PILImage

        with PILImage.open(path) as im:
            im.load()
            size, pic = im.size, im.convert("RGB")
        pic.thumbnail((THUMB_PX, THUMB_PX))
        return pic, size
    except Exception:  # missing, unreadable, not an image, truncated: the caption says so
        return None, (0, 0)


@cache
def _sized(base: type) -> type:
    """`base` sized by `cells` against the width its container offers."""

    class Picture(base, Renderable=base._Renderable):  # type: ignore[misc,valid-type,name-defined]
        DEFAULT_CSS = "Picture { width: auto; height: auto; }"

        def __init__(self, image, max_cols: int, max_rows: int, **kw):
            super().__init__(image, **kw)
            self.max_cols, self.max_rows = max_cols, max_rows

        def _fit(self, avail: int) -> tuple[int, int]:
            from textual_image._terminal import get_cell_size

            cell = get_cell_size()
            return cells(
                self._image_width,
                self._image_height,
                min(self.max_cols, avail),
                self.max_rows,
                (cell.width, cell.height),
            )

        def get_content_width(self, container, viewport) -> int:
            return self._fit(container.width)[0]

        def get_content_height(self, container, viewport, width: int) -> int:
            return self._fit(width)[1]

    return Picture


class ImageView(Widget):
    """One image: the picture with its caption under it, or the caption line alone."""

    DEFAULT_CSS = """
    ImageView { height: auto; width: 1fr; }
    ImageView .image-caption { color: $text-muted; height: auto; }
    """

    def __init__(
        self,
        path: str,
        *,
        max_cols: int = MAX_COLS,
        max_rows: int = MAX_ROWS,
        **kw,
    ):
        super().__init__(**kw)
        self.path = str(path)
        self.max_cols, self.max_rows = max_cols, max_rows
        self.shown = "text"  # what it ended up as: text | picture | missing

    def compose(self) -> ComposeResult:
        pic, (w, h) = _load(self.path)
        if pic is None:
            self.shown = "missing"
            yield Static(Text(missing(self.path)), classes="image-caption")
            return
        base = _picture_base(renderer())
        if base is None:
            yield Static(Text(caption(self.path, w, h)), classes="image-caption")
            return
        self.shown = "picture"
        yield _sized(base)(pic, self.max_cols, self.max_rows)
        yield Static(Text(caption(self.path, w, h)), classes="image-caption")


__all__ = ["ImageView", "RENDERER_ENV", "caption", "cells", "missing", "prime", "renderer"]
