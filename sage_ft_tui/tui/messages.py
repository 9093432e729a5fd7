"""Typed messages that thread workers post to screens (never call_from_thread in loops)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from textual.message import Message

from sage_ft_tui.engine.errors import SageError


class JobDone(Message):
    """A one-shot engine call finished in a thread worker: result or error, and who wants it."""

    def __init__(
        self, name: str, result: Any, error: Optional[SageError], callback: Callable[[Any, Optional[SageError]], None]
    ):
        super().__init__()
        self.name = name
        self.result = result
        self.error = error
        self.callback = callback


class EventsArrived(Message):
    """New events read from a run's events.jsonl (a batch; the first one replays the file)."""

    def __init__(self, events: list[dict], *, replay: bool = False):
        super().__init__()
        self.events = events
        self.replay = replay


class LogTail(Message):
    def __init__(self, lines: list[str]):
        super().__init__()
        self.lines = lines


class RunState(Message):
    """The run's state as the run folder tells it (lock + status.json), e.g. a dead worker."""

    def __init__(self, state: str, detail: str = ""):
        super().__init__()
        self.state = state
        self.detail = detail


class HardwareRead(Message):
    """One hardware reading, as the fields of an `hw` event."""

    def __init__(self, reading: dict, snapshot: Any = None):
        super().__init__()
        self.reading = reading
        self.snapshot = snapshot


class StepDone(Message):
    """A wizard step committed its answer; the App's flow decides what comes next."""

    def __init__(self, step: str):
        super().__init__()
        self.step = step


class RunStarted(Message):
    """The Review step started a run: the App closes the wizard and opens its monitor."""

    def __init__(self, run: str):
        super().__init__()
        self.run = run


class BuildProgress(Message):
    """A build running in a thread worker reports how far it is (share 0..1, what it does)."""

    def __init__(self, name: str, share: float, what: str = ""):
        super().__init__()
        self.name = name
        self.share = share
        self.what = what
