"""How the Data step shows an inspection: the summary line, the bad rows, the token-length
figures and the preview (pure functions of the engine's inspection, no widgets)."""

from __future__ import annotations

from typing import Callable, Optional

from rich.text import Text

from sage_ft_tui.engine.fsutil import fmt_bytes
from sage_ft_tui.tui.widgets.charts import S
from sage_ft_tui.tui.widgets.pairs import pairs_preview, segments_text

MAX_BAD_SHOWN = 8
FIT_KEY = "ctrl+y"  # the Data step's Fit length key, named in the line under the histogram


def percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0


def fit_length(lengths: list[int]) -> int:
    """p99 of the token lengths, rounded up to a multiple of 64 (what "fit max length" sets)."""
    return max(64, -(-percentile(lengths, 0.99) // 64) * 64)


def sample_text(i: int, sample) -> Text:
    """One previewed sample: its header line, then its text (the masked prompt set apart)."""
    t = Text()
    t.append(f"── sample {i + 1} " + "─" * 30 + "\n", style="dim")
    t.append_text(segments_text(sample))  # tool calls and reasoning marked apart
    if not t.plain.endswith("\n"):
        t.append("\n")
    return t


def fit_text(cut: int, fit: int, cost) -> Text:
    """The line under the histogram: what fitting the max length to the data would set, and its memory."""

    def mem(n: Optional[int]) -> str:
        return f"~{fmt_bytes(n)}" if n else "memory ?"

    t = Text(style="italic")
    if fit == cut:
        t.append("max length fits 99%", style="dim")
        if cost is not None:
            t.append(f" · {mem(cost.current)} to train", style="dim")
        return t
    t.append(f"{FIT_KEY} → {fit} fits 99%")
    if cost is not None:
        t.append(f" · {mem(cost.current)} → {mem(cost.other)}")
    return t


def summary_text(ins, rel: Callable[[str], str]) -> Text:
    """Format, rows, bad and usable counts, the files read, the warnings."""
    t = Text()
    ok = ins.ok
    t.append("✓ " if ok else "✗ ", style=S("bold $success") if ok else S("bold $error"))
    t.append(f"{ins.format or 'unknown format'}", style="bold")
    bad = ins.bad  # the engine's own count (bad_rows lists only the first few hundred)
    t.append(f"  ·  {ins.rows} rows  ·  ")
    t.append(f"{bad} bad", style=S("bold $error") if bad else "")
    t.append(f"  ·  {ins.usable} usable")
    if ins.files:
        names = ", ".join(rel(f) for f in ins.files[:3]) + (" …" if len(ins.files) > 3 else "")
        t.append(f"\n{names}", style="dim")
    for warning in ins.warnings:  # e.g. tools the chat template cannot render
        t.append(f"\n⚠ {warning}", style="#e5c07b")
    return t


def bad_text(ins, rel: Callable[[str], str]) -> Text:
    """The first bad rows (file:line, why), and how many more."""
    t = Text()
    t.append("Bad rows\n", style=S("bold $error"))
    for where, reason in ins.bad_rows[:MAX_BAD_SHOWN]:
        t.append(f"  {rel(where)}", style="bold")
        t.append(f"  {reason}\n")
    more = ins.bad - MAX_BAD_SHOWN  # every bad row counted, not only the listed ones
    if more > 0:
        t.append(f"  … and {more} more\n", style="dim")
    return t


def preview_text(ins):
    """The previewed samples; preference / GRPO rows as their pairs."""
    if ins.pairs:  # preference / GRPO rows: chosen and rejected side by side
        return pairs_preview(ins.pairs)
    t = Text()
    for i, sample in enumerate(ins.preview):
        t.append_text(sample_text(i, sample))
    return t
