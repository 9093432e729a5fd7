"""The Textual app: Home, the wizard steps, the live monitor and the runs list.

`run_app(attach=None)` is what the CLI calls; `attach` (a run folder) opens its monitor.
State lives in one `WizardState` owned by the App; every engine call runs in a thread
worker (`App.background`) and comes back as a typed message. With `live=False` (snapshot
tests, screenshots) the same calls run inline and nothing polls: frames are deterministic.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.tui.messages import JobDone
from sage_ft_tui.tui.state import WizardState


class SageApp(App):
    TITLE = "sage-ft-tui"
    SUB_TITLE = "LoRA fine-tuning"
    CSS_PATH = "app.tcss"  # beside this module, inside the package
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, tooltip="Quit (runs keep going)"),
        Binding("f1", "show_help_panel", "Keys", id="app.keys", show=False),
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
        self._initial = initial

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

    def go_home(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()
        home = self.screen_stack[0]
        if hasattr(home, "refresh_runs"):
            home.refresh_runs()

    def open_monitor(self, run: str | Path, *, from_wizard: bool = False) -> None:
        from sage_ft_tui.tui.screens.monitor import MonitorScreen

        if from_wizard:
            self.go_home()
        self.push_screen(MonitorScreen(str(run)))

    def start_wizard(self, *, quick_task: Optional[str] = None) -> None:
        from sage_ft_tui.tui.screens.wizard.steps import DataScreen, TaskScreen

        self.state.reset()
        if quick_task:
            from sage_ft_tui.engine.models.catalog import DEFAULTS

            self.state.task, self.state.model, self.state.quick = quick_task, DEFAULTS[0], True
            self.push_screen(DataScreen())
        else:
            self.push_screen(TaskScreen())

    # ---- engine calls off the UI thread ----------------------------------------------
    def background(
        self, owner, name: str, fn: Callable[[], Any], done: Callable[[Any, Optional[SageError]], None]
    ) -> None:
        """Run `fn` in a thread worker; `done(result, error)` runs on the UI thread.

        In static mode (live=False) `fn` runs inline, so frames do not depend on timing."""
        if not self.live:
            result, err = _call(fn)
            done(result, err)
            return

        def job() -> None:
            result, err = _call(fn)
            owner.post_message(JobDone(name, result, err, done))

        owner.run_worker(job, thread=True, name=name, group=name, exclusive=True, exit_on_error=False)

    def on_job_done(self, message: JobDone) -> None:  # messages that bubble up to the app
        message.callback(message.result, message.error)

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
    except Exception as e:  # an engine bug must not kill the UI; show it instead
        return None, SageError(
            f"{type(e).__name__}: {e}", hint="this is a bug; the details are in the message", kind="internal"
        )


def run_app(attach: Optional[str] = None) -> None:
    """Entry point for the CLI: the wizard, or the monitor of `attach` (a run folder)."""
    SageApp(attach=attach).run()


__all__ = ["SageApp", "run_app"]
