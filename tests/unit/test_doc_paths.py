"""Every path to our code named in the docs, the comments, docstrings and strings resolves.

A module moves, and the sentences that point at it stay behind: `sage_ft_tui/engine/x.py`,
`engine/x.py`, `sage_ft_tui.engine.x.y`, `engine.x.y` (a module, or a name defined in one:
`engine.runs.start.start_run`), `tests/x.py`. Read from docs/, README.md, CONTRIBUTING.md, and
the comments and string literals of sage_ft_tui/ and tests/ (not code: `self.engine.x` is an
attribute)."""

from __future__ import annotations

import io
import re
import tokenize
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "sage_ft_tui"
LAYERS = "engine|tui|cli"

# sage_ft_tui/engine/x.py, engine/x.py, tests/unit/x.py (a file); not inside a longer path or a URL.
FILE = re.compile(rf"(?<![\w./-])((?:sage_ft_tui/)?(?:{LAYERS})/[\w/]+\.py|tests/[\w/]+\.py)\b")
# sage_ft_tui.engine.x.y, engine.x.y (two parts at least); not an attribute (`self.engine.x`).
DOTTED = re.compile(rf"(?<![\w./-])((?:sage_ft_tui\.)?(?:{LAYERS})(?:\.[A-Za-z_]\w*)+)")
DEFINES = r"^(?:(?:async\s+)?def|class)\s+{0}\b|^{0}\s*[:=]|^from\s+\S+\s+import\s.*\b{0}\b|^import\s.*\b{0}\b"


def _texts() -> list[tuple[str, str]]:
    """(where, text) for every place a path may be written."""
    out = [(str(p.relative_to(REPO)), p.read_text()) for p in sorted((REPO / "docs").rglob("*.md"))]
    out += [(name, (REPO / name).read_text()) for name in ("README.md", "CONTRIBUTING.md")]
    for root in (PKG, REPO / "tests"):
        for p in sorted(root.rglob("*.py")):
            if p == Path(__file__).resolve():
                continue  # its examples are made up on purpose
            src = p.read_text()
            for tok in tokenize.generate_tokens(io.StringIO(src).readline):
                if tok.type in (tokenize.COMMENT, tokenize.STRING) or tok.type == getattr(
                    tokenize, "FSTRING_MIDDLE", -1
                ):
                    out.append((f"{p.relative_to(REPO)}:{tok.start[0]}", tok.string))
    return out


def _module_file(parts: list[str]) -> Path | None:
    base = PKG.joinpath(*parts)
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


@cache
def _defines(module: Path, name: str) -> bool:
    return re.search(DEFINES.format(re.escape(name)), module.read_text(), re.M) is not None


def _dotted_resolves(path: str) -> bool:
    parts = path.removeprefix("sage_ft_tui.").split(".")
    for n in range(len(parts), 0, -1):  # the longest prefix that is a module; the rest a name in it
        module = _module_file(parts[:n])
        if module is not None:
            return n == len(parts) or _defines(module, parts[n])
    return False


def _file_resolves(path: str) -> bool:
    if path.startswith("tests/"):
        return (REPO / path).is_file()
    return (PKG / path.removeprefix("sage_ft_tui/")).is_file()


def stale_paths() -> list[str]:
    out = []
    for where, text in _texts():
        for m in FILE.finditer(text):
            if not _file_resolves(m.group(1)):
                out.append(f"{where}: {m.group(1)}")
        for m in DOTTED.finditer(text):
            path = m.group(1)
            if path.endswith(".py") or "/" in text[max(0, m.start() - 1) : m.start()]:
                continue  # a file name, checked above
            if not _dotted_resolves(path):
                out.append(f"{where}: {path}")
    return out


def test_the_checker_sees_a_stale_path_and_passes_a_good_one():
    assert _dotted_resolves("sage_ft_tui.engine.errors.SageError") and _dotted_resolves("engine.errors")
    assert not _dotted_resolves("engine.errors.NoSuchName") and not _dotted_resolves("engine.no_such_module")
    assert _file_resolves("sage_ft_tui/engine/errors.py") and _file_resolves("engine/errors.py")
    assert not _file_resolves("engine/no_such_module.py") and not _file_resolves("tests/unit/test_nothing_here.py")


def test_every_path_to_our_code_resolves():
    stale = stale_paths()
    assert not stale, f"{len(stale)} path(s) to code that is not there (moved? update them):\n" + "\n".join(stale)
