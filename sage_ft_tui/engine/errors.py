"""One error type for everything a user can get wrong or the machine can refuse.

The CLI prints `SageError.oneline()` and exits non-zero; the worker turns it into an
`error` event. Kinds match the event schema: oom, data, config, model, disk, internal
(plus serve and hardware for those commands)."""

from __future__ import annotations


class SageError(Exception):
    def __init__(self, message: str, *, hint: str = "", kind: str = "config", where: str | None = None, code: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.kind = kind
        self.where = where
        self.code = code  # a stable name for this case, so the TUI can word the way forward as keys

    def oneline(self) -> str:
        head = f"{self.where}: {self.message}" if self.where else self.message
        return f"error: {head}" + (f" — {self.hint}" if self.hint else "")

    def as_event(self) -> dict:
        msg = f"{self.where}: {self.message}" if self.where else self.message
        # "error_kind": the envelope already uses "kind" for the event type.
        return {"error_kind": self.kind, "message": msg, "hint": self.hint}

    def __str__(self) -> str:  # so logs and tracebacks read the same as the one-liner
        return self.oneline()


def clip(text: str, limit: int = 240) -> str:
    """The first line of `text` shortened for a one-line message: whole sentences while they fit
    (at least the first), a long first sentence cut at a word boundary with an ellipsis —
    never mid-word, mid-URL or mid-sentence without saying so."""
    import re

    line = next((s.strip() for s in str(text).splitlines() if s.strip()), "")
    if len(line) <= limit:
        return line
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z(`'\"])", line)
    out = sentences[0]
    for s in sentences[1:]:
        if len(out) + 1 + len(s) > limit:
            break
        out += " " + s
    if len(out) <= limit:
        return out
    cut = out[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:([{-") + "…"


def cut_middle(name: str, width: int, tail: int = 0) -> str:
    """A name (run, file, path) shortened to `width` by cutting its middle: the start (task,
    model) and the end (date, file name) that tell names apart both stay. `tail`: keep up to
    that many of the end first (a run name's date and time), and at least 5 of the start."""
    if len(name) <= width:
        return name
    if width <= 1:
        return "…"[:width]
    head = (width - 1 + 1) // 2
    if tail:
        head = max(width - 1 - tail, min(5, head))
    return name[:head] + "…" + name[len(name) - (width - 1 - head) :]
