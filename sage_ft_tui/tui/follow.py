"""Following a run folder so that the monitor's header, footer and log never disagree.

The worker ends (and starts) each phase by writing status.json, then the `status` event,
then train.log's line ("completed at step 9/9"; engine/train/worker.py). Each poll reads
them the other way round — train.log, then events.jsonl, then status.json — and hands the
events over before the log lines, so a log line is never shown before the events written
ahead of it: the event stream, the source of truth, is never behind the log.

Two more rules keep a half-read folder from showing: log lines wait while a long
events.jsonl is still being replayed, and a final state that status.json reports before
its event is held for one more poll (the worker writes that event a moment later; only a
worker that died in between never does).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from sage_ft_tui.engine.fsutil import MiB
from sage_ft_tui.engine.runs.events import EventFollower
from sage_ft_tui.engine.runs.layout import FINAL_STATES, RunLayout

LOG_TAIL_BYTES = 16 << 10
LOG_KEEP = 500  # lines held while a replay catches up (the monitor's log keeps as many)
EVENTS_SLICE = 2 << 20  # bytes of events.jsonl a poll reads at most (a huge replay comes in slices)
STATE_EVERY_S = 1.0  # status.json and the lock are checked this often (and whenever the events end a phase)


@dataclass
class Polled:
    events: list[dict] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    state: Optional[tuple[str, str]] = None  # the folder's state, when it changed
    first: bool = False  # the first poll: it replays the stream from its start


class RunFollower:
    def __init__(
        self,
        run: Path,
        *,
        derive: Optional[Callable[[Path], tuple[str, str]]] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if derive is None:
            from sage_ft_tui.engine.runs.state import derive_state as derive
        self.run = Path(run)
        self.layout = RunLayout(self.run)
        self.events = EventFollower(self.layout.events, max_bytes=EVENTS_SLICE)
        self.derive = derive
        self.clock = clock
        self.state: tuple[str, str] = ("", "")  # the folder state last handed over
        self.events_final = False  # the stream's last status event is a final one
        self._log_off: Optional[int] = None
        self._lines: deque[str] = deque(maxlen=LOG_KEEP)
        self._held: Optional[tuple[str, str]] = None
        self._checked = float("-inf")
        self._first = True
        self._finished = False

    @property
    def skipped(self) -> list:
        return self.events.skipped

    def poll(self) -> Polled:
        lines, self._log_off = tail_lines(self.layout.train_log, LOG_TAIL_BYTES, self._log_off)
        self._lines.extend(lines)
        evs = self.events.poll()
        phase_ended = False
        for ev in evs:
            if ev.get("kind") == "status" and isinstance(ev.get("state"), str):
                self.events_final = ev["state"] in FINAL_STATES
                phase_ended = True
        out = Polled(evs, first=self._first)
        self._first = False
        if self.events.at_end and self._lines:
            out.lines = list(self._lines)
            self._lines.clear()
        out.state = self._check_state(force=phase_ended)
        if not evs and not self._finished and self.state[0] in FINAL_STATES:
            self.events.finish()  # the writer is gone: a torn last line is final
            self._finished = True
        return out

    def _check_state(self, force: bool) -> Optional[tuple[str, str]]:
        now = self.clock()
        if not (force or self._held is not None or now - self._checked >= STATE_EVERY_S):
            return None
        self._checked = now
        new = self.derive(self.run)
        if new == self.state:
            self._held = None
            return None
        if new[0] in FINAL_STATES and not self.events_final and (self._held != new or not self.events.at_end):
            self._held = new  # status.json is written just before the final event: one more poll first
            return None
        self._held = None
        self.state = new
        return new


def tail_lines(path: Path, max_bytes: int, offset: Optional[int] = None) -> tuple[list[str], Optional[int]]:
    """New complete lines of a growing text file since `offset` (None: its last max_bytes)."""
    try:
        size = path.stat().st_size
    except OSError:
        return [], offset
    initial = offset is None
    if offset is None:
        offset = max(0, size - max_bytes)
    if size < offset:  # truncated or replaced
        offset = 0
    if size == offset:
        return [], offset
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(min(size - offset, max(max_bytes, MiB)))
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    chunk = data[: end + 1]
    lines = chunk.decode("utf-8", "replace").replace("\r", "\n").splitlines()
    if initial and offset and lines:
        lines = lines[1:]  # the first line is probably cut
    return [ln for ln in lines if ln.strip()], offset + len(chunk)
