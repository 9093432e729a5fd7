"""The bundled samples are what scripts/make_samples.py writes, and the inspector finds
nothing in them: no duplicate rows (a copy trains twice and every quickstart of the sample
would warn), no bad rows, no findings."""

from __future__ import annotations

import importlib.util

import pytest

from sage_ft_tui.engine.data.load import load_training_data

from ..conftest import REPO, SAMPLES

TASK = {"instruction": "instruction", "qa": "qa", "chat": "chat", "sharegpt": "chat", "text": "text"}


def _generator():
    spec = importlib.util.spec_from_file_location("make_samples", REPO / "scripts" / "make_samples.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    "name", ["instruction", "qa", "chat", "sharegpt", "prompt_completion", "text", "pretrain_chat", "pretrain_text"]
)
def test_samples_have_no_duplicates_or_findings(name, sample_data):
    path = {
        **sample_data,
        "pretrain_chat": SAMPLES / "pretrain" / "chat.jsonl",
        "pretrain_text": SAMPLES / "pretrain" / "stories.txt",
    }[name]
    loaded = load_training_data([str(path)], task=TASK.get(name.removeprefix("pretrain_"), "instruction"))
    assert loaded.duplicates == 0 and not loaded.bad and not loaded.findings, [f.line() for f in loaded.findings]


def test_the_generator_writes_the_committed_samples(tmp_path, monkeypatch):
    gen = _generator()
    monkeypatch.setattr(gen, "OUT", tmp_path)
    gen.main()
    written = sorted(p.name for p in tmp_path.iterdir())
    assert "instruction_alpaca.jsonl" in written
    for name in written:
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), f"{name}: run scripts/make_samples.py"
    assert sum(1 for _ in (SAMPLES / "instruction_alpaca.jsonl").open()) == gen.ROWS
