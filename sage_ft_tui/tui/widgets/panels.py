"""Monitor panels painted from a RunModel: one per GPU, the host line, the run's figures."""

from __future__ import annotations

from typing import Optional

from rich.text import Text
from textual.widgets import Static

from sage_ft_tui.engine.fsutil import GiB
from sage_ft_tui.tui.run_model import EXTRA_METRICS, GpuHistory, RunModel, fmt_num, fmt_rate
from sage_ft_tui.tui.widgets.charts import S, bar, level_style, sparkline

LABEL_W = (14, 16)  # a label's room: at 80 columns / from WIDE_AT on ("reward rejected" whole)
WIDE_AT = 36
VALUE_W = 9


def _pct(v) -> str:
    return f"{v:3.0f}%" if isinstance(v, (int, float)) else " n/a"


class GpuPanel(Static):
    """GPU n: utilization and VRAM bars with history sparklines, temperature, power."""

    def __init__(self, index: int, **kw):
        super().__init__(**kw)
        self.index = index
        self.hist: GpuHistory | None = None

    def show(self, hist: GpuHistory) -> None:
        self.hist = hist
        g = hist.last
        name = (hist.name or "GPU").replace("NVIDIA ", "")
        self.border_title = f"GPU {hist.index} · {name}"
        temp, power = g.get("temp"), g.get("power")
        sub = []
        if isinstance(temp, (int, float)):
            sub.append(f"{temp:.0f}°C")
        if isinstance(power, (int, float)):
            sub.append(f"{power:.0f} W")
        self.border_subtitle = " · ".join(sub)
        self.refresh()

    def render(self) -> Text:
        h = self.hist
        if h is None:
            return Text("no readings yet", style="dim")
        w = max(20, self.size.width)
        g = h.last
        util = g.get("util")
        used, total = g.get("mem_used"), g.get("mem_total")
        mem_f = used / total if isinstance(used, (int, float)) and total else None
        util_f = util / 100 if isinstance(util, (int, float)) else None
        mem_txt = f"{used / GiB:5.1f}/{total / GiB:.0f}G" if mem_f is not None else "  n/a"
        right = max(len(mem_txt), 4)
        bar_w = max(6, (w - 6 - right - 2) // 2)
        spark_w = max(4, w - 6 - bar_w - right - 2)
        t = Text(no_wrap=True, overflow="crop")
        t.append("util ", style="dim")
        t.append_text(bar(util_f, bar_w, style=level_style(util_f)))
        t.append(f" {_pct(util)}".ljust(right + 1))
        t.append(" ")
        t.append_text(sparkline(h.util, spark_w, 0, 100, style="spark"))
        t.append("\nvram ", style="dim")
        t.append_text(bar(mem_f, bar_w, style=level_style(mem_f)))
        t.append(f" {mem_txt}".ljust(right + 1))
        t.append(" ")
        t.append_text(sparkline(h.mem, spark_w, 0, 100, style="spark"))
        return t


def host_text(m: RunModel, width: int) -> Text:
    h = m.host
    cpu = h.get("cpu_percent")
    used, total = h.get("ram_used"), h.get("ram_total")
    ram_f = used / total if isinstance(used, (int, float)) and total else None
    cpu_f = cpu / 100 if isinstance(cpu, (int, float)) else None
    t = Text(no_wrap=True, overflow="crop")
    half = max(20, width // 2 - 1)
    bw = max(6, (half - 16) // 2)
    t.append(" CPU ", style="bold")
    t.append_text(bar(cpu_f, bw, style=level_style(cpu_f)))
    t.append(f" {_pct(cpu)} ")
    t.append_text(sparkline(m.cpu, max(4, half - bw - 11), 0, 100, style="spark"))
    t.append("  RAM ", style="bold")
    t.append_text(bar(ram_f, bw, style=level_style(ram_f)))
    ram = f" {used / GiB:.1f}/{total / GiB:.0f}G " if ram_f is not None else " n/a "
    t.append(ram)
    t.append_text(sparkline(m.ram, max(4, half - bw - len(ram) - 6), 0, 100, style="spark"))
    return t


def stats_text(m: RunModel, width: int = 26) -> Text:
    """The run's figures, one line each; a figure with a history carries its sparkline on its own
    line (as wide as the panel allows), so that at 80×24 every figure is a line away."""
    log = m.last_log
    t = Text(no_wrap=True, overflow="ellipsis")
    label_w = LABEL_W[width >= WIDE_AT]
    spark_w = width - label_w - VALUE_W - 1

    def row(label: str, value: str, style: str = "", trend=None, lo: Optional[float] = 0.0) -> None:
        t.append(f"{label[: label_w - 1]:<{label_w}}", style="dim")
        t.append(f"{value:<{VALUE_W}}", style=style)
        if trend is not None and spark_w >= 4:
            t.append(" ")
            t.append_text(sparkline(trend, spark_w, min(trend, default=0.0) if lo is None else lo, style="spark"))
        t.append("\n")

    row("loss", fmt_num(m.loss), "bold " + S("train"))
    row("eval loss", fmt_num(m.last_eval), "bold " + S("eval").replace("bold ", ""))
    if m.best_eval is not None:
        row("best eval", fmt_num(m.best_eval))
    row("lr", fmt_num(log.get("learning_rate"), ".2e"), trend=[y for _, y in m.lr.points])
    row("tokens/s", fmt_rate(log.get("tokens_per_s")), trend=list(m.tps))
    mfu = log.get("mfu")  # GPU runs only (engine/hardware/flops.py): none on CPU
    if isinstance(mfu, (int, float)):
        row("MFU", f"{mfu:.0%}")
    row("grad norm", fmt_num(log.get("grad_norm"), ".3f"))
    row("samples/s", fmt_num(log.get("samples_per_s"), ".2f"))
    row("tokens", fmt_rate(m.tokens))
    for key, values in m.extra.items():  # preference / GRPO figures: rewards can be negative
        row(EXTRA_METRICS.get(key) or key.replace("_", " "), fmt_num(values[-1], ".3f"), trend=list(values), lo=None)
    peak = log.get("vram_peak")
    if isinstance(peak, (int, float)):
        row("vram peak", f"{peak / GiB:.1f} GiB")
    if m.checkpoints:
        row("checkpoint", f"step {m.checkpoints[-1].get('step', '?')} ({len(m.checkpoints)})")
    t.rstrip()
    return t
