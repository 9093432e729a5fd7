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


LAYOUT_MODULE = "sage_ft_tui.engine.runs.layout"


def _layout_constants() -> set[str]:
    """The names of layout.py's file-name constants (MARKER, MERGE_REPORT, ...)."""
    names = _run_folder_names()
    return {
        k for k, v in vars(L).items() if k.isupper() and isinstance(v, str) and (v in names or k.endswith("PREFIX"))
    }


def run_folder_joins(tree: ast.AST) -> list[str]:
    """Where `tree` builds a run-folder path by hand: `x / "config.yaml"`, `x / REPORT` (a
    layout constant under any alias, or `L.MARKER`), joinpath / os.path.join with one, or an
    f-string "{run}/status.json"."""
    names, consts = _run_folder_names(), _layout_constants()
    alias = {
        a.asname or a.name: a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module == LAYOUT_MODULE
        for a in n.names
        if a.name in consts
    }

    def part(x: ast.AST) -> str:
        if isinstance(x, ast.Constant) and x.value in names:
            return repr(x.value)
        if isinstance(x, ast.Name) and x.id in alias:
            return alias[x.id]
        if isinstance(x, ast.Attribute) and x.attr in consts:
            return x.attr
        return ""

    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) and part(n.right):
            out.append(f"{n.lineno}: / {part(n.right)}")
        elif isinstance(n, ast.Call) and getattr(n.func, "attr", "") in ("joinpath", "join"):
            out += [f"{n.lineno}: {n.func.attr}({part(a)})" for a in n.args if part(a)]
        elif isinstance(n, ast.JoinedStr):
            text = "".join(v.value for v in n.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            out += [f"{n.lineno}: f-string /{m}" for m in names if "." in m and f"/{m}" in text]
    return out


def test_run_folder_paths_come_from_run_layout():
    names = _run_folder_names()
    assert {"config.yaml", "events.jsonl", "adapter", "serve.json", "merge_report.json"} <= names
    found = [
        f"{path}:{where}"
        for path, tree in _modules()
        if path != "sage_ft_tui/engine/runs/layout.py"
        for where in run_folder_joins(tree)
    ]
    assert not found, "use RunLayout(run).<name> (or a layout.py helper) instead:\n" + "\n".join(found)


def test_the_run_folder_check_sees_every_spelling():
    code = f"""
import os
from {LAYOUT_MODULE} import MERGE_REPORT as REPORT
from sage_ft_tui.engine.runs import layout as L
run / REPORT
run / L.MARKER
run / "data" / "train.jsonl"
run.joinpath("status.json")
os.path.join(run, "events.jsonl")
f"{{run}}/config.yaml"
run / "notes.txt"
"""
    found = run_folder_joins(ast.parse(code))
    assert sorted(w.split(": ", 1)[1] for w in found) == sorted(
        [
            "/ MERGE_REPORT",
            "/ MARKER",
            "/ 'train.jsonl'",
            "/ 'data'",
            "joinpath('status.json')",
            "join('events.jsonl')",
            "f-string /config.yaml",
        ]
    ), found  # notes.txt is no run-folder name


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
