"""A widget that paints a chart function at its own size (charts re-fit on resize)."""

from __future__ import annotations

from typing import Callable, Optional

from rich.text import Text
from textual.widget import Widget

Painter = Callable[[int, int], Text]


class Plot(Widget):
    DEFAULT_CSS = "Plot { height: 8; }"

    def __init__(self, painter: Optional[Painter] = None, **kw):
        super().__init__(**kw)
        self._painter = painter

    def paint(self, painter: Optional[Painter]) -> None:
        self._painter = painter
        self.refresh()

    def render(self) -> Text:
        if self._painter is None or self.size.width <= 0:
            return Text("")
        return self._painter(self.size.width, self.size.height)
