"""Data on real families' templates: a system message on a template without a system role
is folded (said once, with the row count), a row the template refuses is a bad row with
file:line counted against data.max_bad_share, and history that renders unlike the live
turn is said once with how many conversations became one example per answer."""

from __future__ import annotations

import json

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.create import create_run
from tests.zoo.families import FAMILIES

GOOD = [
    {"role": "user", "content": "Name a fruit."},
    {"role": "assistant", "content": "An apple is a fruit."},
    {"role": "user", "content": "And a vegetable?"},
    {"role": "assistant", "content": "A carrot."},
]
SYSTEM = {"role": "system", "content": "Be brief."}
OUT_OF_ORDER = [GOOD[0], {"role": "user", "content": "Hello?"}, GOOD[1]]  # two user turns in a row


def _family(pred) -> str:
    return next(n for n, f in FAMILIES.items() if pred(f))


def _write(path, rows):
    path.write_text("".join(json.dumps({"messages": r}) + "\n" for r in rows), encoding="utf-8")
    return path


def _create(tmp_path, model, data, **data_keys):
    cfg = RunConfig.from_dict(
        {
            "name": "fam-data",
            "task": "chat",
            "model": {"name": str(model)},
            "data": {"paths": [str(data)], "validation_split": 0, **data_keys},
            "training": {"max_length": 256},
        }
    )
    run = create_run(cfg, home=tmp_path / "home", unique=True)
    return json.loads((run / "data" / "data_report.json").read_text())


def test_system_rows_fold_on_a_template_without_system_role(zoo, tmp_path):
    name = _family(lambda f: f.system == "none")  # Gemma 2: its template raises on a system role
    data = _write(tmp_path / "d.jsonl", [GOOD] * 20 + [[SYSTEM, *GOOD]])
    rep = _create(tmp_path, zoo[name], data)
    assert rep["counts"]["train"] == 21 and rep["counts"]["skipped"] == 0
    (fold,) = [w for w in rep["warnings"] if "no system role" in w]
    assert "1 rows" in fold and "folded into the first user turn" in fold
    rows = [json.loads(ln) for ln in (tmp_path / "home").glob("*/data/train.jsonl").__next__().read_text().splitlines()]
    assert sum(1 for r in rows if r["messages"][0]["role"] == "system") == 1  # the data keeps it; rendering folds


def test_refused_rows_are_bad_rows_with_file_line(zoo, tmp_path):
    name = _family(lambda f: f.system == "last-user")  # Mistral: roles must alternate
    data = _write(tmp_path / "d.jsonl", [GOOD] * 30 + [OUT_OF_ORDER])
    rep = _create(tmp_path, zoo[name], data)
    assert rep["counts"]["skipped"] == 1 and rep["counts"]["train"] == 30
    (bad,) = rep["skipped"]
    assert bad["where"] == f"{data}:31" and "chat template refuses this row" in bad["reason"]
    with pytest.raises(SageError) as e:  # over the share: one line naming the row
        _create(tmp_path, zoo[name], data, max_bad_share=0.0)
    assert f"{data}:31" in e.value.message and "max_bad_share" in e.value.hint


@pytest.mark.parametrize("pred", [lambda f: f.system == "last-user", lambda f: f.drops_reasoning])
def test_split_history_is_said_once(zoo, tmp_path, pred):
    name = _family(pred)
    rows = [[SYSTEM, *GOOD]] * 4 + [GOOD[:2]] * 2
    if FAMILIES[name].drops_reasoning:
        rows = [[GOOD[0], {**GOOD[1], "reasoning_content": "Fruit grows on trees."}, *GOOD[2:]]] * 4 + [GOOD[:2]] * 2
    rep = _create(tmp_path, zoo[name], _write(tmp_path / "d.jsonl", rows))
    (note,) = [w for w in rep["warnings"] if "one example per answer" in w]
    assert note.startswith("4 of ")
