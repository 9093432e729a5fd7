"""Home: start something (new fine-tune, a quickstart, the demo), or pick a recent run."""

from __future__ import annotations

from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.registry import all_tasks
from sage_ft_tui.tui.flow import ONLY_FOR, STEPS
from sage_ft_tui.tui.routes import AFTER_TRAINING, ROUTES
from sage_ft_tui.tui.screens.base import BaseScreen, TopBar
from sage_ft_tui.tui.screens.runs import fill_runs_table, runs_columns

TITLE_W = 15  # the title column of the Start menu; the description takes the rest of the width

STEP_COUNT = f"{len(STEPS) - len(ONLY_FOR)}–{len(STEPS)}"  # preference and GRPO runs have a Method step


class _Entry:
    """A menu line: a bold title, then its description cut to the width the menu has now (the
    panel grows with the terminal; an OptionList would wrap a Text instead of cutting it)."""

    def __init__(self, title: str, desc: str, indent: int = 0):
        self.title, self.desc, self.indent = title, desc, indent

    def __rich_console__(self, console, options):
        room = max(1, options.max_width - TITLE_W)
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" " * self.indent + self.title.ljust(TITLE_W - self.indent), style="bold")
        t.append(self.desc if len(self.desc) <= room else self.desc[: room - 1] + "…", style="dim")
        yield t


def _entry(title: str, desc: str, indent: int = 0) -> _Entry:
    return _Entry(title, desc, indent)


def _heading(title: str) -> Option:
    return Option(Text(title, style="bold italic"), disabled=True)


class HomeScreen(BaseScreen):
    WHERE = "Home"
    BINDINGS = [
        Binding("escape", "back", "Back", id="nav.back", show=False),
        Binding("n", "new", "New fine-tune", id="home.new"),
        Binding("d", "demo", "Demo run", id="home.demo"),
        Binding("l", "runs", "All runs", id="home.runs"),  # r is Resume wherever a run can be resumed
        Binding("a", "attach", "Attach", id="home.attach"),
        Binding("q", "open_queue", "Queue", id="home.queue", show=False),
        Binding("tab", "focus_next", "Switch panel", id="home.switch", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield TopBar("Home", note="LoRA / QLoRA fine-tuning", id="topbar")
        with Horizontal(id="home-body"):
            with Vertical(id="home-menu-box", classes="panel") as v:
                v.border_title = "Start"
                yield OptionList(*self._menu(), id="home-menu")
            with Vertical(id="home-runs-box", classes="panel") as v:
                v.border_title = "Recent runs"
                yield DataTable(id="home-runs", cursor_type="row", zebra_stripes=True)
                yield Static(
                    "No runs yet: start one on the left, or try the demo (d).", id="home-empty", classes="hint"
                )
        yield from self.footer()

    def _menu(self) -> list:
        opts: list = [
            Option(_entry("New fine-tune", f"step by step, {STEP_COUNT} steps"), id="new"),
            Option(_entry("Demo", "tiny model, sample data"), id="demo"),
            Option(_entry("Runs", "all runs; attach to any"), id="runs"),
            None,
            _heading("Quickstart: pick data, go"),
        ]
        for name, task in all_tasks().items():
            opts.append(Option(_entry(name, task.title.lower(), indent=2), id=f"quick:{name}"))
        opts += [None, _heading("After training")]
        for route in AFTER_TRAINING:
            _factory, title, desc = ROUTES[route]
            opts.append(Option(_entry(title, desc, indent=2), id=f"route:{route}"))
        return opts

    def on_mount(self) -> None:
        table = self.query_one("#home-runs", DataTable)
        runs_columns(table, compact=True)
        self.refresh_runs()
        self.query_one("#home-menu", OptionList).focus()

    def on_screen_resume(self) -> None:
        self.refresh_runs()

    def refresh_runs(self) -> None:
        from sage_ft_tui.engine.runs.state import list_runs

        self.app.background(self, "home.runs", lambda: list_runs()[:12], self._show_runs)

    def _show_runs(self, runs, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        table = self.query_one("#home-runs", DataTable)
        self.runs = runs or []
        fill_runs_table(table, self.runs, self.app.clock(), compact=True)
        self.call_after_refresh(self._fit_names)
        self.query_one("#home-empty").display = not runs
        self.refresh_bindings()  # Attach shows once there is a run to attach to

    def on_resize(self, event) -> None:
        self.call_after_refresh(self._fit_names)

    def _fit_names(self) -> None:
        """Refill once the table has its width (names use the room a wide terminal gives)."""
        tables = self.query("#home-runs")
        if tables and getattr(self, "runs", None):
            fill_runs_table(tables.first(DataTable), self.runs, self.app.clock(), compact=True)

    # ---- choices -----------------------------------------------------------------------
    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        oid = event.option.id or ""
        if oid == "new":
            self.action_new()
        elif oid == "demo":
            self.action_demo()
        elif oid == "runs":
            self.action_runs()
        elif oid.startswith("quick:"):
            self.app.start_wizard(quick_task=oid.split(":", 1)[1])
        elif oid.startswith("route:"):
            self.app.open(oid.split(":", 1)[1], self._selected_run())

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.app.open_monitor(event.row_key.value)

    def action_new(self) -> None:
        self.app.start_wizard()

    def action_runs(self) -> None:
        self.app.open("runs", self._selected_run())

    def action_open_queue(self) -> None:
        self.app.open("queue")

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action == "attach":  # hidden while there is no run to attach to
            tables = self.query("#home-runs")
            return bool(tables) and tables.first(DataTable).row_count > 0
        return True

    def action_attach(self) -> None:
        table = self.query_one("#home-runs", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            if key:
                self.app.open_monitor(key)
        else:
            self.notify("No runs yet.", severity="warning")

    def action_demo(self) -> None:
        def make():
            from sage_ft_tui.engine.recipes.demo import demo_config
            from sage_ft_tui.engine.runs.start import start_run

            started = start_run(demo_config())
            for w in started.warnings:
                self.app.call_from_thread(self.notify, w, severity="warning", timeout=10)
            return started.run

        self.notify("Preparing the demo run…", timeout=3)
        self.app.background(self, "home.demo", make, self._demo_started)

    def _demo_started(self, run, err: Optional[SageError]) -> None:
        if err is not None:
            self.notify(f"{err.message}\n{err.hint}", title="Demo not started", severity="error", timeout=8)
            return
        self.app.open_monitor(run)

    def _selected_run(self) -> Optional[str]:
        """The run under the cursor in Recent runs (the screens pick the newest fit if none)."""
        table = self.query_one("#home-runs", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(key) if key else None

    def action_back(self) -> None:
        """Escape on Home does nothing (ctrl+q quits)."""
