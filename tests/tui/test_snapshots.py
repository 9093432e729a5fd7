"""Every screen at 80x24 and 120x40 from fixed data (recorded events and hardware).

Update after an intended change: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from . import factory

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("screen", factory.SCREENS)
def test_screen(snap_compare, world, screen, size):
    async def settle(pilot):
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        if screen.startswith("data"):  # the file tree loads its folder in a worker
            tree = pilot.app.screen.query_one("#data-tree")
            for _ in range(100):
                if tree.root.children:
                    break
                await pilot.pause(0.02)
        await pilot.pause()

    assert snap_compare(factory.make_app(screen, world), terminal_size=SIZES[size], run_before=settle)
