"""The terminal's own notice when a run the user is watching ends: the bell and OSC 9 (a desktop
notification in iTerm2, WezTerm, Windows Terminal, kitty and ConEmu; other terminals ignore it),
plus a toast in the app for whoever is looking at the screen."""

from __future__ import annotations

import re

from textual.app import App

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # an ESC or BEL in a run's error would end the sequence early


def osc9(text: str) -> str:
    # the text never starts with a digit: ConEmu reads "9;4;..." as a progress report
    return "\x1b]9;sage-ft-tui: " + _CONTROL.sub(" ", text)[:240] + "\x07"


def run_ended(app: App, run_name: str, state: str, detail: str = "") -> None:
    body = f"{run_name} {state}" + (f": {detail}" if detail else "")
    app.notify(body, title="run ended", severity="error" if state == "failed" else "information", timeout=8)
    driver = app._driver  # Textual writes its own OSC sequences (clipboard, pointer) the same way
    if not app.is_headless and driver is not None:
        driver.write("\a" + osc9(body))
