"""Runs: every run with its state, step, loss, model, data and markers; it refreshes
itself from the run folders and acts on the selected run (attach, cancel, resume, save
now, merge, serve, chat, compare, delete)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey

from sage_ft_tui.engine.errors import SageError, cut_middle
from sage_ft_tui.engine.fsutil import fmt_duration
from sage_ft_tui.engine.runs.layout import ACTIVE_STATES, RunLayout
from sage_ft_tui.tui.screens.base import BaseScreen, TopBar
from sage_ft_tui.tui.widgets.charts import themed

NAME_W = {False: 30, True: 16}  # the least the Run column gets: the Runs table / Home's compact one
DATE_W = 15  # a run name ends with its date and time (20260101-090000): what tells runs apart
REFRESH_S = 2.0  # the list follows the run folders by itself
RESUMABLE = ("cancelled", "failed")  # a run the worker can continue from its last checkpoint
# state -> (glyph, Rich style in the app's theme colours, see charts.themed)
STATE_STYLE = {
    "running": ("●", "bold $primary"),
    "preparing": ("◌", "$accent"),
    "cancelling": ("◌", "$warning"),
    "completed": ("✓", "bold $success"),
    "failed": ("✗", "bold $error"),
    "cancelled": ("■", "$warning"),
    "created": ("○", "dim"),
}


def state_text(state: str, detail: str = "") -> Text:
    glyph, style = STATE_STYLE.get(state, ("?", "dim"))
    t = Text(f"{glyph} {state}", style=themed(style))
    if detail:
        t.append(f" ({detail})", style="dim")
    return t


@dataclass
class RunRow:
    """One run as the Runs screen shows it: the engine's RunInfo plus what the folder holds."""

    info: Any  # engine.runs.state.RunInfo
    data: str = ""
    merged: bool = False
    served: bool = False

    @property
    def marks(self) -> str:
        return " ".join(m for m, on in (("merged", self.merged), ("served", self.served)) if on)


def read_rows() -> list[RunRow]:
    """Every run, newest first, with its data and markers (runs in a worker)."""
    import yaml

    from sage_ft_tui.engine.runs.state import list_runs

    rows = []
    for info in list_runs():
        lay = RunLayout(info.path)
        data = ""
        try:
            cfg = yaml.safe_load(lay.config.read_text(encoding="utf-8")) or {}
            d = cfg.get("data") or {}
            paths = d.get("paths") or ([d["repo"]] if d.get("repo") else [])
            data = ", ".join(Path(str(p)).name for p in paths)
        except (OSError, yaml.YAMLError, AttributeError, TypeError):
            pass
        rows.append(RunRow(info, data, merged=lay.merged.is_dir(), served=lay.serve_info.exists()))
    return rows


