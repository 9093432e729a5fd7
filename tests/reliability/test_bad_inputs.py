"""The bad-input corpus (corpus/cases.py) through the real `sage-ft-tui start --no-tui`.

Each refusal: exactly one `error:` line on stderr naming what, where and what to do; a
non-zero exit; no traceback; the runs folder (which holds an earlier run, "keep") is
byte-for-byte what it was, and no new run folder is left behind. Messy-but-valid input
(BOM, CRLF) is accepted with every row.

The cases run concurrently (each with its own runs folder) in one fixture; each case is
then its own test."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import cli, one_error_line, tree_digest
from .corpus.cases import CASES as BASE_CASES
from .corpus.cases import FILES, Case
from .corpus.cases_data import DATA_CASES

CASES = BASE_CASES + DATA_CASES


def _inputs(t: Path) -> dict[str, str]:
    """The case's own input files and the shared files/ folder (never modified by a run)."""
    own = {k: v for k, v in tree_digest(t).items() if not k.startswith("runs/")}
    return own | {f"files/{k}": v for k, v in tree_digest(FILES).items()}


def _make_keep(home: Path) -> None:
    from sage_ft_tui.engine.runs.create import write_marker

    keep = home / "keep"
    keep.mkdir(parents=True)
    write_marker(keep)
    (keep / "config.yaml").write_text("name: keep\ntask: qa\n")
    (keep / "status.json").write_text(json.dumps({"state": "completed"}))
    (keep / "events.jsonl").write_text('{"v":1,"t":1,"kind":"status","state":"completed"}\n')
    (keep / "adapter").mkdir()
    (keep / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 64)


def _run_case(case: Case, base: Path) -> dict:
    t = base / case.id
    t.mkdir(parents=True)
    home = t / "runs"
    _make_keep(home)
    if case.gen:
        case.gen(t)
    before, inputs = tree_digest(home), _inputs(t)
    args = ["start", *[a.replace("{F}", str(FILES)).replace("{T}", str(t)) for a in case.args], "--no-tui"]
    t0 = time.time()
    p = cli(*args, env={"SAGE_FT_HOME": str(home), "HF_HUB_OFFLINE": "1", **case.env}, timeout=300, cwd=t)
    return {
        "p": p,
        "s": time.time() - t0,
        "home": home,
        "before": before,
        "after": tree_digest(home),
        "cwd": t,
        "inputs": (inputs, _inputs(t)),
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory, tiny_model) -> dict:
    base = tmp_path_factory.mktemp("corpus")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futs = {c.id: pool.submit(_run_case, c, base) for c in CASES}
        return {k: f.result() for k, f in futs.items()}


def test_corpus_is_big_enough():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.group for c in CASES} >= {"data", "config", "model", "mistraining", "secrets", "environment"}
    assert len(DATA_CASES) >= 30


@pytest.mark.timeout(600)  # the first one waits for the whole corpus (the module's fixture)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, results):
    r = results[case.id]
    p, home = r["p"], r["home"]
    assert r["inputs"][0] == r["inputs"][1], "an input file was modified"
    if case.expect is None:
        assert p.returncode == 0, p.stderr[-2000:]
        assert "Traceback" not in p.stderr
        new = [d for d in home.iterdir() if d.name != "keep"]
        assert len(new) == 1
        report = json.loads((new[0] / "data" / "data_report.json").read_text())
        assert report["counts"]["train"] == case.rows and report["counts"]["skipped"] == case.skipped, report["counts"]
        warnings = "\n".join(ln for ln in p.stderr.splitlines() if ln.startswith("warning: "))
        for words in case.warn:
            assert words in warnings, f"{words!r} not in: {warnings or p.stderr[-2000:]}"
        for text in case.absent:
            assert text not in p.stdout + p.stderr
            for f in new[0].rglob("*"):
                assert not f.is_file() or text.encode() not in f.read_bytes(), f"{text!r} in {f}"
        assert {k: v for k, v in r["after"].items() if k.startswith("keep/")} == r["before"]
        return
    line = one_error_line(p)
    for words in case.expect:
        assert words in line, f"{words!r} not in: {line}"
    assert " — " in line, f"no 'what to do' part: {line}"  # message — hint
    assert r["after"] == r["before"], "the runs folder changed"
    assert sorted(d.name for d in home.iterdir()) == ["keep"]
    assert r["s"] < 120, f"took {r['s']:.0f}s"


def test_python_tags_ran_nothing(results):
    for cid in ("yaml_python_apply", "yaml_python_object"):
        assert not (results[cid]["cwd"] / "SAGE_FT_PWNED").exists()
