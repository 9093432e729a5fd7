"""engine/models/known.py: the models the tool knows by name are described once, and the four
readers (the catalogue, the estimate's shapes, the quickstart, the legacy API) agree with it
because they read it — checked with an empty Hugging Face cache, nothing downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from sage_ft_tui.engine.config.legacy import TrainingConfig
from sage_ft_tui.engine.hardware.probe import RecordedBackend
from sage_ft_tui.engine.models.catalog import describe
from sage_ft_tui.engine.models.known import DEFAULTS, KNOWN, LEGACY_DEFAULT, quickstart_model
from sage_ft_tui.engine.models.shape import model_shape
from sage_ft_tui.engine.recipes.quickstart import default_model

ENGINE = Path(__file__).resolve().parents[2] / "sage_ft_tui" / "engine"
RTX4090 = Path(__file__).parent / "fixtures" / "hardware" / "rtx4090.json"


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("model_id", sorted(KNOWN))
def test_the_card_and_the_config_describe_the_same_model(model_id, empty_cache):
    k = KNOWN[model_id]
    shape = model_shape(model_id)  # the estimate's shape before the first download
    assert shape.source.startswith("built-in shape")
    assert abs(shape.total_params - k.params) / k.params < 0.01, (shape.total_params, k.params)
    # 16-bit weights: the download size is two bytes a parameter
    assert abs(k.size_bytes - 2 * k.params) / k.size_bytes < 0.02
    e = describe(model_id, cache={})  # the catalogue's entry before the first download
    assert (e.params, e.architecture, e.size_bytes) == (k.params, k.architecture, k.size_bytes)
    assert e.source == ("default" if k.listed else "hub")


def test_every_name_the_tool_picks_is_in_the_table(empty_cache):
    assert LEGACY_DEFAULT in KNOWN and TrainingConfig().model_name == LEGACY_DEFAULT
    assert DEFAULTS and all(KNOWN[m].listed for m in DEFAULTS)
    assert quickstart_model("code") != quickstart_model("qa")
    gpu = RecordedBackend(RTX4090).snapshot()
    for task in ("code", "qa", "chat"):
        assert quickstart_model(task) in KNOWN
        choice = default_model(task, gpu)  # offline, so tiny-demo, but the default is named
        assert choice.name == "tiny-demo" and f"{quickstart_model(task)} is not cached" in choice.line


def test_no_engine_module_names_a_known_model_but_the_table():
    """A fifth place that spells a known hub id is how the four drifted apart."""
    spelled = {
        p.relative_to(ENGINE).as_posix(): sorted(m for m in KNOWN if m in p.read_text(encoding="utf-8"))
        for p in ENGINE.rglob("*.py")
        if p.name != "known.py"
    }
    assert {k: v for k, v in spelled.items() if v} == {}
