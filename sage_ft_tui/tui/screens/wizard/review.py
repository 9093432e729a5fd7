"""Step 5, Review: every key of the run config, grouped and explained (its help from the
config's field descriptions), validated as you type; beside it what the config means:
optimizer steps, tokens per step, the memory estimate and an estimated duration. ctrl+s
saves the config; ctrl+n starts the run (creates the folder, prepares the data, launches
the detached worker, opens the monitor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Collapsible, Input, Label, Static

from sage_ft_tui.engine.config.schema import RunConfig, field_help, get_dotted
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.plan import plan, plan_lines, with_duration
from sage_ft_tui.tui.messages import RunStarted
from sage_ft_tui.tui.screens.base import WizardScreen
from sage_ft_tui.tui.screens.wizard.review_keys import (
    PATH_KEYS,
    REWARDS_KEY,
    bad_line,
    choices,
    field_id,
    grouped_keys,
    in_review_words,
    is_open,
    matches,
    parse_value,
    show_value,
)


class ReviewScreen(WizardScreen):
    STEP = "Review"
    BINDINGS = [
        Binding("ctrl+n", "next", "Start training", id="wizard.next", priority=True),
        Binding("ctrl+s", "save", "Save config", id="review.save", priority=True),
        Binding("ctrl+f", "find", "Find", id="review.find", priority=True, tooltip="Find a setting by name"),
        Binding("slash", "find", "Find", id="review.find_slash", show=False),
        Binding("escape", "back", "Back", id="nav.back"),
    ]

    def __init__(self):
        super().__init__()
        self.cfg: Optional[RunConfig] = None
        self.error: Optional[SageError] = None
        self.starting = False
        self.bad: dict[str, str] = {}  # key -> why the typed text is refused

    def compose(self) -> ComposeResult:
        yield from self.compose_head()
        helps = field_help()
        with Vertical(classes="body-col"):
            with Horizontal(classes="field", id="review-name-row"):
                yield Label("Run name", classes="flabel")
                yield Input(placeholder="(automatic)", compact=True, id="review-name")
                yield Label("Find", classes="flabel", id="review-find-label")
                yield Input(placeholder="ctrl+f: a setting's name", compact=True, id="review-find")
            with Horizontal(id="review-cols"):
                with VerticalScroll(id="review-form", classes="panel") as v:
                    v.border_title = "Settings (tab: next field)"
                    v.border_subtitle = "enter on a ▶ title opens it"
                    for title, keys in grouped_keys(self.app.state.task):
                        with Collapsible(title=title, collapsed=not is_open(title), id=f"sec-{title.lower()}"):
                            for key in keys:
                                with Horizontal(classes="field", id=f"row-{field_id(key)}"):
                                    yield Label(key.split(".", 1)[-1], classes="ckey")  # the title names the section
                                    yield Input(compact=True, id=field_id(key))
                                hint = helps.get(key, "")
                                opts = choices(key)
                                if opts:
                                    hint += f" [{' | '.join(opts)}]"
                                yield Static(hint, classes="chelp", markup=False, id=f"help-{field_id(key)}")
                with VerticalScroll(id="review-plan", classes="panel") as v:
                    v.border_title = "What it means"
                    yield Static(id="review-figures")
                    yield Static(id="review-mem")
                    yield Static(id="review-origins")
            yield Static(id="error", classes="error")
        yield from self.footer()

    def on_mount(self) -> None:
        self.query_one("#error").display = False
        self.keys = [k for _t, keys in grouped_keys(self.app.state.task) for k in keys]
        self._filling = True
        self._initial: dict[str, str] = {}  # field id -> the value put there, until its Changed arrives
        if self.app.state.name:
            self.query_one("#review-name", Input).value = self._initial["review-name"] = self.app.state.name
        self._show_config()
        if self.cfg is not None:
            raw = self.cfg.model_dump(mode="json")
            for key in self.keys:
                value = self._initial[field_id(key)] = self._shown(key, get_dotted(raw, key))
                self.query_one(f"#{field_id(key)}", Input).value = value
        self.call_after_refresh(self._filled)
        name = self.query_one("#review-name", Input)
        name.cursor_blink = self.app.live  # static frames (snapshots) must not depend on the blink
        name.focus()  # a typed name is the first thing to set

    # ---- find a setting: filter the sections, enter jumps to the first match -------------
    def action_find(self) -> None:
        self.query_one("#review-find", Input).focus()

    def action_back(self) -> None:
        """Escape in the find box clears the filter first (every setting shown again); then Back."""
        find = self.query_one("#review-find", Input)
        if find.value.strip():
            find.value = ""
            self._filter("")
            return
        super().action_back()

    def _found(self, query: str) -> list[str]:
        hits = [k for k in self.keys if matches(k, query)]
        leaf = query.strip().lower().replace(" ", "_")
        hits.sort(key=lambda k: not k.rsplit(".", 1)[-1].startswith(leaf))  # a name that starts so, first
        return hits

    def _filter(self, query: str) -> None:
        """Only the settings whose name holds every typed word; their sections opened."""
        query = query.strip()
        if query == getattr(self, "_filtered", ""):
            return
        self._filtered = query
        hits = set(self._found(query)) if query else None
        with self.app.batch_update():
            for title, keys in grouped_keys(self.app.state.task):
                sec = self.query_one(f"#sec-{title.lower()}", Collapsible)
                shown = [k for k in keys if hits is None or k in hits]
                for key in keys:
                    shown_here = hits is None or key in hits
                    self.query_one(f"#row-{field_id(key)}").display = shown_here
                    self.query_one(f"#help-{field_id(key)}").display = shown_here
                sec.display = bool(shown)
                sec.collapsed = not is_open(title) if hits is None else not shown

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "review-find":
            return
        if getattr(self, "_find_timer", None) is not None:
            self._find_timer.stop()
        self._filter(event.value)
        hits = self._found(event.value) if event.value.strip() else []
        if not hits:
            self.app.bell()
            return
        w = self.query_one(f"#{field_id(hits[0])}", Input)
        w.focus()
        self.call_after_refresh(lambda: w.scroll_visible(animate=False))

    def _shown(self, key: str, value: Any) -> str:
        if key == REWARDS_KEY and isinstance(value, list):  # file rewards relative, as the Method step shows them
            value = [str(v).removeprefix(f"{self.app.cwd}/") for v in value]
        if key in PATH_KEYS:
            root = f"{self.app.cwd}/"
            if isinstance(value, list):
                value = [str(v).removeprefix(root) for v in value]
            elif isinstance(value, str):
                value = value.removeprefix(root)
        return show_value(value)

    def _parsed(self, key: str, text: str) -> Any:
        value = parse_value(text)
        if key == REWARDS_KEY and isinstance(value, list):  # file.py:function relative to the app's folder
            cwd = self.app.cwd
            value = [
                str(cwd / v) if isinstance(v, str) and ".py:" in v and not v.startswith(("/", "~")) else v
                for v in value
            ]
        if key in PATH_KEYS:  # relative paths are relative to where the app started
            cwd = self.app.cwd

            def absolute(v: Any) -> Any:
                return str(cwd / v) if isinstance(v, str) and v and not v.startswith(("/", "~")) else v

            value = [absolute(v) for v in value] if isinstance(value, list) else absolute(value)
        return value

    def _filled(self) -> None:
        self._filling = False

    def on_input_changed(self, event: Input.Changed) -> None:
        if self._filling or self._initial.pop(event.input.id or "", None) == event.value:
            return  # the fill's own echo, not an edit: ~70 of them would each rebuild the config
        if event.input.id == "review-find":  # filtered once typing pauses: each pass lays out every field
            if getattr(self, "_find_timer", None) is not None:
                self._find_timer.stop()
            if self.app.live:
                self._find_timer = self.set_timer(0.25, lambda: self._filter(event.value))
            else:
                self._filter(event.value)
            return
        if event.input.id == "review-name":
            self.app.state.name = event.value.strip() or None
        else:
            key = next((k for k in self.keys if field_id(k) == event.input.id), None)
            if key is not None:
                self._edit(key, event.input)
        self._show_config()

    def _edit(self, key: str, w: Input) -> None:
        """Try the typed value alone: refused (marked, explained) or kept as an override."""
        s = self.app.state
        value = self._parsed(key, w.value)
        try:
            s.build_config({key: value})
        except SageError as e:
            self.bad[key] = bad_line(key, w.value, e)
            w.add_class("-invalid")
            return
        self.bad.pop(key, None)
        w.remove_class("-invalid")
        base = s.base_config().model_dump(mode="json")
        if get_dotted(base, key) == value:
            s.overrides.pop(key, None)
        else:
            s.overrides[key] = value

    def _show_config(self) -> None:
        built = None
        try:
            built = self.app.state.built()
            self.cfg, self.error = built.config, None
        except SageError as e:  # a combination of settings refused: named as this screen shows them
            self.cfg, self.error = (
                None,
                SageError(in_review_words(e.message), hint=in_review_words(e.hint), kind=e.kind),
            )
        self._origins(built)
        if self.bad and self.error is None:  # one short line per marked field
            self.error = SageError("\n  ".join(self.bad.values()))
        self.say_error(self.error)
        self._figures()
        self.validity_changed()

    def _origins(self, built) -> None:
        """Where each setting not at its default comes from (the engine's builder says), and the
        settings this run will not read."""
        w = self.query_one("#review-origins", Static)
        if built is None:
            w.update("")
            return
        from sage_ft_tui.engine.config.build import ignored_settings

        t = Text()
        t.append("where the settings come from\n", style="dim")
        for where, items in built.origin_groups(width=200):
            t.append(f"{where}: ", style="bold")
            here = f"{self.app.cwd}/"  # paths as the fields show them: relative to where the app started
            t.append(", ".join(i.split(".", 1)[-1].replace(here, "") for i in items) + "\n")
        for line in [*built.warnings, *ignored_settings(built.config)]:
            t.append(line + "\n", style="italic")
        w.update(t)

    def _figures(self) -> None:
        w = self.query_one("#review-figures", Static)
        if self.cfg is None:
            w.update("")
            return
        cfg, ins = self.cfg, self.app.state.inspection
        self.app.background(
            self, "review.plan", lambda: with_duration(plan(cfg, ins), cfg.model.name, cfg.task), self._show_plan
        )
        snap = self.app.state.hardware
        if snap is not None:
            from sage_ft_tui.engine.hardware.estimate import estimate_for_config

            self.app.background(self, "review.memory", lambda: estimate_for_config(cfg, snap), self._show_mem)

    def _show_plan(self, p, err: Optional[SageError]) -> None:
        if not self.is_attached or p is None:
            return
        from rich.console import Group
        from rich.table import Table

        grid = Table.grid(padding=(0, 1))  # a value that wraps stays in its column
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        for label, value in plan_lines(p):
            grid.add_row(label, Text(value, style="bold" if label in ("total steps", "duration") else ""))
        self.query_one("#review-figures", Static).update(Group(grid, Text(p.basis, style="italic dim")))

    def _show_mem(self, est, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        w = self.query_one("#review-mem", Static)
        if err is not None or est is None:
            w.update(Text(f"memory: unavailable ({err.message if err else '?'})", style="dim"))
            return
        style = "bold green" if est.fits else "bold red" if est.fits is False else "bold"
        w.update(Text.assemble(("memory\n", "dim"), (est.summary(), style)))

    def valid(self) -> bool:
        return self.cfg is not None and self.error is None and not self.starting

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action == "save":
            return self.cfg is not None  # hidden while the config does not validate (Next stays dimmed)
        return super().check_action(action, parameters)

    def action_save(self) -> None:
        if self.cfg is None:
            return
        target = self.app.cwd / f"{self.cfg.name or 'sage-ft-config'}.yaml"
        try:
            self.cfg.save(target)
        except OSError as e:
            self.notify(f"could not save {target}: {e.strerror}", severity="error")
            return
        folder = str(target.parent).replace(str(Path.home()), "~", 1)
        self.notify(
            f"{target.name} in {folder}: every setting shown here, to keep or share; ctrl+n starts training now",
            title="Config saved",
        )

    def action_next(self) -> None:
        if not self.valid():
            self.app.bell()
            return
        cfg = self.cfg
        self.starting = True
        self.validity_changed()
        self.query_one("#review-cols").loading = self.app.live
        self.notify("Creating the run folder and preparing the data…", timeout=4)

        def start():
            from sage_ft_tui.engine.runs.start import start_run

            started = start_run(cfg)  # builds tiny-demo in a child process: torch stays out of the TUI
            return started.run, "\n".join(started.warnings)

        self.app.background(self, "review.start", start, self._started)

    def _started(self, result, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        self.starting = False
        self.query_one("#review-cols").loading = False
        if err is not None:
            self.say_error(err)
            self.validity_changed()
            return
        run, warning = result
        if warning:  # a GPU shared with another run, settings this run will not read: said, not blocking
            self.app.notify(warning, title="Before it trains", severity="warning", timeout=10)
        self.post_message(RunStarted(str(run)))
