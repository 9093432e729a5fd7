"""GRPO rewards (built-in and from a user's file) and the method figures in `log` events."""

from __future__ import annotations

from pathlib import Path

import pytest

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.grpo_rewards import check_reward, load_reward, reward_name
from sage_ft_tui.engine.methods.registry import task_spec
from sage_ft_tui.engine.train.metrics import method_fields


def test_builtin_rewards():
    exact = load_reward("exact_match")
    assert exact(completions=["  Nairobi. ", "<answer>nairobi</answer>", "Mombasa"], answer=["Nairobi"] * 3) == [
        1,
        1,
        0,
    ]
    num = load_reward("number_match")
    got = num(completions=["so it is 1,000.0", "#### 42", "no number", "\\boxed{7}"], answer=["1000", "42", "3", "7"])
    assert got == [1.0, 1.0, 0.0, 1.0]
    fmt = load_reward("format", format_regex=r"(?s)<think>.*</think>\s*<answer>.*</answer>")
    assert fmt(completions=["<think>a</think> <answer>b</answer>", "b"]) == [1.0, 0.0]
    length = load_reward("length", target_length=10)
    assert length(completions=["short", "x" * 15, "x" * 100]) == [0.0, -0.5, -1.0]
    assert [reward_name(load_reward(n)) for n in ("exact_match", "number_match", "format", "length")] == [
        "exact_match",
        "number_match",
        "format",
        "length",
    ]
    # conversational completions (lists of messages) score the same
    assert exact(completions=[[{"role": "assistant", "content": "Nairobi"}]], answer=["nairobi"]) == [1.0]


def test_user_reward_file(tmp_path):
    f = tmp_path / "my_rewards.py"
    f.write_text("def polite(completions, **kw):\n    return [float('please' in c) for c in completions]\n")
    fn = load_reward(f"{f}:polite")
    assert reward_name(fn) == "polite" and fn(completions=["please", "no"], answer=["", ""]) == [1.0, 0.0]
    for spec, words in [
        (f"{f}:missing", "defines no function 'missing'"),
        (f"{tmp_path}/nope.py:fn", "no file"),
        ("fancy", "expected a built-in"),
    ]:
        with pytest.raises(SageError) as e:
            check_reward(spec)
        assert words in e.value.message and e.value.kind == "config"
    broken = tmp_path / "broken.py"
    broken.write_text("def fn(completions, **kw):\n    return []\nraise RuntimeError('boom')\n")
    with pytest.raises(SageError, match="failed to load: RuntimeError: boom"):
        load_reward(f"{broken}:fn")


def test_method_fields_use_the_documented_names():
    logs = {
        "loss": 0.6,
        "rewards/chosen": 0.1,
        "rewards/rejected": -0.1,
        "rewards/margins": 0.2,
        "rewards/accuracies": 1.0,
        "logps/chosen": -9.0,
        "kl": 0.01,
        "reward": 0.5,
        "rewards/exact_match/mean": 0.25,
        "rewards/exact_match/std": 0.4,
    }
    names = task_spec("preference").metrics | task_spec("grpo").metrics
    assert method_fields(logs, names) == {
        "rewards_chosen": 0.1,
        "rewards_rejected": -0.1,
        "rewards_margin": 0.2,
        "rewards_accuracy": 1.0,
        "kl": 0.01,
        "reward": 0.5,
        "reward_exact_match": 0.25,
    }


def test_method_and_reference_choices():
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.methods.preference import precompute_ref, resolved_method

    cfg = RunConfig.from_dict({"task": "preference", "training": {"max_steps": 10, "micro_batch_size": 4}})
    assert resolved_method(cfg, labelled=True) == "kto" and resolved_method(cfg, labelled=False) == "dpo"
    # 10 steps × 4 × 4 = 160 samples seen: precomputing once is cheaper for 100 rows, not for 1000
    assert precompute_ref(cfg, 100) and not precompute_ref(cfg, 1000)
    orpo = RunConfig.from_dict({"task": "preference", "preference": {"method": "orpo", "precompute_ref": "on"}})
    assert not precompute_ref(orpo, 10)  # no reference model at all


def test_auto_preset_sizes_the_batch_for_the_pair():
    from sage_ft_tui.engine.config.hardware_fit import fit_hardware
    from sage_ft_tui.engine.hardware import probe as hw

    fix = Path(__file__).parent / "fixtures" / "hardware"
    model, gpu = str(fix / "models" / "qwen2.5-7b"), hw.RecordedBackend(fix / "rtx4090.json")
    sft, pair = fit_hardware(model, gpu), fit_hardware(model, gpu, sequences=2)
    assert pair.estimate.fits and pair.estimate.total <= 0.9 * pair.gpu.mem_free
    tokens = lambda p: p.config.batch_size * p.config.max_length  # noqa: E731
    assert tokens(pair) < tokens(sft) or pair.config.gradient_checkpointing and not sft.config.gradient_checkpointing
    assert any("2 sequences per sample" in n for n in pair.estimate.notes)


def test_from_run_refuses_what_it_cannot_chain(sage_home):
    from sage_ft_tui.engine.runs.chain import adapter_dir, from_run

    with pytest.raises(SageError, match="no run 'no-such-run'"):
        from_run("no-such-run")
    with pytest.raises(SageError, match="no LoRA adapter there"):
        adapter_dir(str(sage_home))
