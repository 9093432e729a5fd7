"""TUI fixtures: a fixed world (runs, data, HF cache, recorded hardware) for static apps."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import factory


@pytest.fixture
def world(tmp_path, monkeypatch, tiny_model) -> Path:
    """The deterministic world of tests/tui/factory.py, with its environment applied."""
    root = tmp_path / "world"
    for key, value in factory.prepare(root).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return root


async def wait_for(pilot, cond, timeout: float = 30.0, step: float = 0.1) -> None:
    """Let the app run until `cond()` holds (real workers, real files)."""
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {getattr(cond, '__name__', cond)}")
        await pilot.pause(step)


def footer_keys(screen) -> list[tuple[str, bool, bool]]:
    """The footer as shown: (description, dimmed, fully inside the screen's width) per key."""
    width = screen.app.size.width
    return [
        (k.description, k.has_class("-disabled"), 0 < k.region.width and k.region.right <= width)
        for k in screen.query("FooterKey")
    ]
