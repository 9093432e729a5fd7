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
