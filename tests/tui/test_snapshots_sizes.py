"""Home, Monitor and Runs at a wide 200x60 terminal: the screens that must grow with the
terminal (under NO_COLOR at every size: test_snapshots_no_color.py).

Update after an intended change: pytest tests/tui/test_snapshots_sizes.py --snapshot-update
"""

from __future__ import annotations

import pytest

from . import factory

GROWN = ("home", "monitor", "runs")


async def _settle(pilot):
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


@pytest.mark.parametrize("screen", GROWN)
def test_wide(snap_compare, world, screen):
    assert snap_compare(factory.make_app(screen, world), terminal_size=(200, 60), run_before=_settle)
