"""events.jsonl: the append-only event stream (schema v1, docs/EVENTS.md).

Writer: one JSON object a line, flushed per event, rank 0 only (the caller decides).
Reader: tolerates a torn last line, garbage lines and unknown kinds, and says what it
skipped. Follower: replays the file, then tails it by byte offset (cheap on huge files).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from sage_ft_tui.engine.fsutil import MiB
from sage_ft_tui.engine.runs.layout import FINAL_STATES

SCHEMA_VERSION = 1


class EventWriter:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # the hardware sampler thread writes too
        self._fh = open(self.path, "a", encoding="utf-8")
        # A torn line left by a killed writer must not glue onto our first event.
        if self._fh.tell() > 0:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    self._fh.write("\n")

    def emit(self, kind: str, **fields) -> dict:
        ev = {"v": SCHEMA_VERSION, "t": round(time.time(), 3), "kind": kind, **fields}
        line = json.dumps(ev, separators=(",", ":"), default=_jsonable) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()
        return ev

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError:
            pass


def _jsonable(o):
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return str(o)


@dataclass
class Skipped:
    line: int
    reason: str


@dataclass
class EventBatch:
    events: list[dict] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    torn_tail: bool = False


def parse_chunk(data: bytes, first_line: int = 1) -> tuple[EventBatch, int]:
    """Parse complete lines of `data`; return the batch and how many bytes were consumed.

    An incomplete last line is not consumed (a follower reads it again once complete)."""
    batch = EventBatch()
    end = data.rfind(b"\n")
    if end < 0:
        batch.torn_tail = bool(data.strip())
        return batch, 0
    body = data[: end + 1]
    if data[end + 1 :].strip():
        batch.torn_tail = True
    loads = json.loads
    try:  # fast path for replays: a clean chunk is one JSON array, one parse call
        evs = loads(b"[" + body[:-1].replace(b"\n", b",") + b"]")
        if all(type(e) is dict and "kind" in e for e in evs):
            batch.events = evs
            return batch, end + 1
    except ValueError:
        pass
    for i, raw in enumerate(body.split(b"\n")[:-1]):
        if not raw.strip():
            continue
        try:
            ev = loads(raw)
        except (ValueError, UnicodeDecodeError):
            batch.skipped.append(Skipped(first_line + i, "not valid JSON"))
            continue
        if not isinstance(ev, dict) or "kind" not in ev:
            batch.skipped.append(Skipped(first_line + i, "not an event object"))
            continue
        batch.events.append(ev)
    return batch, end + 1


def read_events(path: str | os.PathLike) -> EventBatch:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return EventBatch()
    batch, used = parse_chunk(data)
    if used < len(data) and data[used:].strip():
        # A torn final line at rest: the writer died mid-line.
        batch.skipped.append(Skipped(data.count(b"\n") + 1, "torn last line"))
    return batch


class EventFollower:
    """Incremental reader: each poll() returns the events appended since the last one."""

    def __init__(self, path: str | os.PathLike, max_bytes: int = 64 << 20):
        self.path = Path(path)
        self.offset = 0
        self.line = 1
        self.max_bytes = max_bytes  # a bound per poll, so a huge replay arrives in slices
        self.skipped: list[Skipped] = []
        self.at_end = True  # the last poll read up to the end of the file (a replay has caught up)

    def poll(self, max_bytes: int | None = None) -> list[dict]:
        max_bytes = max_bytes or self.max_bytes
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(max_bytes)
        except FileNotFoundError:
            self.at_end = True
            return []
        self.at_end = len(data) < max_bytes
        if not data:
            return []
        batch, used = parse_chunk(data, self.line)
        self.offset += used
        self.line += data[:used].count(b"\n")
        self.skipped.extend(batch.skipped)
        return batch.events

    def finish(self) -> None:
        """The writer is gone: an incomplete last line will never be completed; note it."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                rest = fh.read(MiB)
        except FileNotFoundError:
            return
        if rest.strip() and b"\n" not in rest:
            self.skipped.append(Skipped(self.line, "torn last line"))


def _is_final(ev: dict) -> bool:
    return ev.get("kind") == "status" and ev.get("state") in FINAL_STATES


def follow_events(
    path: str | os.PathLike,
    *,
    is_alive: Callable[[], bool] | None = None,
    poll_s: float = 0.25,
    stop: Callable[[], bool] | None = None,
    follower: EventFollower | None = None,
) -> Iterator[dict]:
    """Replay the stream, then tail it until a final status event arrives, `stop()` says
    so, or `is_alive()` turns false and nothing more is written. Pass `follower` to read
    what was skipped (`follower.skipped`) afterwards."""
    f = follower if follower is not None else EventFollower(path)
    while True:
        evs = f.poll()
        for ev in evs:
            yield ev
        # A final status ends the stream only when nothing follows it: a resumed run appends
        # after its earlier `cancelled`/`failed`, and the whole history is replayed.
        while evs and _is_final(evs[-1]) and not (is_alive is not None and is_alive()):
            evs = f.poll()
            if not evs:
                f.finish()
                return
            for ev in evs:
                yield ev
        if stop is not None and stop():
            return
        if not evs:
            if is_alive is not None and not is_alive():
                for ev in f.poll():  # anything written just before the end
                    yield ev
                f.finish()
                return
            time.sleep(poll_s)
