"""Regenerate screenshots/*.svg from the same fixed data the snapshot tests use.

python screenshots/make_screenshots.py            # every screen at 80x24 and 120x40
python screenshots/make_screenshots.py --png DIR  # also PNGs into DIR, to look at (needs cairosvg)
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
SIZES = ((80, 24), (120, 40))


def main() -> None:
    from textual._doc import take_svg_screenshot

    png = Path(sys.argv[sys.argv.index("--png") + 1]) if "--png" in sys.argv else None
    only = [a for a in sys.argv[1:] if a in factory.SCREENS]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "world"
        os.environ.update(factory.prepare(root))
        os.environ.pop("NO_COLOR", None)
        for name in only or factory.SCREENS:
            for w, h in SIZES:
                svg = take_svg_screenshot(app=factory.make_app(name, root), terminal_size=(w, h))
                # the large one keeps the plain name the README links to
                path = OUT / (f"{name}.svg" if (w, h) == SIZES[-1] else f"{name}-{w}x{h}.svg")
                path.write_text(svg, encoding="utf-8")
                if png is not None:
                    import cairosvg

                    png.mkdir(parents=True, exist_ok=True)
                    cairosvg.svg2png(url=str(path), write_to=str(png / path.with_suffix(".png").name))
                print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
