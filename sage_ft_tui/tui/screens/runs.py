"""Runs: every run with its state, step, last loss and age; enter attaches."""

from __future__ import annotations

from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from sage_ft_tui.tui.run_model import fmt_duration
from sage_ft_tui.tui.screens.base import BaseScreen, TopBar

STATE_STYLE = {
    "running": ("●", "bold #61afef"),
    "preparing": ("◌", "#56b6c2"),
    "cancelling": ("◌", "#e5c07b"),
    "completed": ("✓", "bold #98c379"),
    "failed": ("✗", "bold #e06c75"),
    "cancelled": ("■", "#e5c07b"),
    "created": ("○", "dim"),
}


def state_text(state: str, detail: str = "") -> Text:
    glyph, style = STATE_STYLE.get(state, ("?", "dim"))
    t = Text(f"{glyph} {state}", style=style)
    if detail:
        t.append(f" ({detail})", style="dim")
    return t


def runs_columns(table: DataTable, compact: bool = False) -> None:
    table.add_column("Run", key="name", width=20 if compact else 44)
    table.add_column("State", key="state")
    if not compact:
        table.add_column("Step", key="step")
    table.add_column("Loss", key="loss")
    table.add_column("Age", key="age")
    if not compact:
        table.add_column("Task", key="task")
        table.add_column("Model", key="model")


def fill_runs_table(table: DataTable, runs: list, now: float, compact: bool = False) -> None:
    cursor = table.cursor_row
    table.clear()
    for r in runs:
        step = f"{r.step}/{r.total_steps}" if r.total_steps else (str(r.step) if r.step else "—")
        loss = f"{r.last_loss:.4f}" if isinstance(r.last_loss, (int, float)) else "—"
        age = fmt_duration(now - r.created) if r.created else "—"
        width = 20 if compact else 44
        name = r.name if len(r.name) <= width else r.name[: width - 1] + "…"
        cells = [name, state_text(r.state, "" if compact else r.detail)] + ([] if compact else [step]) + [loss, age]
        if not compact:
            cells += [r.task, (r.model.rsplit("/", 1)[-1] if r.model else "—")[:28]]
        table.add_row(*cells, key=r.path)
    if table.row_count:
        table.move_cursor(row=min(cursor, table.row_count - 1))


class RunsScreen(BaseScreen):
    WHERE = "Runs"
    BINDINGS = [
        Binding("escape", "back", "Back", id="nav.back"),
        Binding("enter", "attach", "Attach", id="runs.attach"),
        Binding("r", "reload", "Reload", id="runs.reload"),
    ]

    def __init__(self, selected: Optional[str] = None):
        super().__init__()
        self.selected = selected  # the run to put the cursor on first

    def compose(self) -> ComposeResult:
        from pathlib import Path

        from sage_ft_tui.engine.paths import runs_home

        where = str(runs_home()).replace(str(Path.home()), "~", 1) if self.app.live else "$SAGE_FT_HOME"
        yield TopBar("Runs", note=where, id="topbar")
        with Vertical(id="runs-box", classes="panel") as v:
            v.border_title = "All runs (newest first)"
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield Static("No runs yet.", id="runs-empty", classes="hint")
        yield from self.footer()

    def on_mount(self) -> None:
        runs_columns(self.query_one(DataTable))
        self.action_reload()
        self.query_one(DataTable).focus()

    def action_reload(self) -> None:
        from sage_ft_tui.engine.runs.manage import list_runs

        self.app.background(self, "runs.list", list_runs, self._show)

    def _show(self, runs, err) -> None:
        if not self.is_attached:
            return
        fill_runs_table(self.query_one(DataTable), runs or [], self.app.clock())
        self.query_one("#runs-empty").display = not runs
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action == "attach":
            return True if self.query_one(DataTable).row_count else None
        return True

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.app.open_monitor(event.row_key.value)

    def action_attach(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.app.open_monitor(key)
