"""Small text charts: a braille line chart, bars, sparklines and a histogram.

Each returns Rich `Text`, so a widget can paint many of them in one Static update.
Series are told apart by glyph as well as colour, so NO_COLOR screens stay readable.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

from rich.text import Text

SPARKS = "▁▂▃▄▅▆▇█"

# Semantic styles in the theme's colours (NO_COLOR turns them monochrome; glyphs still differ).
STYLES = {
    "bar.full": "$success",
    "bar.warm": "$warning",
    "bar.hot": "$error",
    "bar.empty": "$panel",
    "chart.axis": "$foreground-darken-2",
    "train": "$primary",
    "eval": "bold $warning",
    "hist.ok": "$primary",
    "hist.cut": "$error",
    "spark": "$accent",
    "trained": "bold $success",
    "masked": "dim italic",
    "dim": "dim",
}


# Under NO_COLOR the colours go and only the attributes stay: where two styles would then
# differ by little (bold vs dim italic, in the same grey), one of them gains a mark of its own.
NO_COLOR_STYLES = {
    "trained": "bold underline",  # the trained answer underlined, the masked prompt dim italic
}


def no_color() -> bool:
    import os

    return bool(os.environ.get("NO_COLOR"))


def S(name: str) -> str:
    """A named style (or any Rich style) with `$variables` taken from the app's theme."""
    if name in NO_COLOR_STYLES and no_color():
        return NO_COLOR_STYLES[name]
    return themed(STYLES.get(name, name))


def themed(style: str, variables: Optional[dict[str, str]] = None) -> str:
    """A Rich style with `$name` theme variables replaced by the running app's theme colours
    (no app, e.g. in a unit test: the colours are left out, the rest of the style stays)."""
    if "$" not in style:
        return style
    if variables is None:
        from textual.app import active_app

        try:
            variables = active_app.get().theme_variables
        except LookupError:
            variables = {}
    parts = [variables.get(p[1:], "") if p.startswith("$") else p for p in style.split()]
    return " ".join(p for p in parts if p)


_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


def sparkline(
    values: Iterable[float], width: int, lo: float = 0.0, hi: Optional[float] = None, style: str = ""
) -> Text:
    vals = list(values)[-width:] if width > 0 else []
    if not vals:
        return Text(" " * max(width, 0))
    top = hi if hi is not None else max(vals)
    span = (top - lo) or 1.0
    chars = "".join(SPARKS[min(7, max(0, int((v - lo) / span * 7.999)))] for v in vals)
    return Text(chars.rjust(width), style=S(style))


def bar(fraction: Optional[float], width: int, style: str = "bar.full", empty: str = "bar.empty") -> Text:
    """A horizontal bar; partial cells use eighth blocks."""
    t = Text()
    if width <= 0:
        return t
    if fraction is None:
        return Text("·" * width, style=S(empty))
    f = min(1.0, max(0.0, fraction))
    eighths = int(round(f * width * 8))
    full, part = divmod(eighths, 8)
    t.append("█" * full, style=S(style))
    if part and full < width:
        t.append(" ▏▎▍▌▋▊▉"[part], style=S(style))
        full += 1
    t.append("░" * (width - full), style=S(empty))
    return t


def level_style(fraction: Optional[float]) -> str:
    if fraction is None:
        return "bar.full"
    return "bar.hot" if fraction >= 0.9 else "bar.warm" if fraction >= 0.7 else "bar.full"


def _fmt_axis(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v / 1000:.1f}k"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.01:
        return f"{v:.3f}"
    return f"{v:.1e}"


