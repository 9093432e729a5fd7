"""What every screen shares: the top bar, the wizard's step strip, next/back and checks."""

from __future__ import annotations

from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from sage_ft_tui.tui.hints import app_hint
from sage_ft_tui.tui.messages import StepDone


class TopBar(Static):
    """One line: product name, where we are, and a right-aligned note."""

    def __init__(self, where: str, note: str = "", **kw):
        super().__init__(**kw)
        self.where = where
        self.note = note

    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" ◆ sage-ft-tui ", style="bold")
        t.append(f" {self.where}")
        if self.note:
            pad = max(1, self.size.width - t.cell_len - len(self.note) - 1)
            t.append(" " * pad)
            t.append(self.note, style="dim")
        return t

    def set_note(self, note: str) -> None:
        self.note = note
        self.refresh()


class StepStrip(Static):
    """Task › Model › Data › Hardware › Review, the current step highlighted."""

    def __init__(self, current: str, steps: tuple[str, ...], skipped: tuple[str, ...] = (), **kw):
        super().__init__(**kw)
        self.current = current
        self.steps = steps
        self.skipped = skipped

    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        idx = self.steps.index(self.current)
        for i, name in enumerate(self.steps):
            if i:
                t.append("  ›  ", style="dim")
            if name == self.current:
                t.append(f" {i + 1} {name} ", style="bold reverse")
            elif name in self.skipped:
                t.append(f"{i + 1} {name}", style="dim strike")
            elif i < idx:
                t.append(f"✓ {name}", style="green")
            else:
                t.append(f"{i + 1} {name}", style="dim")
        return t


class BaseScreen(Screen):
    """Escape goes back; the footer shows the keys."""

    BINDINGS = [Binding("escape", "back", "Back", id="nav.back")]
    WHERE = ""

    def top(self) -> TopBar:
        return TopBar(self.WHERE, id="topbar")

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def footer(self) -> ComposeResult:
        yield Footer(compact=True)  # compact: more actions fit in 80 columns, "^p palette" keeps its space

    def say_error(self, err, target: str = "#error") -> None:
        """Show a SageError (message + hint) in the screen's error line, or clear it."""
        w = self.query_one(target, Static)
        if err is None:
            w.update("")
            w.display = False
            return
        t = Text()
        t.append("✗ ", style="bold")
        t.append(getattr(err, "message", str(err)).replace(f"{self.app.cwd}/", ""))
        hint = app_hint(err)  # the app's keys, not command-line flags, where they differ
        if hint:
            t.append(f"\n  → {hint}", style="italic")
        w.update(t)
        w.display = True


class WizardScreen(BaseScreen):
    """One wizard step. Next (ctrl+n) is greyed until `valid()`; it commits and posts
    `StepDone`: the App's flow decides which step comes next (a step never imports it)."""

    STEP = "Task"
    NEXT_LABEL = "Next"
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", id="wizard.next", priority=True),
        Binding("escape", "back", "Back", id="nav.back"),
    ]

    ready = reactive(False, bindings=True)  # Next enabled; a change refreshes the footer

    def compose_head(self) -> ComposeResult:
        yield TopBar(f"New fine-tune · {self.STEP}", note=self.summary(), id="topbar")
        flow = self.app.flow
        yield StepStrip(self.STEP, flow.steps, skipped=flow.skipped, id="steps")

    def summary(self) -> str:
        s = self.app.state
        bits = [b for b in (s.task, _short(s.model)) if b]
        return " · ".join(bits)

    def valid(self) -> bool:
        return True

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action == "next":
            return True if self.valid() else None  # dimmed, not hidden: it says a next step comes once valid
        return True

    def commit(self) -> None:
        """Store this step's answer in app.state."""

    def action_next(self) -> None:
        if not self.valid():
            self.app.bell()
            return
        self.commit()
        self.post_message(StepDone(self.STEP))

    def validity_changed(self) -> None:
        self.ready = self.valid()


def _short(model: Optional[str]) -> str:
    if not model:
        return ""
    from sage_ft_tui.engine.errors import cut_middle

    return cut_middle(model, 40)  # org and model name both stay


class TooSmall(ModalScreen[None]):
    """Covers the screen while the terminal is below the size every panel needs."""

    DEFAULT_CSS = """
    TooSmall { align: center middle; }
    TooSmall #too-small { width: auto; max-width: 100%; height: auto; padding: 1 2; border: round $warning; }
    """

    def __init__(self, width: int, height: int, need: tuple[int, int]):
        super().__init__()
        self.need = need
        self.width, self.height = width, height

    def compose(self) -> ComposeResult:
        yield Static(self._text(), id="too-small")

    def _text(self) -> str:
        w, h = self.need
        return f"Terminal too small: {self.width}×{self.height} (needs {w}×{h}).\nEnlarge the window; ctrl+q quits."

    def resized(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        if self.is_mounted:
            self.query_one("#too-small", Static).update(self._text())
