"""The train/eval split of a run's records: deterministic by seed, a group (duplicate
rows, one source file's code pieces) wholly on one side, and the default share said once."""

from __future__ import annotations

import random
from typing import Hashable, Optional, Sequence

AUTO_EVAL_SHARE = 0.05  # data.validation_split unset: this share is held out for evaluation ...
AUTO_EVAL_FROM = 60  # ... from this many rows (5% of 60 = 3 rows at least); fewer rows: none


def eval_share(share: Optional[float], units: int) -> float:
    """The share held out: the configured one, or (unset) AUTO_EVAL_SHARE from AUTO_EVAL_FROM
    rows on, else 0 (a tiny file trains on every row)."""
    if share is not None:
        return share
    return AUTO_EVAL_SHARE if units >= AUTO_EVAL_FROM else 0.0


def held_out(units: int, share: float) -> int:
    """How many rows (or groups) `split` holds out at this share."""
    return max(1, int(round(units * share))) if share > 0 and units >= 2 else 0


def split_note(share: Optional[float], units: int, n_eval: int, eval_files: bool = False) -> str:
    """One line on the default split, said once (data report, `start`): what was held out, or
    why nothing was. '' when the user chose the share or gave eval files."""
    if share is not None or eval_files:
        return ""
    if n_eval:
        return f"{n_eval} of {units} rows held out for evaluation (the default 5%; data.validation_split 0 = none)"
    return (
        f"nothing held out for evaluation: {units} rows are too few for the default 5% "
        f"(from {AUTO_EVAL_FROM} rows); Evaluate needs its own held-out file"
    )


def split(
    records: list[dict], share: Optional[float], seed: int, groups: Optional[Sequence[Hashable]] = None
) -> tuple[list[dict], list[dict]]:
    """Deterministic train/eval split (share None: `eval_share`'s default). With `groups`
    (e.g. the source file of each code piece) a group goes wholly to one side, so eval never
    sees pieces of a trained file."""
    keys = groups if groups is not None else list(range(len(records)))
    uniq = list(dict.fromkeys(keys))
    n_eval = held_out(len(uniq), eval_share(share, len(uniq)))
    if not n_eval:
        return records, []
    random.Random(seed).shuffle(uniq)
    ev = set(uniq[:n_eval])
    return [r for r, k in zip(records, keys) if k not in ev], [r for r, k in zip(records, keys) if k in ev]
