"""One owner for each contract, checked on the source: nobody builds a run-folder path from a
string literal, names the tiny model by its literal, or signals/spawns detached processes
outside engine/proc.py."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from sage_ft_tui.engine.runs import layout as L

PKG = Path(L.__file__).resolve().parents[2]


@functools.cache
def _trees(root: Path) -> tuple[tuple[str, ast.AST], ...]:
    """(path from the checkout, parsed tree) of every .py under root, parsed once for all tests."""
    return tuple(
        (f.relative_to(PKG.parent).as_posix(), ast.parse(f.read_text(encoding="utf-8")))
        for f in sorted(root.rglob("*.py"))
    )


def _modules():
    return _trees(PKG)


def _run_folder_names() -> set[str]:
    lay = L.RunLayout("R")
    names = {getattr(lay, n).name for n in dir(L.RunLayout) if isinstance(getattr(L.RunLayout, n), property)}
    return names | {L.MARKER, L.CHECKPOINT_COMPLETE, L.MERGED_MARK, L.MERGE_REPORT}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            out.add(id(body[0].value))
    return out


def test_run_folder_paths_come_from_run_layout():
    names = _run_folder_names()
    assert {"config.yaml", "events.jsonl", "adapter", "serve.json"} <= names
    found = [
        f"{path}:{node.lineno}: / {node.right.value!r}"
        for path, tree in _modules()
        if path != "sage_ft_tui/engine/runs/layout.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Div)
        and isinstance(node.right, ast.Constant)
        and node.right.value in names
    ]
    assert not found, "use RunLayout(run).<name> instead:\n" + "\n".join(found)


def test_the_engine_names_the_tiny_model_through_tiny_name():
    from sage_ft_tui.engine.models.tiny import TINY_NAME

    found = []
    for path, tree in _modules():
        if not path.startswith("sage_ft_tui/engine/") or path.endswith("models/tiny.py"):
            continue
        docs = _docstrings(tree)
        found += [
            f"{path}:{n.lineno}"
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and TINY_NAME in n.value and id(n) not in docs
        ]
    assert not found, f"import TINY_NAME instead of writing {TINY_NAME!r}: {found}"


def test_only_proc_signals_groups_and_spawns_sessions():
    found = []
    for path, tree in _modules():
        if path == "sage_ft_tui/engine/proc.py":
            continue
        for n in ast.walk(tree):
            if isinstance(n, ast.Attribute) and n.attr == "killpg":
                found.append(f"{path}:{n.lineno}: os.killpg")
            if isinstance(n, ast.keyword) and n.arg == "start_new_session":
                found.append(f"{path}:{n.value.lineno}: start_new_session")
    assert not found, "use engine.proc (signal_group, kill_group, spawn_detached):\n" + "\n".join(found)


def _byte_unit(n: ast.AST) -> str:
    """'' or what makes `n` a hand-written byte unit: 1024**k, 1 << 10k, 1024 * 1024, a
    KiB/MiB/GiB constant, or a "KiB"… "TiB" unit ladder (fmt_bytes')."""
    num = lambda x, *v: isinstance(x, ast.Constant) and x.value in v  # noqa: E731
    if isinstance(n, ast.BinOp):
        if isinstance(n.op, ast.Pow) and (num(n.left, 1024) or (num(n.left, 2) and num(n.right, 10, 20, 30, 40))):
            return "1024**k"
        if isinstance(n.op, ast.LShift) and num(n.left, 1) and num(n.right, 10, 20, 30, 40):
            return "1 << 10k"
        if isinstance(n.op, ast.Mult) and num(n.left, 1024) and num(n.right, 1024):
            return "1024 * 1024"
    if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id in ("KiB", "MiB", "GiB") for t in n.targets):
        return "its own KiB/MiB/GiB"
    if isinstance(n, (ast.Tuple, ast.List)) and {"KiB", "MiB"} <= {getattr(e, "value", None) for e in n.elts}:
        return "its own byte formatter"
    return ""


def test_byte_units_and_their_formatter_come_from_fsutil():
    found = []
    for root in (PKG, PKG.parent / "bench", PKG.parent / "tests"):
        for rel, tree in _trees(root):
            if rel in ("sage_ft_tui/engine/fsutil.py", "tests/unit/test_owners.py"):
                continue
            found += [f"{rel}:{n.lineno}: {what}" for n in ast.walk(tree) if (what := _byte_unit(n))]
    assert not found, "import GiB / MiB / fmt_bytes from sage_ft_tui.engine.fsutil:\n" + "\n".join(found)