def _fmt_x(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else _fmt_axis(v)


def line_chart(
    series: Sequence[tuple[Sequence[tuple[float, float]], str]],
    width: int,
    height: int,
    *,
    markers: Sequence[tuple[Sequence[tuple[float, float]], str, str]] = (),
    x_max: Optional[float] = None,
    x_label: str = "step",
) -> Text:
    """Braille line chart. `series`: (points, style) drawn as lines; `markers`:
    (points, glyph, style) drawn as one glyph per point on top."""
    allpts = [p for pts, _ in series for p in pts] + [p for pts, _, _ in markers for p in pts]
    if not allpts or width < 16 or height < 3:
        return Text("waiting for the first loss value…", style="dim")
    label_w = 7
    pw, ph = width - label_w - 1, height - 1
    xs = [p[0] for p in allpts]
    ys = [p[1] for p in allpts]
    x0, x1 = min(xs), max(max(xs), x_max or 0)
    y0, y1 = min(ys), max(ys)
    if x1 <= x0:
        x1 = x0 + 1
    pad = (y1 - y0) * 0.06 or max(abs(y1) * 0.1, 0.05)
    y0, y1 = y0 - pad, y1 + pad
    W, H = pw * 2, ph * 4

    def px(x: float) -> int:
        return min(W - 1, max(0, int((x - x0) / (x1 - x0) * (W - 1) + 0.5)))

    def py(y: float) -> int:
        return min(H - 1, max(0, int((y1 - y) / (y1 - y0) * (H - 1) + 0.5)))

    cells = [[0] * pw for _ in range(ph)]
    owner: list[list[Optional[str]]] = [[None] * pw for _ in range(ph)]
    for pts, style in series:
        prev = None
        for x, y in pts:
            cur = (px(x), py(y))
            for cx, cy in _segment(prev, cur):
                r, c = cy // 4, cx // 2
                cells[r][c] |= _DOTS[cy % 4][cx % 2]
                owner[r][c] = style
            prev = cur
    glyphs: dict[tuple[int, int], tuple[str, str]] = {}
    for pts, glyph, style in markers:
        for x, y in pts:
            glyphs[(py(y) // 4, px(x) // 2)] = (glyph, style)

    out = Text(no_wrap=True, overflow="crop")
    label_rows = {0: y1, ph - 1: y0, (ph - 1) // 2: (y0 + y1) / 2}
    for r in range(ph):
        lab = _fmt_axis(label_rows[r]) if r in label_rows else ""
        out.append(lab.rjust(label_w)[:label_w] + ("┤" if lab else "│"), style=S("chart.axis"))
        for c in range(pw):
            if (r, c) in glyphs:
                g, st = glyphs[(r, c)]
                out.append(g, style=S(st))
            elif cells[r][c]:
                out.append(chr(0x2800 + cells[r][c]), style=S(owner[r][c] or ""))
            else:
                out.append(" ")
        out.append("\n")
    left, right = _fmt_x(x0), _fmt_x(x1)
    mid = f" {x_label} "
    gap = max(0, pw - len(left) - len(right) - len(mid))
    out.append(" " * label_w + "└", style=S("chart.axis"))
    out.append(left + "─" * (gap // 2) + mid + "─" * (gap - gap // 2) + right, style=S("chart.axis"))
    return out


def _segment(a: Optional[tuple[int, int]], b: tuple[int, int]):
    """Pixels from a to b (Bresenham); just b when there is no a."""
    if a is None:
        yield b
        return
    (x0, y0), (x1, y1) = a, b
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        yield x0, y0
        if x0 == x1 and y0 == y1:
            return
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


def histogram(values: Sequence[int], width: int, height: int, cut: Optional[int] = None) -> Text:
    """Vertical histogram of token lengths; bins past `cut` are styled as cut off."""
    if not values or width < 10 or height < 2:
        return Text("no lengths yet", style="dim")
    label_w = 6
    bins = width - label_w - 1
    hi = max(max(values), cut or 0)
    hi = max(hi, 1)
    step = hi / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int(v / step))] += 1
    top = max(counts)
    out = Text(no_wrap=True, overflow="crop")
    rows = height - 1
    for r in range(rows):
        level = (rows - r) / rows
        lab = str(top) if r == 0 else ""
        out.append(lab.rjust(label_w) + "│", style=S("chart.axis"))
        for i, c in enumerate(counts):
            frac = c / top * rows - (rows - r - 1)
            ch = " " if frac <= 0 else "█" if frac >= 1 else SPARKS[max(0, int(frac * 8) - 1)]
            over = cut is not None and (i + 0.5) * step > cut
            out.append(ch, style=S("hist.cut" if over else "hist.ok"))
        out.append("\n")
        del level
    right = f"{hi} tokens"
    out.append(" " * label_w + "└", style=S("chart.axis"))
    if cut is not None and cut < hi:
        pos = min(bins - 1, int(cut / step))
        axis = list("─" * bins)
        axis[pos] = "┴"
        s = "".join(axis)
        out.append(s[:pos], style=S("chart.axis"))
        out.append("┴", style=S("hist.cut"))
        out.append(s[pos + 1 :], style=S("chart.axis"))
        out.append(f"\n{' ' * label_w} 0  ▲ cut at {cut}", style=S("chart.axis"))
        out.append(f"   max {hi}", style=S("chart.axis"))
    else:
        out.append("─" * bins, style=S("chart.axis"))
        out.append(f"\n{' ' * label_w} 0{right.rjust(max(0, bins - 1))}", style=S("chart.axis"))
    return out
