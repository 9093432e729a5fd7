"""Queue: the runs waiting their turn, in order, with what each waits for; reorder, remove,
start or stop the scheduler. Everything goes through `engine.queue` (no torch there)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from sage_ft_tui.engine.errors import SageError, cut_middle
from sage_ft_tui.engine.fsutil import fmt_duration
from sage_ft_tui.tui.screens.base import BaseScreen, TopBar
from sage_ft_tui.tui.screens.runs import DATE_W
from sage_ft_tui.tui.widgets.charts import themed

REFRESH_S = 2.0
NAME_W = 24  # at least; a wider terminal shows more of each run name (cut in the middle, its date kept)
# entry state -> (glyph, Rich style in the app's theme colours)
ENTRY_STYLE = {
    "queued": ("○", ""),
    "started": ("●", "bold $primary"),
    "done": ("✓", "bold $success"),
    "failed": ("✗", "bold $error"),
    "removed": ("–", "dim"),
}


def read_queue() -> tuple[list, Optional[int]]:
    """(entries, scheduler pid) — runs in a worker."""
    from sage_ft_tui.engine.queue import entries, scheduler_pid

    return entries(), scheduler_pid()


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class QueueScreen(BaseScreen):
    WHERE = "Queue"
    BINDINGS = [
        Binding("escape", "back", "Back", id="nav.back"),
        Binding("enter", "attach", "Attach", id="queue.attach"),
        # letters keep their meaning across screens (tests/tui/test_keys.py): no s/t/x/d here
        Binding("shift+up", "move(-1)", "Move up", id="queue.up", key_display="⇧↑"),
        Binding("shift+down", "move(1)", "Move down", id="queue.down", key_display="⇧↓"),
        Binding("delete", "remove", "Remove", id="queue.remove", key_display="del"),
        Binding("g", "start", "Start queue", id="queue.start"),
        Binding("h", "stop", "Stop queue", id="queue.stop", tooltip="Starts nothing more; a training run goes on"),
    ]

    def __init__(self, selected: Optional[str] = None):
        super().__init__()
        self.selected = selected
        self.items: dict[str, Any] = {}  # run path -> engine.queue.QueueEntry, in queue order
        self.pid: Optional[int] = None

    def compose(self) -> ComposeResult:
        yield TopBar("Queue", note="", id="topbar")
        with Vertical(id="queue-box", classes="panel") as v:
            v.border_title = "Runs in the order they start"
            yield DataTable(id="queue-table", cursor_type="row", zebra_stripes=True)
            yield Static(
                "Nothing queued. Queue a created run from Runs (a), or `sage-ft-tui start … --queue`.",
                id="queue-empty",
                classes="hint",
            )
        yield Static(id="queue-detail", classes="detail")
        yield from self.footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, key in (("#", "pos"), ("Run", "name"), ("State", "state"), ("Tag", "tag"), ("GPUs", "gpus")):
            table.add_column(label, key=key)
        table.add_column("Note", key="note")
        self.reload()
        if self.app.live:
            self.set_interval(REFRESH_S, self.reload)
        table.focus()

    def reload(self) -> None:
        self.app.background(self, "queue.list", read_queue, self._show)

    def _show(self, result, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        if err is not None:  # a corrupt queue file was set aside: say so once
            self.notify(f"{err.message}\n{err.hint}", severity="error", timeout=10)
            result = ([], None)
        items, self.pid = result or ([], None)
        self.items = {str(e.run): e for e in items}
        self.query_one(TopBar).set_note(
            f"scheduler pid {self.pid}" if self.pid else "scheduler not running (g starts it)"
        )
        table = self.query_one(DataTable)
        key = self.selected or self._key()
        self.selected = None
        table.clear()
        longest = max((len(e.name) for e in items), default=NAME_W)
        name_w = max(NAME_W, min(longest, (self.size.width - 48) // 2))
        note_w = max(
            8, self.size.width - 48 - name_w
        )  # what is left beside the other columns (the detail line has it all)
        n = 0
        for e in items:
            n += e.state == "queued"
            glyph, style = ENTRY_STYLE.get(e.state, ("?", "dim"))
            state = Text(f"{glyph} {e.state}", style=themed(style) if style else "")
            if e.result not in ("", "completed", e.state):
                state.append(f" ({e.result})", style="dim")
            table.add_row(
                str(n) if e.state == "queued" else "",
                cut_middle(e.name, name_w, tail=DATE_W),
                state,
                _cut(e.tag or "", 12),
                ",".join(map(str, e.gpus)) if e.gpus else "any",
                _cut(self._note(e), note_w),
                key=str(e.run),
            )
        keys = list(self.items)
        if keys:
            if key not in keys:  # first look: the run that starts next
                key = next((k for k, e in self.items.items() if e.state == "queued"), keys[0])
            table.move_cursor(row=keys.index(key))
        self.query_one("#queue-empty").display = not items
        self._detail()
        self.refresh_bindings()

    def _note(self, e) -> str:
        if e.note:
            return e.note
        if e.state == "started" and e.started:
            return f"training for {fmt_duration(self.app.clock() - e.started)}"
        if e.state == "done" and e.started and e.ended:
            return f"took {fmt_duration(e.ended - e.started)}"
        return ""

    # ---- the selected entry --------------------------------------------------------------
    def _key(self) -> Optional[str]:
        tables = self.query(DataTable)
        if not tables or not tables.first().row_count:
            return None
        table = tables.first()
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def current(self):
        key = self._key()
        return self.items.get(key) if key else None

    def _detail(self) -> None:
        e = self.current()
        w = self.query_one("#queue-detail", Static)
        if e is None:
            w.update("")
            return
        t = Text(no_wrap=False)
        t.append(e.name, style="bold")
        bits = [f"queued {fmt_duration(max(0.0, self.app.clock() - e.added))} ago"] if e.added else []
        if e.share_gpu:
            bits.append("may share a GPU")
        t.append("  " + " · ".join(bits), style="dim")
        note = self._note(e)
        if note:
            t.append(f"\n{note}")
        w.update(t)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        e = self.current()
        if action == "move":
            return e is not None and e.state == "queued"
        if action == "remove":
            return e is not None and e.state != "started"
        if action == "attach":
            return e is not None and e.state in ("started", "done", "failed")
        if action == "start":
            return not self.pid and any(x.state == "queued" for x in self.items.values())
        if action == "stop":
            return bool(self.pid)
        return True

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_attach()

    # ---- actions -----------------------------------------------------------------------
    def action_attach(self) -> None:
        e = self.current()
        if e is not None and e.state in ("started", "done", "failed") and Path(e.run).is_dir():
            self.app.open("monitor", str(e.run))

    def action_move(self, delta: int) -> None:
        e = self.current()
        if e is None or e.state != "queued":
            return
        queued = [x for x in self.items.values() if x.state == "queued"]
        pos = queued.index(e) + 1 + delta
        if not 1 <= pos <= len(queued):
            self.app.bell()
            return
        from sage_ft_tui.engine.queue import move

        run = e.run
        self.selected = str(run)
        self.app.background(self, "queue.move", lambda: move(run, pos), self._acted(""))

    def action_remove(self) -> None:
        e = self.current()
        if e is None or e.state == "started":
            return
        from sage_ft_tui.engine.queue import remove

        run, name, was = e.run, e.name, e.state
        what = f"{name} taken out of the queue" if was == "queued" else f"{name} cleared from the list"
        self.app.background(self, "queue.remove", lambda: remove(run), self._acted(what))

    def action_start(self) -> None:
        from sage_ft_tui.engine.queue import ensure_scheduler

        self.app.background(self, "queue.start", ensure_scheduler, self._acted("Scheduler started"))

    def action_stop(self) -> None:
        from sage_ft_tui.engine.queue import stop_scheduler

        self.app.background(
            self,
            "queue.stop",
            stop_scheduler,
            self._acted("Scheduler stopped: queued runs wait; a training run goes on"),
        )

    def _acted(self, what: str):
        def done(_result, err: Optional[SageError]) -> None:
            if err is not None:
                self.notify(f"{err.message}\n{err.hint}", severity="error")
            elif what:
                self.notify(what, timeout=3)
            self.reload()

        return done
