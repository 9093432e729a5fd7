"""The Textual app: Home, the wizard steps, the live monitor and the runs list.

`run_app(attach=None)` is what the CLI calls; `attach` (a run folder) opens its monitor.
State lives in one `WizardState` owned by the App, and so does navigation: the wizard's
step order (`flow.WizardFlow`) and one `open(route, run)` over the route table
(`routes.ROUTES`); screens post `StepDone` / `RunStarted` or call `open`, never import
each other. Every engine call runs in a thread worker (`App.background`) and comes back
as a typed message. With `live=False` (snapshot tests, screenshots) the same calls run
inline and nothing polls: frames are deterministic. Unexpected exceptions are written,
with their traceback, to `errors_log()`; the screen shows one line.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import get_current_worker

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.tui.flow import WizardFlow
from sage_ft_tui.tui.messages import JobDone, RunStarted, StepDone
from sage_ft_tui.tui.palette import RunCommands
from sage_ft_tui.tui.routes import ROUTES
from sage_ft_tui.tui.state import WizardState

MIN_SIZE = (80, 24)  # below this the screens cannot show every panel: a notice says so


def errors_log() -> Path:
    """Where the TUI writes the traceback of an unexpected exception (the user can find it)."""
    from sage_ft_tui.engine.paths import tui_errors_log

    return tui_errors_log()


def log_exception(exc: BaseException) -> Path:
    path = errors_log()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            fh.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    except OSError:
        pass
    return path


class SageApp(App):
    TITLE = "sage-ft-tui"
    SUB_TITLE = "LoRA fine-tuning"
    CSS_PATH = "app.tcss"  # beside this module, inside the package
    COMMANDS = App.COMMANDS | {RunCommands}
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, tooltip="Quit (runs keep going)"),
        Binding("f1", "toggle_keys", "Keys", id="app.keys", show=False, priority=True),
        Binding("question_mark", "toggle_keys", "Keys", id="app.keys_help", show=False),
        # closes the key panel first; when it is not shown escape goes on to the screen's own (Back)
        Binding("escape", "hide_keys", "Close keys", id="app.keys_close", show=False, priority=True),
    ]

    def __init__(
        self,
        attach: Optional[str] = None,
        *,
        live: bool = True,
        clock: Callable[[], float] = time.time,
        cwd: Optional[str] = None,
        initial: Optional[Callable[[SageApp], Iterable[Screen]]] = None,
    ):
        super().__init__()
        self.attach = attach
        self.live = live
        self.clock = clock
        self.cwd = Path(cwd or Path.cwd())
        self.state = WizardState()
        self.flow = WizardFlow(task=lambda: self.state.task)
        self._initial = initial

    # ---- the key panel (F1 or ?; F1 or escape closes it) ------------------------------
    def keys_shown(self) -> bool:
        from textual.widgets import HelpPanel

        return bool(self.screen.query(HelpPanel))

    def action_toggle_keys(self) -> None:
        if self.keys_shown():
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_hide_keys(self) -> None:
        self.action_hide_help_panel()

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action == "hide_keys":
            return self.keys_shown()  # else escape is the screen's
        return True

    # ---- screens -------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        from sage_ft_tui.tui.screens.home import HomeScreen

        return HomeScreen()

    def on_mount(self) -> None:
        if self._initial is not None:
            for screen in self._initial(self):
                self.push_screen(screen)
        elif self.attach:
            self.open_monitor(self.attach)
        self.call_after_refresh(self._size_notice)

    def go_home(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()
        home = self.screen_stack[0]
        if hasattr(home, "refresh_runs"):
            home.refresh_runs()

    def open(self, route: str, run: str | Path | None = None, *, from_wizard: bool = False) -> None:
        """Open a run screen or an after-training screen by route name (see routes.ROUTES)."""
        if from_wizard:
            self.go_home()
        if route not in ROUTES:
            self.notify(f"{route} is not available in this version.", severity="warning")
            return
        self.push_screen(ROUTES[route][0](str(run) if run is not None else None))

    def open_monitor(self, run: str | Path, *, from_wizard: bool = False) -> None:
        self.open("monitor", run, from_wizard=from_wizard)

    # ---- the wizard --------------------------------------------------------------------
    def start_wizard(self, *, quick_task: Optional[str] = None) -> None:
        """A new fine-tune from the Task step, or a Quickstart: task given, an available
        model chosen (a cached default, another cached model, else tiny-demo), then Data."""
        self.state.reset()
        self.flow.quick = bool(quick_task)
        if not quick_task:
            self.push_screen(self.flow.screen(self.flow.first()))
            return
        from sage_ft_tui.engine.models.listing import catalogue

        self.state.task = quick_task
        self.background(self, "wizard.quick", catalogue, self._quick_model)

    def _quick_model(self, entries, err: Optional[SageError]) -> None:
        from sage_ft_tui.engine.models.known import DEFAULTS
        from sage_ft_tui.engine.models.tiny import TINY_NAME as TINY

        entries = entries or []
        usable = [e for e in entries if e.offline and e.id != TINY]
        chosen = next((e for e in usable if e.id in DEFAULTS), usable[0] if usable else None)
        if chosen is None:
            chosen = next((e for e in entries if e.id == TINY), None)
            if self.live:
                self.notify(
                    f"{DEFAULTS[0]} is not downloaded; Quickstart uses {TINY} (change it with ctrl+o on Data).",
                    title="Quickstart",
                    timeout=8,
                )
        self.state.model = chosen.id if chosen else TINY
        self.state.model_entry = chosen
        self.push_screen(self.flow.screen(self.flow.first()))

    def wizard_goto(self, step: str) -> None:
        """Go back to an earlier step (e.g. Data → Model to change an unavailable model)."""
        names = [type(s).__dict__.get("STEP") for s in self.screen_stack]
        if step in names:
            while getattr(self.screen, "STEP", None) != step:
                self.pop_screen()
            return
        if step in self.flow.skipped:
            self.flow.quick = False  # the user wants to choose it after all
        self.push_screen(self.flow.screen(step))

    def on_step_done(self, message: StepDone) -> None:
        nxt = self.flow.after(message.step)
        if nxt is not None:
            self.push_screen(self.flow.screen(nxt))

    def on_run_started(self, message: RunStarted) -> None:
        self.open("monitor", message.run, from_wizard=True)

    def on_resize(self, event) -> None:
        self.call_after_refresh(self._size_notice)

    def _size_notice(self) -> None:
        from sage_ft_tui.tui.screens.base import TooSmall

        width, height = self.size
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        shown = isinstance(self.screen, TooSmall)
        if small and not shown:
            self.push_screen(TooSmall(width, height, MIN_SIZE))
        elif small and shown:
            self.screen.resized(width, height)
        elif shown:
            self.pop_screen()

    # ---- engine calls off the UI thread ----------------------------------------------
    def background(
        self, owner, name: str, fn: Callable[[], Any], done: Callable[[Any, Optional[SageError]], None]
    ) -> None:
        """Run `fn` in a thread worker; `done(result, error)` runs on the UI thread.

        One exclusive group per `name`: a newer call cancels the older one, whose result is
        then dropped (a stale inspection never overwrites a newer one). In static mode
        (live=False) `fn` runs inline, so frames do not depend on timing."""
        if not self.live:
            result, err = _call(fn)
            done(result, err)
            return

        def job() -> None:
            result, err = _call(fn)
            if not get_current_worker().is_cancelled:
                owner.post_message(JobDone(name, result, err, done))

        owner.run_worker(job, thread=True, name=name, group=name, exclusive=True, exit_on_error=False)

    def on_job_done(self, message: JobDone) -> None:  # messages that bubble up to the app
        message.callback(message.result, message.error)

    def _handle_exception(self, error: Exception) -> None:
        # Textual's one hook for an exception nothing handled: keep its traceback for the user
        log_exception(error)
        super()._handle_exception(error)

    # ---- command palette: the current screen's actions --------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        seen = set()
        for binding in getattr(screen, "BINDINGS", []):
            if not isinstance(binding, Binding) or not binding.description or binding.action in seen:
                continue
            seen.add(binding.action)
            if screen.check_action(binding.action, ()) is not True:
                continue
            yield SystemCommand(
                binding.description,
                f"{binding.key_display or binding.key} · this screen",
                _runner(screen, binding.action),
            )
        yield from super().get_system_commands(screen)


def _runner(screen: Screen, action: str) -> Callable[[], Any]:
    async def run() -> None:
        await screen.run_action(action)

    return run


def _call(fn: Callable[[], Any]) -> tuple[Any, Optional[SageError]]:
    try:
        return fn(), None
    except SageError as e:
        return None, e
    except Exception as e:  # an engine bug must not kill the UI: one line here, the traceback in the log
        where = log_exception(e)
        return None, SageError(f"{type(e).__name__}: {e}", hint=f"this is a bug; traceback in {where}", kind="internal")


def run_app(attach: Optional[str] = None) -> None:
    """Entry point for the CLI: the wizard, or the monitor of `attach` (a run folder)."""
    from sage_ft_tui.tui.widgets.image import prime

    prime()  # the terminal is asked what pictures it draws before Textual takes it over
    SageApp(attach=attach).run()


__all__ = ["SageApp", "run_app", "errors_log", "MIN_SIZE"]
