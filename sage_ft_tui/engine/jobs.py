"""The CLI↔TUI job protocol: typed JSON-line records of a long CLI job (merge, serve; eval
and export use it too).

Heavy work runs in a CLI subprocess (`sage-ft-tui merge RUN --json`) so the TUI process
never imports torch. With `--json` the job writes one record a line on stdout, and the
TUI reads them back through this module, so both sides share one definition:

    {"v": 1, "job": "merge", "event": "progress", "stage": "load", ...stage fields}
    {"v": 1, "job": "merge", "event": "result", ...result fields}
    {"v": 1, "job": "serve", "event": "error", "error_kind": "serve", "message": "...",
     "hint": "...", "where": null, "log_tail": ["...", ...]}

A result's fields sit at the top level (merge: `report`; serve: the server description),
so `sage-ft-tui serve RUN --json | jq .url` keeps working for scripts. An error carries
its parts as fields: a reader never re-parses the human one-liner. Lines that are not
records (warnings a library prints, a torn line) are skipped. See docs/EVENTS.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Optional, Union

from sage_ft_tui.engine.errors import SageError

PROTOCOL = 1
_RESERVED = ("v", "job", "event")


@dataclass
class Progress:
    """A stage began (or advanced); `info` holds the stage's own fields."""

    job: str
    stage: str
    info: dict = field(default_factory=dict)


@dataclass
class Result:
    """The job succeeded; `data` holds its named result fields."""

    job: str
    data: dict = field(default_factory=dict)


@dataclass
class JobError:
    """The job failed, with the parts of a SageError as fields."""

    job: str
    error_kind: str
    message: str
    hint: str = ""
    where: Optional[str] = None
    log_tail: list[str] = field(default_factory=list)

    @classmethod
    def from_error(cls, job: str, e: SageError) -> JobError:
        return cls(job, e.kind, e.message, e.hint, e.where, list(getattr(e, "log_tail", None) or []))

    def to_error(self) -> SageError:
        err = SageError(self.message, hint=self.hint, kind=self.error_kind, where=self.where)
        err.log_tail = list(self.log_tail)  # type: ignore[attr-defined]  # shown under the one-liner
        return err


Record = Union[Progress, Result, JobError]


def to_dict(rec: Record) -> dict:
    head = {"v": PROTOCOL, "job": rec.job}
    if isinstance(rec, Progress):
        info = {k: v for k, v in _unreserved(rec.info).items() if k != "stage"}
        return {**head, "event": "progress", "stage": rec.stage, **info}
    if isinstance(rec, Result):
        return {**head, "event": "result", **_unreserved(rec.data)}
    return {
        **head,
        "event": "error",
        "error_kind": rec.error_kind,
        "message": rec.message,
        "hint": rec.hint,
        "where": rec.where,
        "log_tail": rec.log_tail,
    }


def _unreserved(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in _RESERVED}


def write(rec: Record, stream: Optional[IO[str]] = None) -> None:
    """One record as one flushed line (default: stdout)."""
    out = stream or sys.stdout
    out.write(json.dumps(to_dict(rec), default=str) + "\n")
    out.flush()


def parse_line(line: str) -> Optional[Record]:
    """The record on `line`, or None for anything that is not one (never raises)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("v") != PROTOCOL:
        return None
    job, event = str(obj.get("job", "")), obj.get("event")
    fields = {k: v for k, v in obj.items() if k not in _RESERVED}
    if event == "progress":
        return Progress(job, str(fields.pop("stage", "")), fields)
    if event == "result":
        return Result(job, fields)
    if event == "error":
        tail = fields.get("log_tail")
        return JobError(
            job,
            str(fields.get("error_kind") or "internal"),
            str(fields.get("message") or f"{job} failed"),
            str(fields.get("hint") or ""),
            fields.get("where"),
            [str(x) for x in tail] if isinstance(tail, list) else [],
        )
    return None


@dataclass
class Outcome:
    """How a job subprocess ended: its result fields, or the error to show (one of them)."""

    result: Optional[dict]
    error: Optional[SageError]
    returncode: int


CANCELLED_CODES = (130, -2, -15)  # SIGINT / SIGTERM: the job cleaned up and stopped


def run_job(
    cmd: list[str],
    *,
    job: str,
    env: Optional[dict[str, str]] = None,
    on_progress: Optional[Callable[[Progress], None]] = None,
    on_start: Optional[Callable[[subprocess.Popen], None]] = None,
) -> Outcome:
    """Run a `--json` CLI job, stream its progress to `on_progress`, return its outcome.
    `on_start` gets the process (to cancel it with SIGTERM). A job that exits non-zero
    without an error record gets one made from its exit code and last stderr line."""
    result: Optional[dict] = None
    error: Optional[SageError] = None
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
        )
    except OSError as e:
        return Outcome(
            None, SageError(f"cannot run the {job}: {e.strerror}", hint="is sage-ft-tui installed in this Python?"), -1
        )
    if on_start is not None:
        on_start(proc)
    assert proc.stdout is not None and proc.stderr is not None
    err_lines: deque[str] = deque(maxlen=20)
    # stderr is drained in a thread: a chatty library must not fill its pipe and stall the job
    drain = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    drain.start()
    for line in proc.stdout:
        rec = parse_line(line)
        if isinstance(rec, Progress) and on_progress is not None:
            on_progress(rec)
        elif isinstance(rec, Result):
            result = rec.data
        elif isinstance(rec, JobError):
            error = rec.to_error()
    rc = proc.wait()
    drain.join(timeout=5)
    if rc != 0 and error is None:
        last = [ln.strip() for ln in err_lines if ln.strip()]
        cancelled = rc in CANCELLED_CODES
        error = SageError(
            f"{job} cancelled" if cancelled else f"{job} exited with code {rc}",
            hint=last[-1] if last else "nothing was changed",
            kind="internal",
        )
    return Outcome(None if error else result, error, rc)


def emit_progress(job: str, stage: str, info: Optional[dict[str, Any]] = None) -> None:
    write(Progress(job, stage, dict(info or {})))


def emit_result(job: str, data: dict[str, Any]) -> None:
    write(Result(job, data))


def emit_error(job: str, e: SageError) -> None:
    write(JobError.from_error(job, e))


__all__ = [
    "PROTOCOL",
    "Progress",
    "Result",
    "JobError",
    "Record",
    "Outcome",
    "to_dict",
    "write",
    "parse_line",
    "run_job",
    "emit_progress",
    "emit_result",
    "emit_error",
    "CANCELLED_CODES",
]
