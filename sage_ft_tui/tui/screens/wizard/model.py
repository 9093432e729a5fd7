"""Step 2, Model: defaults, the local Hugging Face cache, tiny-demo, or any path / hub id."""

from __future__ import annotations

from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.tui.screens.base import WizardScreen
from sage_ft_tui.tui.widgets.charts import S

SOURCE_LABEL = {"builtin": "built-in", "default": "default", "cache": "HF cache", "path": "folder", "hub": "hub"}


class ModelScreen(WizardScreen):
    STEP = "Model"
    BINDINGS = WizardScreen.BINDINGS + [
        Binding("ctrl+l", "focus_path", "Type a path", id="model.path"),
    ]

    def __init__(self):
        super().__init__()
        self.entries: dict[str, object] = {}
        self.chosen = None  # ModelEntry

    def compose(self) -> ComposeResult:
        yield from self.compose_head()
        with Vertical(classes="body-col"):
            with Vertical(id="model-box", classes="panel") as v:
                v.border_title = "Base model"
                yield DataTable(id="model-table", cursor_type="row", zebra_stripes=True)
            yield Input(placeholder="…or a model folder / hub id (org/name), then enter", id="model-path")
            yield Static(id="error", classes="error")
            yield Static(id="model-detail", classes="detail")
        yield from self.footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, key in (
            ("Model", "id"),
            ("Params", "params"),
            ("Architecture", "arch"),
            ("Size", "size"),
            ("Offline", "offline"),
            ("From", "source"),
        ):
            table.add_column(label, key=key)
        self.query_one("#error").display = False
        table.loading = True
        table.focus()
        from sage_ft_tui.engine.models.catalog import catalogue

        self.app.background(self, "model.scan", catalogue, self._show)

    def _show(self, entries, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        table = self.query_one(DataTable)
        table.loading = False
        if err is not None:
            self.say_error(err)
            return
        for e in entries:
            self._add(e)
        want = self.app.state.model
        if want in self.entries:
            table.move_cursor(row=list(self.entries).index(want))
        self._highlight()

    def _add(self, e) -> None:
        if e.id in self.entries:
            return
        self.entries[e.id] = e
        offline = Text("✓ yes", style=S("$success")) if e.offline else Text("download", style=S("$warning"))
        self.query_one(DataTable).add_row(
            Text(e.id, overflow="ellipsis"),
            e.params_label,
            e.architecture or "?",
            e.size_label,
            offline,
            SOURCE_LABEL.get(e.source, e.source),
            key=e.id,
        )

    def _highlight(self) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        self.chosen = self.entries.get(key)
        self._detail()

    def _detail(self) -> None:
        e = self.chosen
        w = self.query_one("#model-detail", Static)
        if e is None:
            w.update("")
            return
        t = Text()
        t.append("Chosen: ", style="dim")
        t.append(e.id, style="bold")
        if e.note:
            t.append(f"  — {e.note}", style="dim")
        w.update(t)
        self.validity_changed()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._highlight()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._highlight()
        self.action_next()

    def action_focus_path(self) -> None:
        self.query_one("#model-path", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.say_error(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        ref = event.value.strip()
        if not ref:
            return
        from sage_ft_tui.engine.models.catalog import describe

        self.app.background(self, "model.describe", lambda: describe(ref), self._described)

    def _described(self, entry, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        if err is not None:
            self.say_error(err)
            self.query_one("#model-path", Input).add_class("-invalid")
            self.chosen = None
            self._detail()
            self.validity_changed()
            return
        self.query_one("#model-path", Input).remove_class("-invalid")
        self._add(entry)
        table = self.query_one(DataTable)
        table.move_cursor(row=list(self.entries).index(entry.id))
        self.chosen = entry
        self._detail()
        table.focus()

    def valid(self) -> bool:
        return self.chosen is not None

    def commit(self) -> None:
        s = self.app.state
        if s.model != self.chosen.id:
            s.inspection = None  # token lengths depend on the tokenizer
        s.model, s.model_entry = self.chosen.id, self.chosen
