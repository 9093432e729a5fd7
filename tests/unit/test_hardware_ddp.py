"""Multi-process training: two ranks on CPU (gloo) train the tiny model to completion with
one event stream (rank 0 alone writes it) and one final adapter. ~30 s on 2 cores."""

import json

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.recipes.demo import demo_config
from sage_ft_tui.engine.runs.create import create_run
from sage_ft_tui.engine.runs.state import checkpoints, read_status
from tests.torchrun import torchrun_worker


@pytest.mark.train
def test_two_cpu_processes_one_event_stream(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGE_FT_HOME", str(tmp_path / "runs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    raw = demo_config(max_steps=4).model_dump(mode="json")
    raw["name"] = "ddp"
    raw["training"]["save_steps"] = 2
    run = create_run(RunConfig.from_dict(raw))
    p = torchrun_worker(run)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    events = [json.loads(l) for l in (run / "events.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    start = next(e for e in events if e["kind"] == "start")
    assert kinds.count("start") == 1 and start["world_size"] == 2
    assert start["sharding"] == "ddp" and start["params_share"] == [1.0, 1.0]  # full replicas, said so
    assert [e["state"] for e in events if e["kind"] == "status"][-1] == "completed"
    steps = [e["step"] for e in events if e["kind"] == "log"]
    assert steps == sorted(set(steps))  # one writer: no step logged twice
    assert "hw" in kinds
    assert (run / "adapter" / "adapter_model.safetensors").is_file()
    assert [c.name for c in checkpoints(run)] == ["checkpoint-2", "checkpoint-4"]
    assert read_status(run)["state"] == "completed"
