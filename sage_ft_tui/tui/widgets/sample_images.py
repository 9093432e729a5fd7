"""The Data step's preview when rows carry images: each sample's pictures under its header
line and above its text (side by side when a row has several), drawn by `ImageView`.

The inspection gives, per previewed sample, the row's images as `ImageRef(path, width,
height)` (engine/data/images.py), in the order of the row's `<image>` placeholders. Rows
without images keep the plain one-block preview (the Data step shows this only when some
previewed row has an image)."""

from __future__ import annotations

from typing import Callable, Sequence

from rich.text import Text
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from sage_ft_tui.tui.widgets.image import ImageView

MAX_ROWS = 8  # a preview shows what the model gets, not the picture at full size
SIDE_BY_SIDE = 3  # at most this many pictures on one line; more go to the next line


def _trimmed(text: Text) -> Text:
    """Without its closing newline (one Static a part: the newline would be an empty line)."""
    out = text.copy()
    out.rstrip()
    return out


class SampleImages(Vertical):
    """Samples with their images; `show()` returns whether it shows anything."""

    DEFAULT_CSS = """
    SampleImages { height: auto; }
    SampleImages .sample-pictures { height: auto; }
    SampleImages .sample-pictures ImageView { margin: 0 1 0 0; }
    SampleImages Static { height: auto; }
    SampleImages .sample-text { margin-bottom: 1; }
    """

    def show(self, samples: Sequence, images: Sequence[Sequence], sample_text: Callable[[int, object], Text]) -> bool:
        """`samples`: the inspection's previewed samples; `images`: per sample its ImageRefs
        (possibly shorter, or empty); `sample_text(i, sample)`: the sample as the plain preview
        shows it, its first line being its header."""
        self.remove_children()
        self.display = any(images)
        if not self.display:
            return False
        widgets = []
        for i, sample in enumerate(samples):
            text = sample_text(i, sample)
            refs = list(images[i]) if i < len(images) else []
            if not refs:
                widgets.append(Static(_trimmed(text), classes="sample-text"))
                continue
            parts = text.divide([text.plain.find("\n") + 1 or len(text.plain)])
            widgets.append(Static(_trimmed(parts[0])))
            for start in range(0, len(refs), SIDE_BY_SIDE):
                line = refs[start : start + SIDE_BY_SIDE]
                widgets.append(
                    Horizontal(
                        *(ImageView(ref.path, max_rows=MAX_ROWS) for ref in line),
                        classes="sample-pictures",
                    )
                )
            if len(parts) > 1:
                widgets.append(Static(_trimmed(parts[1]), classes="sample-text"))
        self.mount_all(widgets)
        return True


__all__ = ["SampleImages"]
