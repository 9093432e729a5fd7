"""The tokenized data is cached in the run folder: a re-run or resume skips preprocessing;
the cache key follows the data and max_length; two callers never build it at once."""

from __future__ import annotations

import threading
import time

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.data import trainer_data as data_mod
from sage_ft_tui.engine.data.prepare import prepare_run_data
from sage_ft_tui.engine.data.trainer_data import cache_key, tokenized_datasets


def _cfg(path, **training) -> RunConfig:
    return RunConfig.from_dict(
        {
            "model": {"name": "tiny-demo"},
            "data": {"paths": [str(path)], "validation_split": 0.2},
            "training": {"max_length": 256, **training},
        },
        source="test",
    )


@pytest.fixture
def run(tmp_path, tiny_model, sample_data):
    cfg = _cfg(sample_data["instruction"])
    run = tmp_path / "run"
    prepare_run_data(cfg, run)
    return cfg, run


@pytest.fixture
def count_tokenize(monkeypatch):
    calls = []
    real = data_mod.tokenize_batch

    def counting(batch, *a, **kw):
        calls.append(len(next(iter(batch.values()))))
        return real(batch, *a, **kw)

    monkeypatch.setattr(data_mod, "tokenize_batch", counting)
    return calls


def test_second_call_loads_the_cache(run, tiny_model, count_tokenize):
    cfg, run = run
    t = time.perf_counter()
    train1, eval1 = tokenized_datasets(cfg, run, str(tiny_model))
    first = time.perf_counter() - t
    assert count_tokenize and len(train1) > 0 and len(eval1) > 0
    count_tokenize.clear()
    t = time.perf_counter()
    train2, eval2 = tokenized_datasets(cfg, run, str(tiny_model))
    second = time.perf_counter() - t
    assert count_tokenize == []  # nothing tokenized again
    assert train2["input_ids"] == train1["input_ids"] and eval2["completion_mask"] == eval1["completion_mask"]
    assert second < first
    assert len(list((run / "data" / "tokenized").iterdir())) == 2  # one key folder + its lock file


def test_cache_key_follows_data_and_max_length(run, tiny_model):
    cfg, run = run
    d = run / "data"
    key = cache_key(cfg, d, str(tiny_model))
    assert cache_key(cfg, d, str(tiny_model)) == key
    assert cache_key(cfg.with_overrides(["training.learning_rate=0.01"]), d, str(tiny_model)) == key
    assert cache_key(cfg.with_overrides(["training.max_length=512"]), d, str(tiny_model)) != key
    train = d / "train.jsonl"
    train.write_text(train.read_text().replace("a", "b", 1))
    assert cache_key(cfg, d, str(tiny_model)) != key


def test_concurrent_callers_build_once(run, tiny_model, count_tokenize):
    cfg, run = run
    results, errors = [], []

    def call():
        try:
            results.append(tokenized_datasets(cfg, run, str(tiny_model)))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors and len(results) == 2
    assert len(count_tokenize) == 2  # one batch for train, one for eval: built by one caller only
    assert results[0][0]["input_ids"] == results[1][0]["input_ids"]
