"""Sharding: two CPU processes (gloo) train the tiny model with FSDP2 (training.sharding fsdp):
each rank really holds about half of the parameters (DTensor shards, read back from the start
event), sharded checkpoints are written, and the run ends with ONE full adapter that loads
into PeftModel and generates. The sbatch script for multi-node runs is written, not submitted.

accelerate by itself keeps a MULTI_CPU run on DDP (distributed.fsdp_on_cpu says why and
switches it); from there the run takes the Trainer's FSDP2 path a GPU run takes."""

import json

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.recipes.demo import demo_config
from sage_ft_tui.engine.runs.create import create_run
from sage_ft_tui.engine.runs.state import read_status
from tests.torchrun import torchrun_worker


@pytest.mark.train
def test_fsdp_two_cpu_processes_one_adapter(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("SAGE_FT_HOME", str(tmp_path / "runs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    raw = demo_config(max_steps=2).model_dump(mode="json")
    raw["name"] = "fsdp"
    raw["data"]["validation_split"] = 0.0  # no eval pass: the test is about sharding and saving
    raw["training"].update(sharding="fsdp", save_steps=1, eval_steps=None)
    run = create_run(RunConfig.from_dict(raw))
    p = torchrun_worker(run)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["kind"] == "start")
    assert start["world_size"] == 2 and start["sharding"] == "fsdp2", start
    # each rank holds about half of the base and of the LoRA weights (dim-0 shards, padded)
    for share in start["params_share"] + start["trainable_share"]:
        assert 0.45 <= share <= 0.55, start
    assert read_status(run)["state"] == "completed"
    assert [e["step"] for e in events if e["kind"] == "checkpoint"] == [1, 2]  # sharded checkpoints saved
    adapter = run / "adapter"
    assert sorted(x.name for x in adapter.glob("adapter_model*")) == ["adapter_model.safetensors"]

    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sage_ft_tui.engine.models.tiny import ensure_tiny_model

    weights = load_file(str(adapter / "adapter_model.safetensors"))
    base = AutoModelForCausalLM.from_pretrained(str(ensure_tiny_model()), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter)).eval()
    linears = dict(model.named_modules())
    r = RunConfig.from_dict(raw).lora.r
    for name, w in weights.items():  # every matrix whole (a shard has half the rows), as loaded
        layer = linears[name.rsplit(".lora_", 1)[0]].base_layer
        assert tuple(w.shape) == ((r, layer.in_features) if ".lora_A." in name else (layer.out_features, r)), name
    assert any(w.abs().sum() > 0 for n, w in weights.items() if "lora_B" in n)  # trained: B starts at 0
    tok = AutoTokenizer.from_pretrained(str(adapter))
    ids = tok("hello", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids.shape[1]


def test_slurm_script(tmp_path):
    from sage_ft_tui.engine.train.distributed import slurm_script

    s = slurm_script(tmp_path / "my-run", 2, 8, partition="gpu")
    assert "#SBATCH --nodes=2" in s and "#SBATCH --gpus-per-node=8" in s and "--partition=gpu" in s
    assert "--num_processes 16" in s and "--machine_rank $SLURM_NODEID" in s
    assert "sage_ft_tui.engine.worker" in s and str(tmp_path / "my-run") in s


def test_sharding_args_only_with_several_processes(monkeypatch):
    from sage_ft_tui.engine.train.distributed import trainer_args

    cfg = RunConfig.from_dict({"training": {"sharding": "fsdp"}})
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert trainer_args(cfg) == {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    a = trainer_args(cfg)
    assert a["fsdp"] == "full_shard auto_wrap" and a["fsdp_config"]["version"] == 2
    assert trainer_args(RunConfig.from_dict({"training": {"sharding": "ddp"}})) == {}


def test_run_slurm_writes_sbatch_not_submitted_without_sbatch(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sage_ft_tui.cli.app import app
    from sage_ft_tui.engine.runs.layout import RunLayout

    monkeypatch.setenv("SAGE_FT_HOME", str(tmp_path / "runs"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch: on a cluster login node it would really submit
    raw = demo_config(max_steps=1).model_dump(mode="json")
    raw["name"] = "multi"
    run = create_run(RunConfig.from_dict(raw))
    r = CliRunner().invoke(app, ["run", str(run), "--slurm", "2", "--gpus-per-node", "4"])
    assert r.exit_code == 0, r.output
    script = RunLayout(run).slurm_script.read_text()
    assert "#SBATCH --nodes=2" in script and "--num_processes 8" in script
    assert read_status(run)["state"] != "running"  # written, nothing started
