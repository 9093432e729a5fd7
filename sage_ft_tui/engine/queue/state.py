"""The queue's state: one JSON file in the runs home, changed only under a lock, written atomically.

Entries keep their order (the order queued runs start in) and their history (started,
done, failed, removed) until removed again. Every change goes through `_changing`, which
holds an flock on the lock file beside the state, reads, lets the caller change the list,
and writes the whole file atomically; readers (`entries`) never need the lock.

A state file that cannot be read is never overwritten: it is renamed aside
(`.sage-queue.json.corrupt-<time>`) and the command says so in one line.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import atomic_write_json, flock_wait
from sage_ft_tui.engine.paths import HOME_ENV, check_writable_dir, not_ours, runs_home
from sage_ft_tui.engine.runs.layout import ACTIVE_STATES, FINAL_STATES, RunLayout
from sage_ft_tui.engine.runs.state import derive_state

# Entry states: waiting its turn, launched by the scheduler, then how its run ended (or taken out).
QUEUED = "queued"
STARTED = "started"
DONE = "done"
FAILED = "failed"
REMOVED = "removed"
ENTRY_STATES = (QUEUED, STARTED, DONE, FAILED, REMOVED)
SCHEMA = 1


@dataclass(frozen=True)
class QueueFiles:
    """The queue's files in a runs home (hidden: `list` and the runs screen only see run folders)."""

    home: Path

    @property
    def state(self) -> Path:
        return self.home / ".sage-queue.json"

    @property
    def lock(self) -> Path:
        """flock'ed for the moment of a change to the state."""
        return self.home / ".sage-queue.lock"

    @property
    def scheduler_lock(self) -> Path:
        """flock'ed by the scheduler for its whole life; holds its pid."""
        return self.home / ".sage-queue.scheduler"

    @property
    def scheduler_log(self) -> Path:
        return self.home / ".sage-queue.log"


def queue_files(home: Optional[Path] = None) -> QueueFiles:
    return QueueFiles(Path(home) if home else runs_home())


@dataclass
class QueueEntry:
    run: Path
    state: str = QUEUED
    tag: Optional[str] = None
    gpus: Optional[list[int]] = None  # the GPUs it may use (None: its config's, else any)
    added: float = 0.0
    share_gpu: bool = False  # may start on a GPU another run of ours is training on
    started: Optional[float] = None
    ended: Optional[float] = None
    pid: Optional[int] = None
    result: str = ""  # the run's final state (completed, failed, cancelled) once it ended
    note: str = ""  # what it waits for, or why it failed to start

    @property
    def name(self) -> str:
        return self.run.name

    def to_dict(self) -> dict:
        return {
            "run": str(self.run),
            "name": self.name,
            "state": self.state,
            "tag": self.tag,
            "gpus": self.gpus,
            "added": self.added,
            "share_gpu": self.share_gpu,
            "started": self.started,
            "ended": self.ended,
            "pid": self.pid,
            "result": self.result,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: dict) -> QueueEntry:
        gpus = d.get("gpus")
        if gpus is not None and not (isinstance(gpus, list) and all(isinstance(g, int) for g in gpus)):
            raise ValueError(f"gpus {gpus!r} is not a list of GPU indices")
        if d.get("state") not in ENTRY_STATES:
            raise ValueError(f"state {d.get('state')!r} is not one of {', '.join(ENTRY_STATES)}")
        if not isinstance(d.get("run"), str) or not d["run"]:
            raise ValueError("an entry without a run path")
        return cls(
            run=Path(d["run"]),
            state=d["state"],
            tag=d.get("tag") if isinstance(d.get("tag"), str) else None,
            gpus=gpus,
            added=float(d.get("added") or 0.0),
            share_gpu=bool(d.get("share_gpu")),
            started=d.get("started") if isinstance(d.get("started"), (int, float)) else None,
            ended=d.get("ended") if isinstance(d.get("ended"), (int, float)) else None,
            pid=d.get("pid") if isinstance(d.get("pid"), int) else None,
            result=str(d.get("result") or ""),
            note=str(d.get("note") or ""),
        )


