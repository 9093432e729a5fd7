"""Compare: pick two or more runs from the list (space), their loss and eval-loss curves
overlaid in one chart, and the side-by-side table of `sage-ft-tui compare` (config
differences, data sizes, final losses, eval metrics, duration), each column labelled by
what differs between the runs (engine.eval.compare.run_labels). Reads run-folder files
only (engine.eval.compare), no torch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection

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
    from sage_ft_tui.engine.runs.state import list_runs

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


def legend(labels: list[str]) -> Text:
    """Each run's line and eval mark, named by its label (what differs), one run a line."""
    t = Text()
    for i, label in enumerate(labels):
        colour, glyph = PALETTE[i % len(PALETTE)]
        t.append("━━ ", style=colour)
        t.append(f"{glyph} ", style=colour)
        t.append(f"{label}\n" if i < len(labels) - 1 else label)
    return t


def compare_table(result: dict, labels: list[str]) -> Table:
    from sage_ft_tui.engine.eval.compare import TABLE_ROWS, table_rows

    t = Table(expand=True, box=None, header_style="bold")
    t.add_column("")
    for i, label in enumerate(labels):  # a header that wraps, never a name cut to the same prefix
        colour, glyph = PALETTE[i % len(PALETTE)]
        t.add_column(Text(f"{glyph} {label}", style=colour), justify="right", overflow="fold")
    rows = table_rows(result)
    for i, row in enumerate(rows):
        t.add_row(*row, end_section=i == len(TABLE_ROWS) - 1)
    return t


def run_choice(r, width: int = 200, slot: Optional[int] = None) -> Text:
    """One run in the picker: the glyph of its column when picked (seen without colour too),
    its name cut in the middle to fit (task and model at the start, the date at the end
    both stay), and its state."""
    from sage_ft_tui.engine.errors import cut_middle

    state = f"  {r.state}"
    t = Text(no_wrap=True)
    if slot is None:
        t.append("  ")
    else:
        colour, glyph = PALETTE[slot % len(PALETTE)]
        t.append(f"{glyph} ", style=colour)
    t.append(cut_middle(r.name, max(8, width - 2 - len(state))))
    t.append(state, style="dim")
    return t


class CompareScreen(BaseScreen):
    WHERE = "Compare"
    DEFAULT_CSS = """
    CompareScreen #cmp-top { height: 1fr; min-height: 9; }
    CompareScreen #cmp-pick-box { width: 2fr; min-width: 30; }
    CompareScreen #cmp-pick { height: 1fr; border: none; background: transparent; }
    CompareScreen #cmp-chart-box { width: 3fr; }
    CompareScreen #cmp-chart { height: 1fr; }
    CompareScreen #cmp-legend { height: auto; max-height: 5; }
    CompareScreen #cmp-table-box { height: 1fr; }
    CompareScreen #cmp-need { height: auto; color: $text-muted; }
    """
    # F5 reloads: r means All runs on Home and Resume on Runs, one meaning a key
    BINDINGS = [
        Binding("escape", "back", "Back", id="nav.back"),
        Binding("f5", "reload", "Reload", id="compare.reload"),
    ]

    def __init__(self, runs: Optional[str] = None, **kw):
        super().__init__(**kw)
        self.runs = [str(Path(r).resolve()) for r in (runs or "").split(RUN_SEPARATOR) if r.strip()]
        self.result: Optional[dict] = None
        self.infos: list = []

    def compose(self) -> ComposeResult:
        yield TopBar("Compare", note="space picks a run · two or more", id="topbar")
        with Horizontal(id="cmp-top"):
            with Vertical(id="cmp-pick-box", classes="panel") as v:
                v.border_title = "Runs (space: pick)"
                yield SelectionList[str](id="cmp-pick")
            with Vertical(id="cmp-chart-box", classes="panel") as v:
                v.border_title = "Loss per step (lines), eval loss (marks)"
                yield Plot(id="cmp-chart")
                yield Static("", id="cmp-legend")
        with VerticalScroll(id="cmp-table-box", classes="panel") as v:
            v.border_title = "Side by side"
            yield Static("", id="cmp-need")
            yield Static("", id="cmp-table")
            yield Static("", id="error", classes="error")
        yield from self.footer()

    def on_mount(self) -> None:
        from sage_ft_tui.engine.runs.state import list_runs

        if len(self.runs) == 1:  # one run given (Runs' p): it and the newest other, both changeable
            self.runs = [str(Path(r).resolve()) for r in with_previous(self.runs[0])]
        pick = self.query_one("#cmp-pick", SelectionList)
        self.infos = list_runs()
        pick.add_options(
            [
                Selection(run_choice(r), str(Path(r.path).resolve()), str(Path(r.path).resolve()) in self.runs)
                for r in self.infos
            ]
        )
        pick.focus()
        self._fit_names()
        self.action_reload()

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_names)

    def _fit_names(self) -> None:
        pick = self.query_one("#cmp-pick", SelectionList)
        width = pick.scrollable_content_region.width - 4  # the check box and its gaps
        if width <= 0:
            width = 200
        for i, r in enumerate(self.infos):
            path = str(Path(r.path).resolve())
            slot = self.runs.index(path) if path in self.runs else None
            pick.replace_option_prompt_at_index(i, run_choice(r, width, slot))

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        chosen = set(event.selection_list.selected)
        # keep the order the runs were picked in (columns do not jump), new ones at the end
        self.runs = [r for r in self.runs if r in chosen] + [
            r for r in event.selection_list.selected if r not in self.runs
        ]
        self._fit_names()
        self.action_reload()

    def action_reload(self) -> None:
        from sage_ft_tui.engine.eval.compare import compare_runs, run_labels

        need = self.query_one("#cmp-need", Static)
        if len(self.runs) < 2:
            self.result = None
            need.update(
                Text(f"Pick {'two runs' if not self.runs else 'one more run'} in the list (space) to compare them.")
            )
            need.display = True
            self.query_one("#cmp-table", Static).update("")
            self.query_one("#cmp-legend", Static).update("")
            self.query_one("#cmp-chart", Plot).paint(None)
            self.say_error(None)
            return
        need.display = False
        try:
            self.result = compare_runs(self.runs)
        except SageError as e:
            self.say_error(e)
            return
        self.say_error(None)
        runs, labels = self.result["runs"], run_labels(self.result)
        self.query_one("#cmp-chart", Plot).paint(chart_painter(runs))
        self.query_one("#cmp-legend", Static).update(legend(labels))
        self.query_one("#cmp-table", Static).update(compare_table(self.result, labels))
