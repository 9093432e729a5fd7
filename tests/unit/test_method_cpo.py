"""CPO (engine/methods/cpo.py), the method added in the registry's shape: the registry finds it,
the config takes it, and it trains tiny-demo a few steps on the bundled preference sample with
the real trainer, writing the run folder and the method's figures in the events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.methods.registry import method_names, method_spec

SAMPLE = Path(__file__).resolve().parents[2] / "sage_ft_tui" / "samples" / "preference_pairs.jsonl"


def test_the_registry_offers_cpo_as_a_pairs_method():
    assert "cpo" in method_names()
    cpo = method_spec("cpo")
    assert cpo.reference_free and not cpo.labelled
    assert RunConfig.from_dict({"task": "preference", "preference": {"method": "cpo"}}).preference.method == "cpo"


@pytest.mark.train
@pytest.mark.model
def test_cpo_trains_and_logs_its_rewards(sage_home, tiny_model):
    from sage_ft_tui.engine.train.trainer import LoRATrainer

    cfg = RunConfig.from_dict(
        {
            "task": "preference",
            "model": {"name": "tiny-demo"},
            "data": {"paths": [str(SAMPLE)], "validation_split": 0},
            "preference": {"method": "cpo"},
            "training": {"max_steps": 2, "max_length": 64, "logging_steps": 1, "micro_batch_size": 2},
        }
    )
    result = LoRATrainer(cfg).train()
    assert (result.state, result.global_step) == ("completed", 2)
    run = result.adapter_dir.parent
    assert (run / "adapter" / "adapter_config.json").exists()
    assert "method: cpo" in (run / "config.yaml").read_text()
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    logs = [e for e in events if e["kind"] == "log"]
    assert [e["step"] for e in logs] == [1, 2]
    for key in ("rewards_chosen", "rewards_rejected", "rewards_margin", "rewards_accuracy"):
        assert all(isinstance(e[key], float) for e in logs), logs
    # CPO's loss holds the chosen answers' NLL (cpo_alpha 1): far above the bare preference loss
    # (log 2 ≈ 0.69 at the start), which is all SimPO's would be
    assert logs[0]["loss"] > 2.0, logs[0]
    assert events[-1] == {**events[-1], "kind": "status", "state": "completed"}
