"""Preference and GRPO runs end to end through the real CLI and the real TRL trainers on
tiny-demo, offline: SFT → DPO with --from-run → merge → serve → chat; KTO on a fresh
adapter; GRPO with a built-in and a user reward. A few steps each with tiny lengths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import cli, json_lines

pytestmark = pytest.mark.train

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "preference"
QUICK = ["--no-tui", "--json", "--max-steps", "2", "--max-length", "64", "--set", "training.logging_steps=1"]
QUICK += ["--set", "data.validation_split=0"]


def quickstart(task: str, *args: str, home: Path) -> tuple[Path, list[dict]]:
    before = set(home.iterdir()) if home.exists() else set()
    r = cli("quickstart", task, *args, *QUICK, env={"SAGE_FT_HOME": str(home)}, timeout=300)
    (run,) = [p for p in home.iterdir() if p not in before and p.is_dir()]
    assert r.returncode == 0, r.stderr[-2000:] + (run / "train.log").read_text()[-3000:]
    events = json_lines(r.stdout)
    assert events[-1] == {**events[-1], "kind": "status", "state": "completed"}
    return run, [e for e in events if e["kind"] == "log"]


def test_sft_to_dpo_trains_merges_serves_and_chats(sage_home, tiny_model):
    import openai
    from safetensors.torch import load_file

    from tests.adapters import adapter_run

    # a finished SFT run: a real PEFT adapter on tiny-demo with non-zero B (made, not trained, to save time)
    sft = adapter_run(sage_home, "sft-done", tiny_model, seed=3, merge=False)
    run, logs = quickstart(
        "preference", "--data", str(FIX / "dpo_sharegpt.json"), "--from-run", sft.name, "--lr", "1e-6", home=sage_home
    )
    assert len(logs) == 2
    for key in ("rewards_chosen", "rewards_rejected", "rewards_margin", "rewards_accuracy"):
        assert all(isinstance(e[key], float) for e in logs), logs
    cfg = (run / "config.yaml").read_text()
    assert f"init_adapter: {sft / 'adapter'}" in cfg and "name: tiny-demo" in cfg
    # the reference is the SFT adapter itself: at step 1 policy == reference, so no margin yet
    assert logs[0]["rewards_margin"] == 0.0 and logs[0]["loss"] == pytest.approx(0.6931, abs=1e-3)
    a, b = (load_file(str(r / "adapter" / "adapter_model.safetensors")) for r in (sft, run))
    key = next(k for k in a if "lora_B" in k)
    assert float(a[key].abs().sum()) > 0 and float((a[key] - b[key]).abs().max()) < 1e-3  # DPO started from it
    assert not (run / "adapter" / "ref").exists()  # only the trained adapter is saved, not TRL's reference copy
    env = {"SAGE_FT_HOME": str(sage_home)}
    m = cli("merge", str(run), "--json", env=env)
    assert m.returncode == 0 and json_lines(m.stdout)[-1]["report"]["self_check"]["passed"], m.stderr[-2000:]
    s = cli("serve", str(run), "--port", "0", "--backend", "transformers", "--json", env=env)
    assert s.returncode == 0, s.stderr[-2000:]
    info = json.loads(s.stdout.strip().splitlines()[-1])
    try:
        c = openai.OpenAI(base_url=info["base_url"], api_key="unused", max_retries=0, timeout=120)
        r = c.chat.completions.create(
            model=info["model"], messages=[{"role": "user", "content": "Name a primary colour."}], max_tokens=4
        )
        assert isinstance(r.choices[0].message.content, str)
    finally:
        cli("serve", "--stop", str(run), env=env)


def test_kto_rows_train_with_kl(sage_home, tiny_model):
    run, logs = quickstart(
        "preference", "--data", str(FIX / "kto_messages.json"), "--model", "tiny-demo", home=sage_home
    )
    assert all("kl" in e and "rewards_chosen" in e for e in logs), logs
    # a fresh adapter: the reference is the base with the adapter disabled, so step 1 has no margin
    assert logs[0]["rewards_margin"] == 0.0
    report = json.loads((run / "data" / "data_report.json").read_text())
    assert report["format"] == "kto" and report["counts"]["train"] == 8
    assert (run / "adapter" / "adapter_config.json").exists()


def test_grpo_with_builtin_rewards(sage_home, tiny_model, tmp_path):
    mine = tmp_path / "my_rewards.py"
    mine.write_text("def short(completions, **kw):\n    return [1.0 if len(c) < 40 else 0.0 for c in completions]\n")
    run, logs = quickstart(
        "grpo",
        "--data",
        str(FIX / "grpo_math.jsonl"),
        "--model",
        "tiny-demo",
        "--reward",
        "number_match",
        "--reward",
        f"{mine}:short",
        "--set",
        "grpo.max_completion_length=8",
        home=sage_home,
    )
    assert logs and all({"reward", "reward_number_match", "reward_short"} <= set(e) for e in logs), logs
    assert all(0.0 <= e["reward_short"] <= 1.0 for e in logs)
    assert os.path.exists(run / "adapter" / "adapter_config.json")
