"""The Data step's previews of preference and tool/reasoning data, as Rich renderables:
a pair's chosen and rejected answers side by side under their shared prompt, KTO rows
marked good/bad, GRPO prompts with their reference answer, and tool schemas, tool calls,
tool results and reasoning set apart from plain text (by style and by a marker glyph, so
NO_COLOR screens still tell them apart)."""

from __future__ import annotations

import re

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from sage_ft_tui.tui.widgets.charts import S

# Tag pairs of the rendered text (the Hermes/Qwen convention our text form and many templates use).
MARKED = (
    ("<tools>", "</tools>", "tools", "⚙ tool schemas"),
    ("<tool_call>", "</tool_call>", "call", "→ tool call"),
    ("<tool_response>", "</tool_response>", "result", "← tool result"),
    ("<think>", "</think>", "think", "… reasoning"),
)
PART_STYLES = {
    "tools": S("$secondary"),
    "call": S("bold $accent"),
    "result": S("$accent"),
    "think": S("italic $warning"),
}
_SPLIT = re.compile("(" + "|".join(re.escape(t) for pair in MARKED for t in pair[:2]) + ")")
PAIR_STYLES = {"chosen": S("bold $success"), "rejected": S("$error")}


def append_segment(t: Text, text: str, base: str) -> None:
    """Append rendered text in style `base`, with tool and reasoning parts in their own style
    (an empty pair of tags, as in prose that names them, stays plain)."""
    inside = None
    pieces = [p for p in _SPLIT.split(text) if p]
    for k, piece in enumerate(pieces):
        opened = next((m for m in MARKED if m[0] == piece), None)
        closed = next((m for m in MARKED if m[1] == piece), None)
        if opened and not (k + 1 < len(pieces) and pieces[k + 1] == opened[1]):
            inside = opened[2]
            t.append(f"{opened[3]} ", style=PART_STYLES[inside])
            t.append(piece, style=PART_STYLES[inside])
        elif closed and inside == closed[2]:
            t.append(piece, style=PART_STYLES[inside])
            inside = None
        else:
            t.append(piece, style=f"{base} {PART_STYLES[inside]}" if inside else base)


def segments_text(sample: list[tuple[str, bool]]) -> Text:
    """One SFT sample's (text, trained) pieces, tools and reasoning marked."""
    t = Text()
    for text, trained in sample:
        append_segment(t, text, S("trained" if trained else "masked"))
    return t


def _answer(text: str, style: str) -> Text:
    t = Text()
    append_segment(t, text, style)
    return t


def pair_preview(pair: dict) -> RenderableType:
    """A preference pair (chosen | rejected side by side), a KTO row or a GRPO prompt."""
    prompt = _answer(pair["prompt"], S("masked"))
    if "chosen" in pair:
        table = Table(expand=True, box=None, padding=(0, 1), show_edge=False)
        table.add_column(Text("✓ chosen (trained up)", style=PAIR_STYLES["chosen"]), ratio=1)
        table.add_column(Text("✗ rejected (trained down)", style=PAIR_STYLES["rejected"]), ratio=1)
        table.add_row(
            _answer(pair["chosen"], PAIR_STYLES["chosen"]), _answer(pair["rejected"], PAIR_STYLES["rejected"])
        )
        return Group(prompt, table)
    if "completion" in pair:
        good = bool(pair.get("label"))
        head = Text("✓ good answer (label true)" if good else "✗ bad answer (label false)")
        head.stylize(PAIR_STYLES["chosen" if good else "rejected"])
        return Group(prompt, head, _answer(pair["completion"], PAIR_STYLES["chosen" if good else "rejected"]))
    ref = Text.assemble(("reference answer: ", "bold"), (str(pair.get("answer", "")), S("trained")))
    return Group(prompt, ref)


def pairs_preview(pairs: list[dict]) -> RenderableType:
    parts: list[RenderableType] = []
    for i, pair in enumerate(pairs):
        parts.append(Text(f"── sample {i + 1} " + "─" * 30, style="dim"))
        parts.append(pair_preview(pair))
    return Group(*parts)
