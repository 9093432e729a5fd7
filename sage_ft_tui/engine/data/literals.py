"""Does any of a set of literal strings occur in a text? Fast enough for whole batches of rows.

The inspector asks this of every batch of data rows (the secret patterns' literals, the
media words) before it looks at single rows. `n` substring tests scan the text `n` times;
one regular expression of `n` alternatives is slower still (`re` tries each alternative at
almost every position). `LiteralScan` groups the literals by an *anchor*: a rare character
several of them share (`_` for gho_, hf_, npm_ ..., `-` for sk-, glpat- ...). Each group is
one pattern that starts with its anchor — which `re` finds with its fast single-character
scan — and spells each literal exactly with a look-behind and a look-ahead around it. A
dozen fast scans replace 43 slow ones; the answer is the same as `any(lit in text ...)`.
"""

from __future__ import annotations

import re
from typing import Iterable

# Small letters from rarest to most common in text (English letter frequency).
_BY_FREQUENCY = "zqxjkvbpygfwmucldrhsnioate"


def rarity(ch: str) -> float:
    """How common `ch` is in text, lower = rarer: punctuation, digits, capitals, small
    letters by frequency, the space last."""
    low = ch.lower()
    if ch == " ":
        return 100
    if ch.islower():
        return 20 + (_BY_FREQUENCY.index(ch) if ch in _BY_FREQUENCY else 0)
    if ch.isupper():
        return 10 + (_BY_FREQUENCY.index(low) / 100 if low in _BY_FREQUENCY else 0)
    if ch.isdigit():
        return 5
    return {".": 9, "-": 8, "_": 7}.get(ch, 1)


def anchor_groups(literals: Iterable[str]) -> dict[str, list[str]]:
    """anchor character → the literals it stands for; every literal holds its anchor."""
    left = {lit for lit in literals if lit}
    groups: dict[str, list[str]] = {}
    while left:
        # among the rarest characters of the literals left, the one most of them share
        chars = {c for lit in left for c in lit}
        anchor = min(chars, key=lambda c: (rarity(c) // 5, -sum(c in lit for lit in left), rarity(c), c))
        groups[anchor] = sorted(lit for lit in left if anchor in lit)
        left -= set(groups[anchor])
    return groups


def _pattern(anchor: str, literals: list[str]) -> re.Pattern:
    arounds = []
    for lit in literals:
        i = lit.index(anchor)
        behind = f"(?<={re.escape(lit[: i + 1])})" if i else ""
        ahead = f"(?={re.escape(lit[i + 1 :])})" if i + 1 < len(lit) else ""
        if not behind + ahead:
            return re.compile(re.escape(anchor))  # the anchor alone is one of the literals
        arounds.append(behind + ahead)
    return re.compile(re.escape(anchor) + "(?:" + "|".join(arounds) + ")")


class LiteralScan:
    """`scan(text)` is `any(lit in text for lit in literals)`, computed faster."""

    def __init__(self, literals: Iterable[str]) -> None:
        self.literals = tuple(sorted(set(literals)))
        groups = anchor_groups(self.literals)
        # A literal alone behind a common small letter (dapi, xox): a plain substring test,
        # which skips ahead, beats checking the look-arounds at every such letter.
        self.plain = tuple(lits[0] for a, lits in groups.items() if len(lits) == 1 and rarity(a) >= 20)
        self.patterns = tuple(_pattern(a, lits) for a, lits in groups.items() if lits[0] not in self.plain)

    def __call__(self, text: str) -> bool:
        return any(p.search(text) for p in self.patterns) or any(lit in text for lit in self.plain)


__all__ = ["LiteralScan", "anchor_groups", "rarity"]
