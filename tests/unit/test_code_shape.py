"""The code's shape, checked (issue #23): no product file over 500 lines, no function over
mccabe complexity 20, no private name used across modules, no import cycle in the engine.

What still breaks a rule is listed in tests/code_shape_allowlist.txt; the list only shrinks: an
entry that no longer breaks its rule fails the test too, so fixed debt cannot come back unseen.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "sage_ft_tui"
ALLOWLIST = ROOT / "tests" / "code_shape_allowlist.txt"
MAX_LINES = 500
MAX_COMPLEXITY = 20


def _allowed(kind: str) -> set[str]:
    out = set()
    for line in ALLOWLIST.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and line.split(None, 1)[0] == kind:
            out.add(line.split(None, 1)[1].strip())
    return out


def _check(kind: str, found: set[str]) -> None:
    allowed = _allowed(kind)
    new, fixed = sorted(found - allowed), sorted(allowed - found)
    assert not new, f"{kind}: breaks the rule (fix it; the allowlist only shrinks):\n" + "\n".join(new)
    assert not fixed, f"{kind}: fixed, so delete these lines from {ALLOWLIST.name}:\n" + "\n".join(fixed)


def _product_files() -> Iterator[Path]:
    yield from sorted(PKG.rglob("*.py"))


def _rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


def _module_name(p: Path) -> str:
    parts = list(p.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_no_product_file_is_over_500_lines():
    found = {_rel(p) for p in _product_files() if len(p.read_text().splitlines()) > MAX_LINES}
    _check("lines", found)


def test_no_function_is_over_complexity_20():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (it comes with the dev extra)")
    out = subprocess.run(
        [
            ruff,
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "C901",
            "--output-format",
            "json",
            "--config",
            f"lint.mccabe.max-complexity={MAX_COMPLEXITY}",
            str(PKG),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode in (0, 1), out.stderr
    found = set()
    for d in json.loads(out.stdout or "[]"):
        name = d["message"].split("`")[1]  # "`fn` is too complex (23 > 20)"
        found.add(f"{_rel(Path(d['filename']))}:{name}")
    _check("complexity", found)


def _imported_modules(tree: ast.AST, here: str) -> dict[str, str]:
    """Local name → sage_ft_tui module, for `import a.b as x` and `from a import b` (b a module)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("sage_ft_tui") and a.asname:
                    names[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sage_ft_tui"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if (PKG.parent / (full.replace(".", "/") + ".py")).exists() or (
                    PKG.parent / full.replace(".", "/") / "__init__.py"
                ).exists():
                    names[a.asname or a.name] = full
    return names


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_is_used_across_modules():
    found = set()
    for p in _product_files():
        tree = ast.parse(p.read_text())
        here = _module_name(p)
        mods = _imported_modules(tree, here)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sage_ft_tui"):
                for a in node.names:
                    if _private(a.name) and node.module != here:
                        found.add(f"{_rel(p)} {node.module}.{a.name}")
            elif (
                isinstance(node, ast.Attribute)
                and _private(node.attr)
                and isinstance(node.value, ast.Name)
                and node.value.id in mods
                and mods[node.value.id] != here
            ):
                found.add(f"{_rel(p)} {mods[node.value.id]}.{node.attr}")
    _check("private", found)


def _engine_cycles() -> set[str]:
    """Modules of the engine that sit on an import cycle (imports inside functions count too;
    `if TYPE_CHECKING:` imports do not, they never run)."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("sage_ft_tui", exclude_type_checking_imports=True)
    engine = "sage_ft_tui.engine"
    mods = sorted(m for m in graph.modules if m.startswith(engine + "."))
    edges = {
        m: sorted(
            w
            for w in graph.find_modules_directly_imported_by(m)
            # a module importing its own package's __init__ is how Python loads it, not a design cycle
            if w.startswith(engine + ".") and not m.startswith(w + ".")
        )
        for m in mods
    }
    # Tarjan's strongly connected components, iterative (the graph is small; recursion is fine too)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cyclic: set[str] = set()
    counter = [0]
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cyclic.update(comp)

    for m in mods:
        if m not in index:
            visit(m)
    return cyclic


def test_no_import_cycle_inside_the_engine():
    _check("cycle", _engine_cycles())


def test_the_allowlist_names_only_known_kinds():
    kinds = {"lines", "complexity", "private", "cycle"}
    for n, line in enumerate(ALLOWLIST.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        assert not line or line.split(None, 1)[0] in kinds, f"{ALLOWLIST.name}:{n}: unknown kind in {line!r}"
