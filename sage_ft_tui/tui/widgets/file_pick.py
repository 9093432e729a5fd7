"""Choosing data files: a folder tree with a way up and only data files in it, and a path
field whose Tab completes the typed path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

from textual.binding import Binding
from textual.widgets import DirectoryTree, Input

from sage_ft_tui.engine.data.readers import is_data_name

UP = ".."  # the tree's first entry: the folder above (enter), as Backspace and Left do


class DataTree(DirectoryTree):
    """Folders and data files only; hidden entries left out; ".." first, the way up."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [
            p for p in paths if p.name == UP or (not p.name.startswith(".") and (p.is_dir() or is_data_name(p.name)))
        ]

    def _directory_content(self, location: Path, worker) -> Iterator[Path]:
        if location == Path(self.path).expanduser().resolve() and location.parent != location:
            yield location / UP  # only in the folder shown, not in the folders opened under it
        yield from super()._directory_content(location, worker)

    def _populate_node(self, node, content) -> None:
        super()._populate_node(node, content)
        for child in node.children:
            if child.data is not None and child.data.path.name == UP:
                child.allow_expand = False  # enter goes up instead of listing the parent inside
                child.set_label(f"{UP}  (up)")


def complete_path(text: str, cwd: Path) -> str:
    """Tab completion: the longest common continuation of what was typed (folders end in /)."""
    typed = Path(text).expanduser()
    full = typed if typed.is_absolute() else cwd / typed
    folder, stem = (full, "") if text.endswith("/") or not text else (full.parent, full.name)
    try:
        names = sorted(
            p.name + ("/" if p.is_dir() else "")
            for p in folder.iterdir()
            if p.name.startswith(stem) and not p.name.startswith(".")
        )
    except OSError:
        return text
    if not names:
        return text
    common = os.path.commonprefix(names)
    return text + common[len(stem) :]


class PathInput(Input):
    """A path field: Tab completes the typed path (and moves on when nothing is left to add)."""

    BINDINGS = [Binding("tab", "complete", "Complete path", id="data.complete", show=False)]

    def action_complete(self) -> None:
        done = complete_path(self.value, self.screen.app.cwd)
        if done == self.value:
            self.screen.focus_next()
        else:
            self.value = done
            self.cursor_position = len(done)
