"""Data, Review and Compare at 200x60 (panels use the width); under NO_COLOR at every size
(the Data preview's trained answer underlined): test_snapshots_no_color.py.

Update after an intended change: pytest tests/tui/test_snapshots_wide.py --snapshot-update
"""

from __future__ import annotations

import pytest

from . import factory

CASES = {"200x60": (200, 60)}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("screen", ("data", "review", "compare"))
def test_screen(snap_compare, world, screen, case):
    size = CASES[case]

    async def settle(pilot):
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        if screen == "data":  # the file tree loads its folder in a worker
            tree = pilot.app.screen.query_one("#data-tree")
            for _ in range(100):
                if tree.root.children:
                    break
                await pilot.pause(0.02)
        await pilot.pause()

    assert snap_compare(factory.make_app(screen, world), terminal_size=size, run_before=settle)
