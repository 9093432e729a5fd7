"""The code's shape, checked (issue #23): no product file over 500 lines, no private name
used across modules. The two other shape rules have their tools' own checks, run by
`scripts/check`: mccabe complexity ≤ 20 (ruff's C901, pyproject) and no import cycle inside the
engine (import-linter's `acyclic_modules` contract, scripts/import_contracts.py).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "sage_ft_tui"
MAX_LINES = 500


def _check(kind: str, found: set[str]) -> None:
    assert not found, f"{kind}:\n" + "\n".join(sorted(found))


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


def test_the_acyclic_contract_finds_a_cycle_through_a_function_level_import():
    """scripts/import_contracts.py is what lint-imports runs; prove it sees a cycle and passes a DAG."""
    grimp = pytest.importorskip("grimp")
    import sys

    sys.path.insert(0, str(ROOT))
    try:
        from scripts.import_contracts import _cycles
    finally:
        sys.path.remove(str(ROOT))
    g = grimp.ImportGraph()
    for m in ("e", "e.a", "e.b", "e.c"):
        g.add_module(m)
    g.add_import(importer="e.a", imported="e.b")
    g.add_import(importer="e.b", imported="e.c")
    g.add_import(importer="e.a", imported="e")  # its own package: not a cycle
    assert _cycles(g, {"e", "e.a", "e.b", "e.c"}) == []
    g.add_import(importer="e.c", imported="e.a", line_number=40, line_contents="from e import a")
    assert _cycles(g, {"e", "e.a", "e.b", "e.c"}) == [["e.a", "e.b", "e.c", "e.a"]]
