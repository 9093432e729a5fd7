"""Step 2, Model: tiny-demo, the defaults, every model in the local Hugging Face cache, model
folders here and those earlier runs trained from, or any path / hub id typed in.

One field searches the list as you type and validates a typed folder or hub id (exists?
config.json? weights? cached?). What cannot be had now (offline, not cached) is dimmed
before it is chosen; choosing it says on this screen how to go on."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import fmt_duration
from sage_ft_tui.engine.models.catalog import WAY_FORWARD, is_search, matches, needs_download, unavailable
from sage_ft_tui.engine.models.tiny import TINY_NAME
from sage_ft_tui.tui.messages import BuildProgress
from sage_ft_tui.tui.screens.base import WizardScreen
from sage_ft_tui.tui.widgets.charts import S

# (header, key, width); the Model column takes what is left of the terminal's width.
COLUMNS = (("Params", "params", 6), ("Size", "size", 8), ("Last used", "used", 9), ("Available", "avail", 20))
ARCH = ("Architecture", "arch", 22)  # on terminals this wide or wider (else in the detail line)
ARCH_FROM = 110
MIN_ID_WIDTH = 16


class ModelScreen(WizardScreen):
    STEP = "Model"
    BINDINGS = WizardScreen.BINDINGS + [
        Binding("ctrl+l", "focus_path", "Search / path", id="model.path"),
        Binding("slash", "focus_path", "Search", id="model.search", show=False),
        Binding("down", "to_table", "To the list", id="model.list", show=False),
    ]

    def __init__(self):
        super().__init__()
        self.entries: dict[str, object] = {}  # id -> ModelEntry, in the catalogue's order
        self.pinned: list[str] = []  # ids typed in and used: always shown
        self.offline = ""  # why uncached models cannot be fetched now ('' when they can)
        self.probed = False  # whether `offline` is known (a switch, or the hub was tried)
        self.chosen = None  # ModelEntry
        self.query_text = ""
        self.families: dict[str, str] = {}  # folder -> its family line (engine.models.family)
        self.building = False  # tiny-demo is being built (first use), in a thread worker

    def compose(self) -> ComposeResult:
        yield from self.compose_head()
        with Vertical(classes="body-col"):
            with Vertical(id="model-box", classes="panel") as v:
                v.border_title = "Base model"
                yield DataTable(id="model-table", cursor_type="row", zebra_stripes=True)
            yield Input(placeholder="search the cache, or a model folder / hub id (org/name)", id="model-path")
            yield Static(id="model-check")
            yield Static(id="model-build")
            yield Static(id="error", classes="error")
            yield Static(id="model-detail", classes="detail")
            yield Static(id="model-family", classes="detail")
        yield from self.footer()

    def on_mount(self) -> None:
        for wid in ("#error", "#model-check", "#model-build"):
            self.query_one(wid).display = False
        table = self.query_one(DataTable)
        self._columns()
        table.loading = True
        table.focus()
        from sage_ft_tui.engine.models.listing import catalogue
        from sage_ft_tui.engine.models.resolve import offline_switch

        cwd = self.app.cwd
        self.app.background(self, "model.scan", lambda: catalogue(cwd=cwd), self._scanned)
        # Known at once from the switches. The hub itself is tried only when the user goes on
        # with a model that must be downloaded: a local choice never opens a connection.
        self.offline = offline_switch()
        self.probed = bool(self.offline)

    def _scanned(self, entries, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        self.query_one(DataTable).loading = False
        if err is not None:
            self.say_error(err)
            return
        for e in entries:
            self.entries.setdefault(e.id, e)
        self._fill(prefer=self.app.state.model)

    def _offline_known(self, why, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        self.probed = True
        self.offline = why or ""
        self._fill(prefer=self.chosen.id if self.chosen else None)
        if self.offline:
            self.action_next()  # says why, with the way forward
        elif self.chosen is not None:
            super().action_next()

    # ---- the table ---------------------------------------------------------------------
    def _columns(self) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        cols = self._shown_columns()
        rest = sum(w + 2 for _h, _k, w in cols) + 4  # cell padding, the panel's border
        table.add_column("Model", key="id", width=max(MIN_ID_WIDTH, self.app.size.width - rest - 2))
        for header, key, width in cols:
            table.add_column(header, key=key, width=width)

    def _shown_columns(self) -> tuple:
        return (ARCH, *COLUMNS) if self.app.size.width >= ARCH_FROM else COLUMNS

    def on_resize(self) -> None:
        if self.entries:
            self._columns()
            self._fill(prefer=self.chosen.id if self.chosen else None)

    def shown(self) -> list[str]:
        """The ids the table shows: those the search matches, and those typed in."""
        q = self.query_text.strip()
        return [i for i, e in self.entries.items() if not q or i in self.pinned or matches(e, q)]

    def _fill(self, prefer: Optional[str] = None) -> None:
        table = self.query_one(DataTable)
        table.clear()
        now = self.app.clock()
        for i in self.shown():
            e = self.entries[i]
            why = unavailable(e, self.offline)
            dim = "dim" if why else ""
            used = f"{fmt_duration(now - e.last_used)}" if e.last_used else "—"
            arch = (
                [Text(e.architecture or "?", style=dim, overflow="ellipsis")] if ARCH in self._shown_columns() else []
            )
            table.add_row(
                Text(self._label(e), style=dim, overflow="ellipsis", no_wrap=True),
                *arch,
                Text(e.params_label, style=dim),
                Text(e.size_label, style=dim),
                Text(used, style=dim),
                self._available(e, why),
                key=i,
            )
        keys = [k.value for k in table.rows]
        if prefer in keys:
            table.move_cursor(row=keys.index(prefer))
        self._highlight()

    def _label(self, e) -> str:
        """A folder relative to where the app started (or ~); anything else by its id."""
        if e.source != "path" or not e.path:
            return e.id
        p = Path(e.path)
        for root, prefix in ((Path(self.app.cwd), "./"), (Path.home(), "~/")):
            if p != root and p.is_relative_to(root):
                return prefix + str(p.relative_to(root))
        return str(p)

    def _available(self, e, why: str) -> Text:
        if why:
            return Text(why, style="dim")
        if not e.offline:
            return Text("download", style=S("$warning"))
        label = {"builtin": "✓ built in", "path": "✓ folder"}.get(e.source, "✓ cached")
        return Text(label, style=S("$success"))

    def _highlight(self) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            self.chosen = None
        else:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.chosen = self.entries.get(key)
        self._detail()

    def _detail(self) -> None:
        e = self.chosen
        w = self.query_one("#model-detail", Static)
        self._maybe_build(e)
        self.validity_changed()
        self._family(e)
        if e is None:
            w.update("")
            return
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("Chosen: ", style="dim")
        t.append(self._label(e), style="bold")
        why = unavailable(e, self.offline)
        if why:
            t.append(f"  — {why}: {WAY_FORWARD}", style=S("$warning"))
        else:
            bits = [x for x in (e.architecture, f"used by {e.last_run}" if e.last_run else "", e.note) if x]
            if bits:
                t.append("  — " + " · ".join(bits), style="dim")
        w.update(t)

    def _family(self, e) -> None:
        """The chosen model's family, end of turn and system-prompt placement (read from its
        folder in a thread: config.json and the chat template)."""
        w = self.query_one("#model-family", Static)
        path = e.path if e is not None and e.path and (Path(e.path) / "config.json").is_file() else None
        if path is None:
            w.update("")
            return
        if path in self.families:
            line = self.families[path]
            t = Text(no_wrap=True, overflow="ellipsis")
            t.append("Family: ", style="dim")
            t.append(line)
            w.update(t)
            return
        from sage_ft_tui.engine.models.family_facts import family_summary

        self.app.background(self, "model.family", lambda: (path, family_summary(Path(path))), self._family_known)

    def _family_known(self, result, err: Optional[SageError]) -> None:
        if not self.is_attached or result is None:
            return
        path, line = result
        self.families[path] = line
        if self.chosen is not None and self.chosen.path == path:
            self._family(self.chosen)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if (
            table.row_count
            and event.row_key.value != table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        ):
            return  # a refill's passing highlight: the cursor is elsewhere now
        moved = self.chosen is None or event.row_key.value != self.chosen.id
        if self.focused is table and moved:  # the user moved (not a refill while typing)
            self.say_error(None)
        self._highlight()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._highlight()
        self.action_next()

    # ---- tiny-demo, built on first use (about a minute on a small CPU) -------------------
    def _maybe_build(self, e) -> None:
        """Build tiny-demo in a worker the first time it is chosen; the screen keeps answering."""
        if e is None or e.id != TINY_NAME or self.building:
            return
        from sage_ft_tui.engine.models.tiny import is_built

        if is_built():
            return
        from sage_ft_tui.engine.models.tiny import ensure_tiny_model

        self.building = True
        self._build_status(0.0, "starting")

        def progress(share: float, what: str) -> None:
            if not self.app.is_running:  # the app quit: the engine stops the build's child
                raise SageError("the app closed while tiny-demo was being built", kind="model")
            self.post_message(BuildProgress("model.tiny", share, what))

        self.app.background(self, "model.tiny", lambda: ensure_tiny_model(progress=progress), self._built)

    def _build_status(self, share: float, what: str) -> None:
        w = self.query_one("#model-build", Static)
        w.display = True
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"building {TINY_NAME}… {share:.0%}", style=S("$warning"))
        t.append(f"  {what} · first use only, about a minute; Next once it is built", style="dim")
        w.update(t)

    def on_build_progress(self, message: BuildProgress) -> None:
        if self.building and message.name == "model.tiny" and self.is_attached:
            self._build_status(message.share, message.what)

    def _built(self, path, err: Optional[SageError]) -> None:
        self.building = False
        if not self.is_attached:
            return
        self.query_one("#model-build").display = False
        if err is not None:
            self.say_error(err)
            self.validity_changed()
            return
        from sage_ft_tui.engine.models.catalog import tiny_entry

        self.entries[TINY_NAME] = tiny_entry()
        self._fill(prefer=self.chosen.id if self.chosen else None)

    # ---- search, and a typed folder or hub id --------------------------------------------
    def action_focus_path(self) -> None:
        self.query_one("#model-path", Input).focus()

    def action_to_table(self) -> None:
        table = self.query_one(DataTable)
        if self.focused is self.query_one("#model-path") and table.row_count:
            table.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.say_error(None)
        event.input.remove_class("-invalid")
        self.query_text = event.value
        self._fill(prefer=self.chosen.id if self.chosen else None)
        ref = event.value.strip()
        check = self.query_one("#model-check", Static)
        check.display = bool(ref)
        if not ref:
            return
        if self._searching(ref):
            n, total = self.query_one(DataTable).row_count, len(self.entries)
            if n:
                check.update(Text(f"{n} of {total} models match · ↓ picks from the list", style="dim"))
            else:
                check.update(Text(f"no model here matches {ref!r} · type a folder or a hub id (org/name)", "dim"))
            return
        self._check(ref, self._checked)

    def _searching(self, ref: str) -> bool:
        """Words, or the start of a listed id: the list answers. A path, or an id that matches
        nothing listed (or exactly one): checked as a folder / hub id."""
        if is_search(ref):
            return True
        exact = ref.lower() in {i.lower() for i in self.entries}
        return not exact and not ref.startswith(("/", ".", "~")) and self.query_one(DataTable).row_count > 0

    def _check(self, ref: str, done) -> None:
        from sage_ft_tui.engine.models.catalog import check_ref

        known, offline, cwd = dict(self.entries), self.offline, self.app.cwd
        self.app.background(self, "model.check", lambda: (ref, check_ref(ref, known, offline, cwd)), done)

    def _checked(self, result, err: Optional[SageError]) -> None:
        if not self.is_attached or result is None:
            return
        ref, res = result
        if ref != self.query_one("#model-path", Input).value.strip():
            return  # typed on since
        t = Text(res.message, style=S("$success") if res.ok else S("$warning"))
        if res.hint:
            t.append(f" → {res.hint}", style="italic")
        self.query_one("#model-check", Static).update(t)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        ref = event.value.strip()
        table = self.query_one(DataTable)
        if not ref or self._searching(ref):
            if table.row_count:
                table.move_cursor(row=0)
                table.focus()
            return
        self._check(ref, self._use)

    def _use(self, result, err: Optional[SageError]) -> None:
        """Enter on a typed folder or hub id: use it, or say why not and how to go on."""
        if not self.is_attached:
            return
        w = self.query_one("#model-path", Input)
        if err is None and result is not None and result[1].ok:
            entry = result[1].entry
            w.remove_class("-invalid")
            self.entries.setdefault(entry.id, entry)
            if entry.id not in self.pinned:
                self.pinned.append(entry.id)
            self._fill(prefer=entry.id)
            self.query_one(DataTable).focus()
            return
        res = result[1] if result is not None else None
        self.query_one("#model-check").display = False  # the error line says it, with the way forward
        self.say_error(err or SageError(res.message, hint=res.hint, kind="model"))
        w.add_class("-invalid")
        self.chosen = None
        self._detail()

    # ---- next ------------------------------------------------------------------------------
    def valid(self) -> bool:
        if self.chosen is not None and self.chosen.id == TINY_NAME and self.building:
            return False  # Next once it is built
        return self.chosen is not None and not unavailable(self.chosen, self.offline)

    def action_next(self) -> None:
        e = self.chosen
        if e is not None and needs_download(e) and not self.probed:
            from sage_ft_tui.engine.models.resolve import offline_reason

            self.app.background(self, "model.offline", offline_reason, self._offline_known)
            return
        if e is not None and unavailable(e, self.offline):
            why = unavailable(e, self.offline)
            self.say_error(
                SageError(f"{e.id}: {why}" + (f" ({self.offline})" if self.offline else ""), hint=WAY_FORWARD)
            )
            return
        super().action_next()

    def commit(self) -> None:
        s = self.app.state
        if s.model != self.chosen.id:
            s.inspection = None  # token lengths depend on the tokenizer
        s.model, s.model_entry = self.chosen.id, self.chosen