def _cell_len(cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else Text.from_markup(str(cell)).cell_len


def name_width(table: DataTable, names: list[str], others: list[list], compact: bool) -> int:
    """The Run column takes what the other columns leave (measured from their headers and
    cells, with padding), up to the longest name, never less than NAME_W."""
    pad = 2 * table.cell_padding
    used = sum(max([len(h), *(_cell_len(row[i]) for row in others)]) + pad for i, h in enumerate(_headers(compact)))
    room = table.scrollable_content_region.width - used - pad
    longest = max((len(n) for n in names), default=NAME_W[compact])
    return max(NAME_W[compact], min(longest, room))


def _headers(compact: bool) -> list[str]:
    """The headers of the columns after Run, in order."""
    return ["State", "Age"] if compact else ["State", "Step", "Loss", "Age", "Model", "Data", "Marks"]


def runs_columns(table: DataTable, compact: bool = False, name_w: Optional[int] = None) -> None:
    table.add_column("Run", key="name", width=name_w or NAME_W[compact])
    for header in _headers(compact):
        table.add_column(header, key=header.lower())


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def fill_runs_table(table: DataTable, runs: list, now: float, compact: bool = False) -> None:
    """Fill from RunInfo (Home) or RunRow (Runs) items, keeping the cursor on its run."""
    key = None
    if table.row_count:
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    rows = []
    for item in runs:
        row = item if isinstance(item, RunRow) else RunRow(item)
        r = row.info
        step = f"{r.step}/{r.total_steps}" if r.total_steps else (str(r.step) if r.step else "—")
        loss = f"{r.last_loss:.4f}" if isinstance(r.last_loss, (int, float)) else "—"
        age = fmt_duration(now - r.created) if r.created else "—"
        others: list = [state_text(r.state, "" if compact else r.detail)] + ([] if compact else [step, loss]) + [age]
        if not compact:
            model = _cut(r.model.rsplit("/", 1)[-1] if r.model else "—", 26)
            others += [model, _cut(row.data or "—", 20), Text(row.marks, style="bold")]
        rows.append((r, others))
    width = name_width(table, [r.name for r, _ in rows], [o for _, o in rows], compact)
    if table.columns and table.columns[ColumnKey("name")].width != width:
        table.clear(columns=True)
        runs_columns(table, compact, width)
    else:
        table.clear()
    for r, others in rows:
        table.add_row(cut_middle(r.name, width, tail=DATE_W), *others, key=r.path)
    if table.row_count:
        keys = [rk.value for rk in table.rows]
        table.move_cursor(row=keys.index(key) if key in keys else 0)


class RunsTable(DataTable):
    """The runs table: Enter attaches, and the footer says so (DataTable's own Enter is unnamed)."""

    BINDINGS = [Binding("enter", "select_cursor", "Attach", id="runs.enter")]


class RunsScreen(BaseScreen):
    WHERE = "Runs"
    BINDINGS = [
        Binding("escape", "back", "Back", id="nav.back"),
        Binding("enter", "attach", "Attach", id="runs.attach"),
        Binding("m", "open('merge')", "Merge", id="runs.merge"),
        Binding("v", "open('serve')", "Serve", id="runs.serve"),
        Binding("t", "open('chat')", "Chat", id="runs.chat"),
        Binding("e", "open('eval')", "Evaluate", id="runs.eval", tooltip="Base vs tuned on the held-out rows"),
        Binding("r", "resume", "Resume", id="runs.resume"),
        Binding("c", "cancel_run", "Cancel", id="runs.cancel"),
        Binding("s", "save_now", "Save now", id="runs.save"),
        Binding("p", "open('compare')", "Compare", id="runs.compare"),
        Binding("w", "open('sweep')", "Sweep", id="runs.sweep", tooltip="The sweep this trial belongs to"),
        Binding("delete", "delete", "Delete", id="runs.delete"),  # x is Export on the screens that export
        # Q (shift): q opens the Queue; a is Attach on Home, w the Sweep
        Binding("Q", "enqueue", "Queue it", id="runs.enqueue", tooltip="Train it when its turn and a GPU come"),
        Binding("q", "open_queue", "Queue", id="runs.queue", show=False),
    ]

    def __init__(self, selected: Optional[str] = None):
        super().__init__()
        self.selected = selected  # the run to put the cursor on first
        self.rows: dict[str, RunRow] = {}

    def compose(self) -> ComposeResult:
        from sage_ft_tui.engine.paths import runs_home

        where = str(runs_home()).replace(str(Path.home()), "~", 1) if self.app.live else "$SAGE_FT_HOME"
        yield TopBar("Runs", note=where, id="topbar")
        with Vertical(id="runs-box", classes="panel") as v:
            v.border_title = "All runs (newest first)"
            yield RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield Static("No runs yet.", id="runs-empty", classes="hint")
        yield Static(id="runs-detail", classes="detail")
        yield from self.footer()

    def on_mount(self) -> None:
        runs_columns(self.query_one(DataTable))
        self.reload()
        if self.app.live:
            self.set_interval(REFRESH_S, self.reload)
        self.query_one(DataTable).focus()

    def reload(self) -> None:
        self.app.background(self, "runs.list", read_rows, self._show)

    def _show(self, rows, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        rows = rows or []
        self.rows = {r.info.path: r for r in rows}
        table = self.query_one(DataTable)
        fill_runs_table(table, rows, self.app.clock())
        self.call_after_refresh(self._fit_names)
        if self.selected in self.rows:
            table.move_cursor(row=list(self.rows).index(self.selected))
            self.selected = None
        self.query_one("#runs-empty").display = not rows
        self._detail()
        self.refresh_bindings()

    def on_resize(self, event) -> None:
        self.call_after_refresh(self._fit_names)

    def _fit_names(self) -> None:
        """Refill once the table has its width (names use the room a wide terminal gives)."""
        tables = self.query(DataTable)
        if tables and self.rows:
            fill_runs_table(tables.first(), list(self.rows.values()), self.app.clock())

    # ---- the selected run ----------------------------------------------------------------
    def current(self) -> Optional[RunRow]:
        tables = self.query(DataTable)  # empty while the screen is being composed or torn down
        if not tables:
            return None
        table = tables.first()
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.rows.get(str(key))

    def _detail(self) -> None:
        row = self.current()
        w = self.query_one("#runs-detail", Static)
        if row is None:
            w.update("")
            return
        r = row.info
        t = Text(no_wrap=False)
        t.append(r.name, style="bold")
        t.append(f"  {r.task or '?'} · {r.model or '?'}", style="dim")
        if row.data:
            t.append(f" · data {row.data}", style="dim")
        if row.marks:
            t.append(f" · {row.marks}", style="bold")
        w.update(t)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        """Actions that do not fit the selected run are hidden: the footer shows what works now."""
        row = self.current()
        state = row.info.state if row else ""
        if action in ("attach", "open", "delete") and row is None:
            return False
        if action == "open" and parameters and parameters[0] in ("merge", "serve", "chat"):
            return state == "completed"
        if action == "open" and parameters and parameters[0] == "sweep":  # shown for a sweep's trials only
            return row is not None and RunLayout(row.info.path).sweep_tag.is_file()
        if action == "open" and parameters and parameters[0] == "eval":
            from sage_ft_tui.engine.eval.data import has_eval_split

            return state == "completed" and row is not None and has_eval_split(Path(row.info.path))
        if action in ("cancel_run", "save_now"):
            return state in ACTIVE_STATES
        if action == "resume":
            return state in RESUMABLE
        if action == "delete":
            return state not in ACTIVE_STATES
        if action == "enqueue":
            return state == "created"
        return True

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.app.open("monitor", event.row_key.value)

    def action_attach(self) -> None:
        if (row := self.current()) is not None:
            self.app.open("monitor", row.info.path)

    def action_open(self, route: str) -> None:
        if (row := self.current()) is not None:
            self.app.open(route, row.info.path)

    def action_resume(self) -> None:
        row = self.current()
        if row is None:
            return
        from sage_ft_tui.engine.runs.start import launch_run

        path = row.info.path
        self.app.background(self, "runs.resume", lambda: launch_run(Path(path), resume=True), self._then_attach(path))

    def _then_attach(self, path: str):
        def done(_result, err: Optional[SageError]) -> None:
            if err is not None:
                self.notify(f"{err.message}\n{err.hint}", severity="error")
                return
            self.app.open("monitor", path)

        return done

    def action_open_queue(self) -> None:
        self.app.open("queue")

    def action_enqueue(self) -> None:
        row = self.current()
        if row is None:
            return
        path = Path(row.info.path)

        def queue_it():
            from sage_ft_tui.engine.queue import enqueue, ensure_scheduler

            enqueue(path)
            return ensure_scheduler()

        self.app.background(self, "runs.enqueue", queue_it, self._acted(f"Queued {path.name}"))

    def action_cancel_run(self) -> None:
        row = self.current()
        if row is None:
            return
        from sage_ft_tui.engine.runs.control import CANCEL_WAIT_S, cancel

        path = Path(row.info.path)
        self.notify(f"Cancelling {path.name}: the worker saves a checkpoint and stops", timeout=3)
        # waits (in the thread) so that a worker stuck past the grace is killed, as `cancel` does
        self.app.background(
            self, "runs.cancel", lambda: cancel(path, wait=CANCEL_WAIT_S), self._acted(f"Cancelled {path.name}")
        )

    def action_save_now(self) -> None:
        row = self.current()
        if row is None:
            return
        from sage_ft_tui.engine.runs.control import request_save

        path = Path(row.info.path)
        self.app.background(self, "runs.save", lambda: request_save(path), self._acted("Checkpoint requested"))

    def action_delete(self) -> None:
        row = self.current()
        if row is None:
            return
        from sage_ft_tui.tui.screens.confirm import Confirm

        path = Path(row.info.path)
        what = ["config, events and logs"]
        lay = RunLayout(path)
        if lay.checkpoints.is_dir():
            what.append("checkpoints")
        if lay.adapter.is_dir():
            what.append("the adapter")
        if lay.merged.is_dir():
            what.append("the merged model")

        def answered(yes: Optional[bool]) -> None:
            if yes:
                from sage_ft_tui.engine.runs.control import remove_run

                self.app.background(self, "runs.delete", lambda: remove_run(path), self._deleted(path.name))

        self.app.push_screen(
            Confirm(
                f"Delete {path.name}?",
                f"Removes {path} with its " + ", ".join(what) + ". This cannot be undone.",
                yes="Delete",
                no="Keep",
            ),
            answered,
        )

    def _deleted(self, name: str):
        def done(_result, err: Optional[SageError]) -> None:
            if err is not None:
                self.notify(f"{err.message}\n{err.hint}", severity="error")
            else:
                self.notify(f"deleted {name}", timeout=3)
            self.reload()

        return done

    def _acted(self, what: str):
        def done(_result, err: Optional[SageError]) -> None:
            if err is not None:
                self.notify(f"{err.message}\n{err.hint}", severity="error")
            else:
                self.notify(what, timeout=3)
            self.reload()

        return done
