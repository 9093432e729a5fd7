"""One error type for everything a user can get wrong or the machine can refuse.

The CLI prints `SageError.oneline()` and exits non-zero; the worker turns it into an
`error` event. Kinds match the event schema: oom, data, config, model, disk, internal
(plus serve and hardware for those commands)."""

from __future__ import annotations


class SageError(Exception):
    def __init__(self, message: str, *, hint: str = "", kind: str = "config", where: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.kind = kind
        self.where = where

    def oneline(self) -> str:
        head = f"{self.where}: {self.message}" if self.where else self.message
        return f"error: {head}" + (f" — {self.hint}" if self.hint else "")

    def as_event(self) -> dict:
        msg = f"{self.where}: {self.message}" if self.where else self.message
        # "error_kind": the envelope already uses "kind" for the event type.
        return {"error_kind": self.kind, "message": msg, "hint": self.hint}

    def __str__(self) -> str:  # so logs and tracebacks read the same as the one-liner
        return self.oneline()
