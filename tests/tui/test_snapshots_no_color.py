"""Home, Data, Review, Monitor, Runs and Compare under NO_COLOR at 80x24, 120x40 and 200x60:
readable in greys at every size, and grown with the terminal. One app per screen: it starts
at 80x24 and the terminal is resized twice (what a user does), a snapshot after each, so the
nine extra snapshots cost one start-up per screen, not one each.

Update after an intended change: pytest tests/tui/test_snapshots_no_color.py --snapshot-update
"""

from __future__ import annotations

import pytest
from pytest_textual_snapshot import SVGImageExtension

from . import factory

GROWN = ("home", "data", "review", "monitor", "runs", "compare")
SIZES = ((80, 24), (120, 40), (200, 60))


async def _settle(pilot) -> None:
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    if pilot.app.screen.query("#data-tree"):  # the file tree loads its folder in a worker
        tree = pilot.app.screen.query_one("#data-tree")
        for _ in range(100):
            if tree.root.children:
                break
            await pilot.pause(0.02)
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


@pytest.mark.parametrize("screen", GROWN)
async def test_no_color_at_every_size(snapshot, world, monkeypatch, screen):
    monkeypatch.setenv("NO_COLOR", "1")
    app = factory.make_app(screen, world)
    shots = {}
    async with app.run_test(size=SIZES[0]) as pilot:
        for width, height in SIZES:
            if (width, height) != SIZES[0]:
                await pilot.resize_terminal(width, height)
            await _settle(pilot)
            shots[f"{width}x{height}"] = app.export_screenshot(simplify=True)  # as snap_compare takes them
    svg = snapshot.use_extension(SVGImageExtension)
    for name, shot in shots.items():
        assert shot == svg(name=name), f"{screen} at {name} under NO_COLOR differs from its snapshot"
