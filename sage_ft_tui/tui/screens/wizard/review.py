"""Step 5, Review: the whole config as YAML; save it; start (creates the run folder,
prepares the data, launches the detached worker, opens the monitor)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Static

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.tui.messages import RunStarted
from sage_ft_tui.tui.screens.base import WizardScreen


class ReviewScreen(WizardScreen):
    STEP = "Review"
    BINDINGS = [
        Binding("ctrl+n", "next", "Start training", id="wizard.next", priority=True),
        Binding("ctrl+s", "save", "Save config", id="review.save", priority=True),
        Binding("escape", "back", "Back", id="nav.back"),
    ]

    def __init__(self):
        super().__init__()
        self.cfg = None
        self.error: Optional[SageError] = None
        self.starting = False

    def compose(self) -> ComposeResult:
        yield from self.compose_head()
        with Vertical(classes="body-col"):
            with Horizontal(classes="field", id="review-name-row"):
                yield Label("Run name", classes="flabel")
                yield Input(placeholder="(automatic: task-model-date)", compact=True, id="review-name")
            with VerticalScroll(id="review-box", classes="panel") as v:
                v.border_title = RunLayout(".").config.name
                with Horizontal(id="review-cols"):
                    yield Static(id="review-left")
                    yield Static(id="review-right")
            yield Static(id="error", classes="error")
        yield from self.footer()

    def on_mount(self) -> None:
        self.query_one("#error").display = False
        if self.app.state.name:
            self.query_one("#review-name", Input).value = self.app.state.name
        self._show_config()
        self.query_one("#review-box").focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.app.state.name = event.value.strip() or None
        self._show_config()

    def _show_config(self) -> None:
        try:
            self.cfg, self.error = self.app.state.build_config(), None
        except SageError as e:
            self.cfg, self.error = None, e
        self.say_error(self.error)
        if self.cfg is not None:
            text = self.cfg.to_yaml()
            for root, short in ((str(self.app.cwd), "."), (str(Path.home()), "~")):
                text = text.replace(f" {root}/", f" {short}/")
            left, right = split_yaml(text, ("lora", "training"))
            self.query_one("#review-left", Static).update(highlight_yaml(left))
            self.query_one("#review-right", Static).update(highlight_yaml(right))
        self.validity_changed()

    def valid(self) -> bool:
        return self.cfg is not None and self.error is None and not self.starting

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action == "save":
            return True if self.cfg is not None else None
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
        self.notify(f"saved {target}\nrun it later: sage-ft-tui run {target.name}", title="Config saved")

    def action_next(self) -> None:
        if not self.valid():
            self.app.bell()
            return
        cfg = self.cfg
        self.starting = True
        self.validity_changed()
        self.query_one("#review-box").loading = self.app.live
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
        self.query_one("#review-box").loading = False
        if err is not None:
            self.say_error(err)
            self.validity_changed()
            return
        run, warning = result
        if warning:  # both runs go on; the user should know they share the GPU
            self.app.notify(warning, title="Shared GPU", severity="warning", timeout=10)
        self.post_message(RunStarted(run))


_LINE = re.compile(r"^(\s*)(- )?([^:\s][^:]*):(\s*)(.*)$")


def split_yaml(text: str, right_keys: tuple[str, ...]) -> tuple[str, str]:
    left: list[str] = []
    right: list[str] = []
    target = left
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("- "):
            target = right if line.split(":", 1)[0] in right_keys else left
        target.append(line)
    return "\n".join(left), "\n".join(right)


def highlight_yaml(text: str) -> Text:
    """Keys, values and nulls told apart (our YAML is simple: safe_dump of a mapping)."""
    out = Text()
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            indent, dash, key, space, value = m.groups()
            out.append(indent + (dash or ""))
            out.append(key, style="bold #61afef" if not indent else "#56b6c2")
            out.append(":" + space)
            out.append(value, style=_value_style(value))
        else:
            stripped = line.lstrip()
            out.append(line[: len(line) - len(stripped)])
            out.append(stripped, style=_value_style(stripped.removeprefix("- ")))
        out.append("\n")
    return out


def _value_style(v: str) -> str:
    if v in ("null", "[]", "{}", ""):
        return "dim"
    if v in ("true", "false"):
        return "#c678dd"
    if re.fullmatch(r"-?[0-9.e+-]+", v):
        return "#d19a66"
    return "#98c379"
