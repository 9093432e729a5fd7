"""The seed's Python API, end to end on the tiny model."""

import pytest

from sage_ft_tui import LoRATrainer, PresetConfigs, TrainingConfig, prepare_dataset
from sage_ft_tui.engine.runs.events import read_events

pytestmark = pytest.mark.train


def test_lora_trainer_trains_from_a_file(tmp_path, sample_data):
    cfg = PresetConfigs.cpu(model_name="tiny-demo", max_steps=4, logging_steps=1, save_steps=4)
    res = LoRATrainer(cfg, output_dir=tmp_path / "out").train(str(sample_data["qa"]))
    assert res.state == "completed" and res.global_step == 4
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").exists()
    kinds = {e["kind"] for e in read_events(tmp_path / "out" / "events.jsonl").events}
    assert {"start", "log", "checkpoint", "status"} <= kinds


def test_prepare_dataset_then_train(tmp_path):
    rows = [{"question": f"What is {i} + 1?", "answer": f"{i + 1}."} for i in range(24)]
    ds = prepare_dataset(rows, "tiny-demo", task="qa", max_length=64)
    assert set(ds.column_names) == {"input_ids", "completion_mask"} and len(ds) == 24
    cfg = TrainingConfig(
        model_name="tiny-demo",
        task="qa",
        max_steps=3,
        batch_size=4,
        gradient_accumulation_steps=1,
        gradient_checkpointing=False,
        max_length=64,
        save_steps=3,
    )
    res = LoRATrainer(cfg, output_dir=tmp_path / "o").train(ds)
    assert res.state == "completed" and res.global_step == 3
