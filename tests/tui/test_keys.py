"""Every binding in the TUI uses a key a terminal can actually send, told apart from others."""

from __future__ import annotations

import importlib
import pkgutil

from textual.binding import Binding
from textual.dom import DOMNode

import sage_ft_tui.tui

# What a terminal sends for these is another key (ctrl+m is enter, ctrl+i tab, ctrl+h
# backspace, ctrl+[ escape, ctrl+j a newline), or nothing distinct without the kitty protocol.
UNSENDABLE = {
    "ctrl+m",
    "ctrl+i",
    "ctrl+h",
    "ctrl+[",
    "ctrl+left_square_bracket",
    "ctrl+j",
    "ctrl+@",
    "ctrl+space",
    "ctrl+2",
    "ctrl+enter",
    "shift+enter",
    "ctrl+shift+enter",
    "ctrl+backspace",
    "ctrl+tab",
    "ctrl+shift+tab",
}


def _all_bindings():
    for mod in pkgutil.walk_packages(sage_ft_tui.tui.__path__, "sage_ft_tui.tui."):
        module = importlib.import_module(mod.name)
        for cls in vars(module).values():
            if isinstance(cls, type) and issubclass(cls, DOMNode) and cls.__module__ == module.__name__:
                for b in cls.__dict__.get("BINDINGS", []):
                    yield cls, b


def test_no_binding_on_a_key_terminals_cannot_send():
    seen = 0
    for cls, b in _all_bindings():
        binding = b if isinstance(b, Binding) else Binding(*b)
        for key in binding.key.split(","):
            seen += 1
            assert key.strip().lower() not in UNSENDABLE, f"{cls.__name__}: {key!r} ({binding.description})"
    assert seen > 30  # the walk found the screens


async def test_key_panel_opens_with_f1_or_question_mark_and_closes_with_f1_or_escape(world):
    """F1 toggles the key panel, ? opens it; escape closes it without leaving the screen
    (and goes back as before once the panel is closed). ? typed into a field stays text."""
    from . import factory

    app = factory.make_app("model", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen

        def panel() -> bool:
            return bool(screen.query("HelpPanel"))

        await pilot.press("f1")
        assert panel()
        await pilot.press("f1")
        assert not panel()
        await pilot.press("question_mark")
        assert panel()
        await pilot.press("escape")
        assert not panel() and app.screen is screen  # closed, still on the Model step
        await pilot.press("ctrl+l", "question_mark")  # in the search field: a character
        assert screen.query_one("#model-path").value == "?" and not panel()
        await pilot.press("f1", "escape")
        assert not panel() and app.screen is screen
        await pilot.press("escape")
        assert app.screen is not screen  # escape is Back again


# Screens built in parallel, whose keys their owners settle: the Queue screen (u/d move, x remove,
# s/t start/stop the scheduler), the Sweep screen (r Reload). Not checked until then.


def test_a_letter_means_one_thing_on_every_screen():
    """`r` was All runs on Home and Resume on Runs, `x` Delete on Runs and Export on Merge, `s`
    Save now on Runs and Serve on Merge, `d` Demo on Home and Detach on the Monitor: a letter
    keeps its meaning (first word of its description) wherever it is bound. A yes/no dialog's
    y and n are its own."""
    meanings: dict[str, set[str]] = {}
    for cls, b in _all_bindings():
        binding = b if isinstance(b, Binding) else Binding(*b)
        if cls.__name__ == "Confirm":
            continue
        for key in binding.key.split(","):
            if len(key.strip()) == 1 and key.strip().isalpha():
                meanings.setdefault(key.strip(), set()).add(binding.description.split()[0].lower())
    assert {"m", "v", "t", "e", "r", "c", "s", "x", "l", "n", "d"} <= set(meanings), meanings
    assert {k: m for k, m in meanings.items() if len(m) > 1} == {}, meanings


def test_a_ctrl_key_means_one_thing_on_every_screen():
    """ctrl+f was Find on Review and Fit length on the Data step, ctrl+s Save config on Review,
    Start server on Serve and Server on Chat, ctrl+t Files on Data and Chat on Serve. Two
    bindings of one ctrl key agree when they run the same action or their descriptions start
    with the same word (Cancel, Cancel merge)."""
    bound: dict[str, list[tuple[str, str, str]]] = {}
    for cls, b in _all_bindings():
        binding = b if isinstance(b, Binding) else Binding(*b)
        for key in binding.key.split(","):
            if key.strip().startswith("ctrl+"):
                word = binding.description.split()[0].lower()
                bound.setdefault(key.strip(), []).append((cls.__name__, binding.action, word))
    assert {"ctrl+n", "ctrl+c", "ctrl+f", "ctrl+s", "ctrl+t", "ctrl+g"} <= set(bound), bound
    clashes = [
        (key, a, b)
        for key, uses in bound.items()
        for i, a in enumerate(uses)
        for b in uses[i + 1 :]
        if a[1] != b[1] and a[2] != b[2]
    ]
    assert clashes == [], clashes


async def test_enter_on_runs_is_in_the_footer_and_attaches(world):
    from . import factory
    from .conftest import footer_keys

    app = factory.make_app("runs", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        shown = {(k.key, k.description) for k in app.screen.query("FooterKey")}
        assert ("enter", "Attach") in shown, shown
        assert all(inside for _, _, inside in footer_keys(app.screen))
        await pilot.press("enter")
        assert type(app.screen).__name__ == "MonitorScreen"