# ---- reading and writing -------------------------------------------------------------


def _set_aside(path: Path, why: str) -> SageError:
    """Rename an unreadable state file aside (never lose it) and say so in one line."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.replace(path, aside)
    except OSError as e:
        return SageError(
            f"{path}: the queue file is unreadable ({why}) and could not be moved aside ({e.strerror})",
            hint="move it away yourself; the queue starts empty without it",
            kind="config",
        )
    return SageError(
        f"{path}: the queue file was unreadable ({why}); kept it as {aside.name} and started an empty queue",
        hint=f"look at {aside} and queue its runs again with `sage-ft-tui queue add RUN`",
        kind="config",
        code="queue_corrupt",
    )


def read_entries(files: QueueFiles) -> list[QueueEntry]:
    """The entries in the state file; an unreadable file is set aside and reported (SageError)."""
    try:
        raw = files.state.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise SageError(
            f"{files.state}: cannot read the queue file ({e.strerror})", hint="check its permissions"
        ) from None
    try:
        doc = json.loads(raw.decode("utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
            raise ValueError('not an object with an "entries" list')
        return [QueueEntry.from_dict(e if isinstance(e, dict) else {}) for e in doc["entries"]]
    except (ValueError, UnicodeDecodeError, RecursionError, TypeError) as e:
        raise _set_aside(files.state, str(e).splitlines()[0][:120] if str(e) else type(e).__name__) from None


def write_entries(files: QueueFiles, items: list[QueueEntry]) -> None:
    atomic_write_json(files.state, {"v": SCHEMA, "entries": [e.to_dict() for e in items]})


@contextmanager
def flocked(path: Path, *, wait: float = 30.0, what: str = "the queue") -> Iterator[int]:
    """An exclusive flock on `path` (created if missing), waited for up to `wait` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not flock_wait(fd, wait):
            raise SageError(
                f"{what} is busy: another command has held {path} for {wait:.0f}s",
                hint="try again in a moment",
            )
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def _changing(home: Optional[Path] = None) -> Iterator[list[QueueEntry]]:
    """The entries, to change in place; written back atomically when the block ends without error.
    A corrupt state file is set aside and the error raised (the caller's change is not applied)."""
    files = queue_files(home)
    if not files.home.is_dir():
        check_writable_dir(files.home, "the runs home", HOME_ENV)
    with flocked(files.lock):
        items = read_entries(files)
        yield items
        write_entries(files, items)


def entries(home: Optional[Path] = None) -> list[QueueEntry]:
    """Every entry in queue order (history too). A corrupt state file is set aside and reported."""
    return read_entries(queue_files(home))


def _find(items: list[QueueEntry], run: Path) -> Optional[QueueEntry]:
    run = Path(run).resolve()
    for e in items:
        if e.run.resolve() == run:
            return e
    return None


# ---- the changes ---------------------------------------------------------------------


def _check_queueable(run: Path) -> Path:
    """The run as an absolute path, if it may be queued: ours, created, not started or queued."""
    run = Path(run).expanduser()
    if not RunLayout(run).is_ours():
        raise not_ours(run, "queue it")
    state, _ = derive_state(run)
    if state in ACTIVE_STATES:
        raise SageError(
            f"run {run.name} is already {state}; refusing to queue it",
            hint=f"watch it with `sage-ft-tui attach {run.name}`",
        )
    if state in FINAL_STATES:
        how = f"continue it: `sage-ft-tui resume {run.name}`" if state != "completed" else "queue a new run"
        raise SageError(
            f"run {run.name} has already run ({state}); only a run that has not started can be queued",
            hint=f"{how}, or queue a new run made from its config: `sage-ft-tui start --config "
            f"{RunLayout(run).config} --queue`",
        )
    if state != "created":
        raise SageError(
            f"run {run.name}: its state is {state}, so it cannot be queued",
            hint=f"look at {RunLayout(run).status}, or queue a new run made from its config",
        )
    return run.resolve()


