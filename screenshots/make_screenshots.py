"""Regenerate screenshots/*.svg from the same fixed data the snapshot tests use.

python screenshots/make_screenshots.py            # every screen at 100x32
python screenshots/make_screenshots.py --png      # also PNGs (needs cairosvg)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.tui import factory  # noqa: E402

OUT = Path(__file__).resolve().parent
SIZE = (100, 32)


def main() -> None:
    from textual._doc import take_svg_screenshot

    png = "--png" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "world"
        os.environ.update(factory.prepare(root))
        os.environ.pop("NO_COLOR", None)
        for name in factory.SCREENS:
            svg = take_svg_screenshot(app=factory.make_app(name, root), terminal_size=SIZE)
            path = OUT / f"{name}.svg"
            path.write_text(svg, encoding="utf-8")
            if png:
                import cairosvg

                cairosvg.svg2png(url=str(path), write_to=str(path.with_suffix(".png")))
            print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
