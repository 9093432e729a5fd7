"""A row of data and a bad row, each with its file:line, and how a user's value is shown
in one short line (readers.py reads files into them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The most characters of a user's value (a key, a role) an error line shows; a reason's cap.
SHOWN_CHARS = 60
REASON_CHARS = 300


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A user's value as an error line shows it: at most `limit` characters, then how long it was."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


@dataclass
class Row:
    where: str  # file:line, file[index], file:row N
    data: Any
    file: str = ""


@dataclass
class BadRow:
    where: str
    reason: str
    file: str = ""

    def __post_init__(self) -> None:
        # One bad row is one short line, whatever the row held (a 20,000-character key, a role).
        if len(self.reason) > REASON_CHARS:
            self.reason = shown(self.reason, REASON_CHARS)

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"