def _check_gpus(gpus: Optional[list[int]]) -> Optional[list[int]]:
    if gpus is None:
        return None
    if not gpus or any(isinstance(g, bool) or not isinstance(g, int) or g < 0 for g in gpus):
        raise SageError(f"--gpus {gpus!r}: give GPU indices such as 0 or 0,1", hint="see `sage-ft-tui doctor`")
    return sorted(set(gpus))


def enqueue(
    run: Path,
    *,
    home: Optional[Path] = None,
    gpus: Optional[list[int]] = None,
    tag: Optional[str] = None,
    share_gpu: bool = False,
) -> QueueEntry:
    """Queue a created run (e.g. `start_run(cfg, launch=False)`) at the end. Refuses a folder
    not ours, a run that is running or has run, and one already queued. Does not start the
    scheduler (`ensure_scheduler` does)."""
    path = _check_queueable(run)
    gpus = _check_gpus(gpus)
    with _changing(home) as items:
        old = _find(items, path)
        if old is not None and old.state in (QUEUED, STARTED):
            raise SageError(
                f"run {path.name} is already in the queue ({old.state})",
                hint="see `sage-ft-tui queue`; move it with `sage-ft-tui queue move RUN POSITION`",
            )
        if old is not None:
            items.remove(old)
        entry = QueueEntry(run=path, tag=tag, gpus=gpus, added=time.time(), share_gpu=share_gpu)
        items.append(entry)
    return entry


def _entry_of(items: list[QueueEntry], run: Path, home: Optional[Path]) -> QueueEntry:
    e = _find(items, run)
    if e is None:
        raise SageError(
            f"run {Path(run).name} is not in the queue of {queue_files(home).home}",
            hint="see `sage-ft-tui queue` for what is queued",
        )
    return e


def remove(run: Path, home: Optional[Path] = None) -> QueueEntry:
    """Take a queued run out (it stays, state `removed`, until removed again); a run that has
    ended or was removed leaves the list. A started run is refused: cancel the run itself."""
    with _changing(home) as items:
        e = _entry_of(items, run, home)
        if e.state == STARTED:
            raise SageError(
                f"run {e.name} has already started from the queue",
                hint=f"cancel the run itself (`sage-ft-tui cancel {e.name}`); the queue then moves on",
            )
        if e.state == QUEUED:
            e.state, e.note, e.ended = REMOVED, "", time.time()
        else:
            items.remove(e)
    return e


def move(run: Path, position: int, home: Optional[Path] = None) -> QueueEntry:
    """Put a queued run at `position` (1 = starts next) among the queued runs."""
    with _changing(home) as items:
        e = _entry_of(items, run, home)
        if e.state != QUEUED:
            raise SageError(f"run {e.name} is {e.state}, not waiting in the queue", hint="only queued runs move")
        waiting = [x for x in items if x.state == QUEUED]
        if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= len(waiting):
            raise SageError(
                f"position {position!r} is outside the queue (1 to {len(waiting)})",
                hint="1 starts next; see `sage-ft-tui queue`",
            )
        waiting.remove(e)
        waiting.insert(position - 1, e)
        slots = [i for i, x in enumerate(items) if x.state == QUEUED]  # the others keep their places
        for i, x in zip(slots, waiting):
            items[i] = x
    return e


__all__ = [
    "QueueEntry",
    "QueueFiles",
    "queue_files",
    "enqueue",
    "entries",
    "remove",
    "move",
    "flocked",
    "ENTRY_STATES",
    "QUEUED",
    "STARTED",
    "DONE",
    "FAILED",
    "REMOVED",
]
