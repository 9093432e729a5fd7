"""Real runs: the real CLI, the real detached worker, the real trainer, the tiny model."""

import os
import signal
import subprocess
import sys
import time

import pytest

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.control import cancel, launch
from sage_ft_tui.engine.runs.create import create_run
from sage_ft_tui.engine.runs.events import read_events
from sage_ft_tui.engine.runs.state import checkpoints, derive_state, read_status, wait_for_end

from .conftest import cli, json_lines, long_config, wait_for_event

pytestmark = pytest.mark.train


def test_demo_run_completes_with_the_full_event_story(demo_run):
    run = demo_run["run"]
    kinds = [e["kind"] for e in read_events(run / "events.jsonl").events]
    for k in ("start", "log", "eval", "checkpoint", "hw"):
        assert k in kinds, k
    evs = read_events(run / "events.jsonl").events
    assert evs[-1] == {**evs[-1], "kind": "status", "state": "completed"}
    logs = [e for e in evs if e["kind"] == "log"]
    start = [e for e in evs if e["kind"] == "start"][0]
    assert logs[-1]["step"] == start["total_steps"]
    # how it really computed: the tiny demo (hidden 64) stays fp32 on CPU, with the CPU kernels
    assert start["precision"] == "fp32" and {"fused_lora", "compact_lm_head"} <= set(start["kernels"])
    assert {k: read_status(run)[k] for k in ("precision", "attention", "kernels")} == {
        k: start[k] for k in ("precision", "attention", "kernels")
    }
    assert logs[-1]["loss"] < logs[0]["loss"]
    assert all(e["tokens"] > 0 for e in logs) and logs[-1]["tokens"] > logs[0]["tokens"]
    assert read_status(run)["state"] == "completed" and derive_state(run)[0] == "completed"
    assert (run / "adapter" / "adapter_config.json").exists() and (run / "config.yaml").exists()
    report = (run / "data" / "data_report.json").read_text()
    assert '"train": 39' in report and '"eval": 4' in report and '"median"' in report
    # the same stream came out on stdout as JSON lines
    assert any(e.get("kind") == "log" for e in json_lines(demo_run["stdout"]))


def test_adapter_loads_with_peft_and_generates(demo_run, tiny_model):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = demo_run["run"]
    tok = AutoTokenizer.from_pretrained(run / "adapter")
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    model = PeftModel.from_pretrained(base, run / "adapter")
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 2?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]
    # the adapter changed the model
    base2 = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        assert not torch.allclose(model(**ids).logits, base2(**ids).logits)


def test_detach_then_attach(sample_data, sage_home):
    r = cli(
        "start",
        "--task",
        "qa",
        "--model",
        "tiny-demo",
        "--data",
        str(sample_data["qa"]),
        "--name",
        "det",
        "--max-steps",
        "12",
        "--set",
        "training.logging_steps=2",
        "--set",
        "training.save_steps=6",
    )
    assert r.returncode == 0, r.stderr
    assert "created run det" in r.stdout
    r = cli("run", "det", "--detach")
    assert r.returncode == 0, r.stderr
    assert "in the background" in r.stdout
    r = cli("attach", "det", "--no-tui", "--json", timeout=240)
    assert r.returncode == 0, r.stderr
    evs = json_lines(r.stdout)
    assert evs[-1]["kind"] == "status" and evs[-1]["state"] == "completed"
    assert [e["step"] for e in evs if e["kind"] == "log"][-1] == 12
    r = cli("list", "--json")
    assert '"state": "completed"' in r.stdout and '"name": "det"' in r.stdout


def test_sigterm_saves_a_checkpoint_and_ends_cancelled(sample_data, sage_home):
    run = create_run(long_config(sample_data, "term", steps=2000))
    launch(run)
    wait_for_event(run, lambda e: e["kind"] == "log" and e["step"] >= 10)
    cancel(run)
    assert wait_for_end(run, timeout=120) == "cancelled"
    evs = read_events(run / "events.jsonl").events
    last_ckpt = [e for e in evs if e["kind"] == "checkpoint"][-1]
    assert last_ckpt["step"] % 25 != 0 or last_ckpt["step"] >= 10  # the extra save at the signal
    assert checkpoints(run)[-1].name == f"checkpoint-{last_ckpt['step']}"
    assert evs[-1]["kind"] == "status" and evs[-1]["state"] == "cancelled"
    assert read_status(run)["exit_reason"] == "cancelled by user"
    assert not (run / "adapter").exists()


def test_kill9_then_resume_finishes_the_planned_steps(sample_data, sage_home):
    run = create_run(long_config(sample_data, "kill", steps=150))
    launch(run)
    wait_for_event(run, lambda e: e["kind"] == "checkpoint" and e["step"] >= 50)
    os.killpg(read_status(run)["pid"], signal.SIGKILL)
    deadline = time.time() + 30
    while derive_state(run)[0] != "failed" and time.time() < deadline:
        time.sleep(0.1)
    assert derive_state(run) == ("failed", "worker died")
    # a half-written newer checkpoint is never used
    (run / "checkpoints" / "checkpoint-999").mkdir()
    r = cli("resume", "kill", "--no-tui", "--json", timeout=300)
    assert r.returncode == 0, r.stderr + r.stdout[-2000:]
    evs = read_events(run / "events.jsonl").events
    starts = [e for e in evs if e["kind"] == "start"]
    assert len(starts) == 2 and starts[1]["resumed_from_step"] >= 50
    assert starts[0]["total_steps"] == starts[1]["total_steps"] == 150
    assert [e for e in evs if e["kind"] == "log"][-1]["step"] == 150
    assert derive_state(run)[0] == "completed"


def test_two_workers_on_one_run_are_refused(sample_data, sage_home):
    run = create_run(long_config(sample_data, "twice", steps=2000))
    launch(run)
    wait_for_event(run, lambda e: e["kind"] == "log")
    with pytest.raises(SageError, match="already running"):
        launch(run)
    second = subprocess.run(
        [sys.executable, "-m", "sage_ft_tui.engine.train.worker", str(run)], capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 3 and "already being trained" in second.stdout
    r = cli("clean", "twice", "--yes")
    assert r.returncode != 0 and "is running" in r.stderr and "Traceback" not in r.stderr
    cancel(run)
    assert wait_for_end(run, timeout=120) == "cancelled"
    r = cli("clean", "twice", "--yes")
    assert r.returncode == 0 and not run.exists()


def test_a_completed_run_is_not_trained_over(demo_run):
    before = (demo_run["run"] / "events.jsonl").read_bytes()
    r = cli("run", str(demo_run["run"]), "--detach")
    assert r.returncode != 0 and "already completed" in r.stderr and "Traceback" not in r.stderr
    assert (demo_run["run"] / "events.jsonl").read_bytes() == before
