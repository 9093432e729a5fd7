"""Sweep: a hyperparameter search's trials ranked by the objective, the best ones' loss curves
overlaid, and "start the best config as a full run". Reads the sweep folder and the trials'
run folders only (engine.sweep.results, engine.eval.compare.summarize): no optuna, no torch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.tui.screens.base import BaseScreen, TopBar
from sage_ft_tui.tui.screens.compare import PALETTE, chart_painter, legend
from sage_ft_tui.tui.widgets.plot import Plot

REFRESH_S = 3.0  # trials end while the screen is open
CURVES = len(PALETTE)  # the best this many trials are drawn (one colour and glyph each)
STATE_STYLE = {
    "complete": "bold $success",
    "running": "bold $primary",
    "queued": "dim",
    "pruned": "$warning",
    "failed": "bold $error",
    "interrupted": "$warning",
}


def read_sweep(ref: Optional[str]) -> dict:
    """The ranked trials and the curves of the best ones (in a thread worker)."""
    from sage_ft_tui.engine.eval.compare import summarize
    from sage_ft_tui.engine.sweep.results import sweep_results
    from sage_ft_tui.engine.sweep.store import sweep_of

    res = sweep_results(sweep_of(ref))
    drawn = [t for t in res.trials if t.run and t.state != "failed"][:CURVES]
    curves = []
    for t in drawn:
        s = summarize(Path(t.run))
        label = f"#{t.number} " + " ".join(f"{k.rsplit('.', 1)[-1]}={_fmt(v)}" for k, v in t.params.items())
        curves.append({"name": label, "loss_curve": s.loss_curve, "eval_curve": s.eval_curve})
    return {"res": res, "curves": curves}


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else ("—" if v is None else str(v))


class SweepScreen(BaseScreen):
    WHERE = "Sweep"
    DEFAULT_CSS = """
    SweepScreen #sweep-chart-box { height: 45%; min-height: 8; }
    SweepScreen #sweep-chart { height: 1fr; }
    SweepScreen #sweep-legend { height: auto; }
    SweepScreen #sweep-box { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back", id="nav.back"),
        Binding("enter", "attach", "Attach", id="sweep.attach", tooltip="the selected trial's run"),
        Binding("b", "start_best", "Start best", id="sweep.best", tooltip="the best config as a full run"),
        Binding("f5", "reload", "Reload", id="sweep.reload"),  # as on Compare: r is Resume
    ]

    def __init__(self, ref: Optional[str] = None, **kw):
        super().__init__(**kw)
        self.ref = ref  # a trial's run folder, a sweep's name, or None (the newest sweep)
        self.data: Optional[dict] = None

    def compose(self) -> ComposeResult:
        yield TopBar("Sweep", note="", id="topbar")
        with Vertical(id="sweep-chart-box", classes="panel") as v:
            v.border_title = "Loss per step of the best trials (lines) and eval loss (marks)"
            yield Plot(id="sweep-chart")
            yield Static("", id="sweep-legend")
        with Vertical(id="sweep-box", classes="panel") as v:
            v.border_title = "Trials, best first"
            yield Static("", id="sweep-head")
            yield DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="error", classes="error")
        yield from self.footer()

    def on_mount(self) -> None:
        self.action_reload()
        if self.app.live:
            self.set_interval(REFRESH_S, self.action_reload)
        self.query_one(DataTable).focus()

    def action_reload(self) -> None:
        ref = self.ref
        self.app.background(self, "sweep.read", lambda: read_sweep(ref), self._show)

    def _show(self, data: Optional[dict], err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        self.say_error(err)
        if err is not None or data is None:
            return
        self.data = data
        res = data["res"]
        self.query_one(TopBar).set_note(f"{res.name} · {res.done}/{res.spec.trials} trials · driver {res.driver}")
        head = Text(f"ranked by {res.objective_text} (lower is better) · searching ", style="dim")
        head.append(", ".join(p.text for p in res.spec.params))
        if res.driver_error:
            head.append(f"\nthe driver stopped: {res.driver_error}", style="bold")
        self.query_one("#sweep-head", Static).update(head)
        self._fill(res)
        self.query_one("#sweep-chart", Plot).paint(chart_painter(data["curves"]))
        self.query_one("#sweep-legend", Static).update(legend([c["name"] for c in data["curves"]]))
        self.refresh_bindings()

    def _fill(self, res) -> None:
        from sage_ft_tui.tui.widgets.charts import themed

        table = self.query_one(DataTable)
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value if table.row_count else None
        table.clear(columns=True)
        keys = [p.key for p in res.spec.params]
        for col in ("Rank", "Trial", "State", "Value", "Step", *keys, "Run"):
            table.add_column(col)
        for i, t in enumerate(res.trials, 1):
            state = Text(t.state, style=themed(STATE_STYLE.get(t.state, "dim")))
            rank = str(i) if t.state == "complete" else ""
            cells = [rank, f"#{t.number}", state, _fmt(t.value), _fmt(t.step), *(_fmt(t.params.get(k)) for k in keys)]
            table.add_row(*cells, t.run_name or "—", key=t.run or f"#{t.number}")
        rows = [rk.value for rk in table.rows]
        if key in rows:
            table.move_cursor(row=rows.index(key))

    def _selected_run(self) -> Optional[str]:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        return key if not key.startswith("#") else None

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action == "start_best":
            return self.data is not None and self.data["res"].best is not None
        if action == "attach":
            return bool(self.query(DataTable)) and self._selected_run() is not None
        return True

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_attach()

    def action_attach(self) -> None:
        if (run := self._selected_run()) is not None:
            self.app.open("monitor", run)

    def action_start_best(self) -> None:
        if self.data is None or self.data["res"].best is None:
            return
        from sage_ft_tui.tui.screens.confirm import Confirm

        res = self.data["res"]
        b = res.best
        values = ", ".join(f"{k}={_fmt(v)}" for k, v in b.params.items())

        def answered(yes: Optional[bool]) -> None:
            if yes:
                self.app.background(self, "sweep.best", lambda: start_best(res.name, self.ref), self._started)

        self.app.push_screen(
            Confirm(
                f"Start the best config of {res.name} as a full run?",
                f"Trial #{b.number} ({b.run_name}, {_fmt(b.value)}): the sweep's base config with {values}. "
                f"It is also written to the sweep's best.yaml.",
                yes="Start",
                no="Not now",
            ),
            answered,
        )

    def _started(self, started, err: Optional[SageError]) -> None:
        if err is not None:
            self.notify(f"{err.message}\n{err.hint}", severity="error")
            return
        for w in started.warnings:
            self.notify(w, severity="warning", timeout=6)
        self.app.open("monitor", str(started.run))


def start_best(name: str, ref: Optional[str]):
    """best.yaml written, then the one way a run starts (runs.start.start_run)."""
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.runs.start import start_run
    from sage_ft_tui.engine.sweep.results import write_best
    from sage_ft_tui.engine.sweep.store import sweep_of

    _best, path = write_best(sweep_of(ref if ref is not None else name))
    return start_run(RunConfig.load(path))
