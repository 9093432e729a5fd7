"""One owner for each contract, checked on the source: nobody builds a run-folder path from a
string literal, names the tiny model by its literal, or signals/spawns detached processes
outside engine/proc.py."""

from __future__ import annotations

import ast
from pathlib import Path

from sage_ft_tui.engine.runs import layout as L

PKG = Path(L.__file__).resolve().parents[2]


def _modules():
    for f in sorted(PKG.rglob("*.py")):
        yield f.relative_to(PKG.parent).as_posix(), ast.parse(f.read_text(encoding="utf-8"))


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
