"""Compare: two or more runs' loss and eval-loss curves overlaid in one chart, and the
side-by-side table of `sage-ft-tui compare` (config differences, data sizes, final losses,
eval metrics, duration). Reads run-folder files only (engine.eval.compare), no torch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.tui.screens.base import BaseScreen, TopBar
from sage_ft_tui.tui.widgets.plot import Plot

# A route carries one string: several runs travel joined by this separator.
RUN_SEPARATOR = "\n"
# One colour and glyph per run (told apart without colour too); eval points as markers.
PALETTE = (("#61afef", "●"), ("#e5c07b", "◆"), ("#98c379", "▲"), ("#c678dd", "■"), ("#56b6c2", "✚"))


def join_runs(runs: list[str]) -> str:
    return RUN_SEPARATOR.join(runs)


def with_previous(run: str) -> list[str]:
    """One run (the Runs screen's `p`): it and the newest other run — "is it better than my last run?"."""
    from sage_ft_tui.engine.runs.manage import list_runs

    me = Path(run).resolve()
    others = [r.path for r in list_runs() if Path(r.path).resolve() != me]
    return [run] + others[:1]


def chart_painter(runs: list[dict]):
    from sage_ft_tui.tui.widgets.charts import line_chart

    series = [(r["loss_curve"], PALETTE[i % len(PALETTE)][0]) for i, r in enumerate(runs)]
    markers = [
        (r["eval_curve"], PALETTE[i % len(PALETTE)][1], PALETTE[i % len(PALETTE)][0])
        for i, r in enumerate(runs)
        if r["eval_curve"]
    ]
    return lambda w, h: line_chart(series, w, h, markers=markers)


def legend(runs: list[dict]) -> Text:
    t = Text()
    for i, r in enumerate(runs):
        colour, glyph = PALETTE[i % len(PALETTE)]
        t.append("━━ ", style=colour)
        t.append(f"{r['name']} (train loss)  ")
        t.append(f"{glyph} ", style=colour)
        t.append("eval loss    ")
    return t


def compare_table(result: dict) -> Table:
    from sage_ft_tui.engine.eval.compare import TABLE_ROWS, table_rows

    t = Table(expand=True, box=None, header_style="bold")
    t.add_column("")
    for i, r in enumerate(result["runs"]):
        t.add_column(Text(r["name"], style=PALETTE[i % len(PALETTE)][0]), justify="right")
    rows = table_rows(result)
    for i, row in enumerate(rows):
        t.add_row(*row, end_section=i == len(TABLE_ROWS) - 1)
    return t


class CompareScreen(BaseScreen):
    WHERE = "Compare"
    DEFAULT_CSS = """
    CompareScreen #cmp-chart-box { height: 16; }
    CompareScreen #cmp-chart { height: 1fr; }
    CompareScreen #cmp-legend { height: auto; }
    CompareScreen #cmp-table-box { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back", id="nav.back"),
        Binding("r", "reload", "Reload", id="compare.reload"),
    ]

    def __init__(self, runs: Optional[str] = None, **kw):
        super().__init__(**kw)
        self.runs = [r for r in (runs or "").split(RUN_SEPARATOR) if r.strip()]
        self.result: Optional[dict] = None

    def compose(self) -> ComposeResult:
        names = ", ".join(Path(r).name for r in self.runs) or "no runs"
        yield TopBar("Compare", note=names, id="topbar")
        with Vertical(id="cmp-chart-box", classes="panel") as v:
            v.border_title = "Loss per step (lines) and eval loss (marks)"
            yield Plot(id="cmp-chart")
            yield Static("", id="cmp-legend")
        with VerticalScroll(id="cmp-table-box", classes="panel") as v:
            v.border_title = "Side by side"
            yield Static("", id="cmp-table")
            yield Static("", id="error", classes="error")
        yield from self.footer()

    def on_mount(self) -> None:
        if len(self.runs) == 1:
            self.runs = with_previous(self.runs[0])
            self.query_one(TopBar).set_note(", ".join(Path(r).name for r in self.runs))
        self.action_reload()

    def action_reload(self) -> None:
        from sage_ft_tui.engine.eval.compare import compare_runs

        try:
            self.result = compare_runs(self.runs)
        except SageError as e:
            self.say_error(e)
            return
        self.say_error(None)
        runs = self.result["runs"]
        self.query_one("#cmp-chart", Plot).paint(chart_painter(runs))
        self.query_one("#cmp-legend", Static).update(legend(runs))
        self.query_one("#cmp-table", Static).update(compare_table(self.result))
