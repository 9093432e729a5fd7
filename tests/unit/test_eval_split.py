"""The default held-out split: 5% from 60 rows (at least 3), none for tiny files, said once;
a share the user chose is kept as chosen; the plan counts the same train rows as the split."""

from __future__ import annotations

from types import SimpleNamespace

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.data.split import split, split_note
from sage_ft_tui.engine.runs.plan import plan


def _rows(n: int) -> list[dict]:
    return [{"text": str(i)} for i in range(n)]


def test_default_holds_out_five_percent_from_sixty_rows_and_none_below():
    assert RunConfig.from_dict({}).data.validation_split is None  # unset: the default rule
    for n, held in ((10, 0), (59, 0), (60, 3), (80, 4), (160, 8)):
        train, ev = split(_rows(n), None, 0)
        assert (len(train), len(ev)) == (n - held, held), n
    assert split(_rows(200), 0.0, 0)[1] == []  # 0 = none, as before
    assert len(split(_rows(8), 0.25, 0)[1]) == 2  # a chosen share, even on a tiny file


def test_the_default_is_said_once_in_words():
    assert (
        split_note(None, 160, 8)
        == "8 of 160 rows held out for evaluation (the default 5%; data.validation_split 0 = none)"
    )
    tiny = split_note(None, 40, 0)
    assert tiny.startswith("nothing held out for evaluation: 40 rows are too few") and "60 rows" in tiny
    assert split_note(0.1, 160, 16) == "" and split_note(None, 160, 0, eval_files=True) == ""


def test_plan_counts_the_train_rows_the_split_leaves():
    for n in (40, 80, 161):
        cfg = RunConfig.from_dict({"data": {"paths": ["x.jsonl"]}})
        p = plan(cfg, SimpleNamespace(usable=n, token_lengths=[10] * n))
        assert p.train_rows == len(split(_rows(n), None, cfg.training.seed)[0]), n
