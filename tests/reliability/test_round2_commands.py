"""Round two, every command on every task's runs (issue 21, item 5): `eval` and `compare`
on preference (DPO pairs, KTO rows) and GRPO runs, through the real CLI.

The GRPO run really trains (3 steps, the default logging_steps of 5, so only step 1 is
logged: what `compare` used to show as the whole run). The DPO and KTO runs are prepared
by the real `start` and hold a real PEFT adapter with non-zero B (made, not trained, to
save time: eval only needs an adapter and the run's config and data)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import cli, one_error_line

pytestmark = [pytest.mark.train, pytest.mark.timeout(600)]  # over the default 180 s on a busy machine

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "preference"
SHORT = ["--max-length", "64", "--set", "data.validation_split=0.25"]
EVAL = ["--max-prompts", "2", "--no-sample", "--max-new-tokens", "4", "--json"]


def _created(p) -> str:
    assert p.returncode == 0, p.stderr[-3000:]
    return next(ln.split()[-1] for ln in p.stdout.splitlines() if ln.startswith("created run"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model) -> dict[str, Path]:
    from sage_ft_tui.engine.runs.state import write_status
    from tests.adapters import make_adapter

    home = tmp_path_factory.mktemp("round2cmd") / "runs"
    env = {"SAGE_FT_HOME": str(home)}

    def made(name: str, data: str) -> Path:
        p = cli("start", "--task", "preference", "--data", FIX / data, "--model", "tiny-demo", "--name", name,
                "--no-tui", *SHORT, env=env)  # fmt: skip
        run = home / _created(p)
        make_adapter(tiny_model, run / "adapter", seed=len(name))
        write_status(run, state="completed", step=3, total_steps=3, ended=time.time())
        return run

    def trained() -> Path:
        p = cli("quickstart", "grpo", "--data", FIX / "grpo_math.jsonl", "--model", "tiny-demo", "--name", "grpo",
                "--no-tui", "--max-steps", "3", "--set", "grpo.max_completion_length=4", *SHORT, env=env, timeout=600)  # fmt: skip
        assert p.returncode == 0, p.stderr[-3000:]
        return home / "grpo"

    with ThreadPoolExecutor(max_workers=3) as pool:
        g = pool.submit(trained)
        dpo, kto = pool.submit(made, "dpo", "dpo_sharegpt.json"), pool.submit(made, "kto", "kto_messages.json")
        return {"home": home, "dpo": dpo.result(), "kto": kto.result(), "grpo": g.result()}


@pytest.fixture(scope="module")
def evals(runs, tmp_path_factory) -> dict:
    t = tmp_path_factory.mktemp("kto_false")
    only_bad = t / "kto_only_false.jsonl"
    only_bad.write_text(
        "".join(json.dumps({"prompt": f"Q{i}?", "completion": f"Wrong {i}.", "label": False}) + "\n" for i in range(3))
    )
    env = {"SAGE_FT_HOME": str(runs["home"])}
    jobs = {
        "dpo": ["eval", "dpo", *EVAL],
        "grpo": ["eval", "grpo", *EVAL],
        "kto": ["eval", "kto", "--data", FIX / "kto_messages.json", *EVAL],
        "kto_false": ["eval", "kto", "--data", only_bad, *EVAL],
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        futs = {k: pool.submit(cli, *args, env=env, timeout=600) for k, args in jobs.items()}
        return {k: f.result() for k, f in futs.items()}


def _report(p) -> dict:
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-3000:]
    last = json.loads(p.stdout.strip().splitlines()[-1])
    assert last["event"] == "result"
    return last["report"]


@pytest.mark.parametrize("task", ["dpo", "grpo", "kto"])
def test_eval_works_on_preference_and_grpo_runs(runs, evals, task):
    rep = _report(evals[task])  # before: KeyError: 'messages' (a traceback)
    assert rep["task"] in ("preference", "grpo")
    for side in ("base", "tuned"):
        assert rep["loss"][side]["answer_tokens"] > 0 and rep["loss"][side]["loss"] > 0
    assert rep["samples"] and all(s["reference"] for s in rep["samples"])


def test_eval_of_grpo_scores_against_the_reference_answer(runs, evals):
    rep = _report(evals["grpo"])
    answers = {json.loads(ln)["answer"] for ln in (FIX / "grpo_math.jsonl").read_text().splitlines() if ln.strip()}
    assert {s["reference"] for s in rep["samples"]} <= answers


def test_eval_of_kto_rows_with_no_good_answer_says_why(evals):
    err = one_error_line(evals["kto_false"])
    assert "has a good answer to score (KTO rows with label true)" in err


def test_compare_shows_the_runs_own_steps(runs):
    p = cli("compare", "grpo", "dpo", "--json", env={"SAGE_FT_HOME": str(runs["home"])})
    assert p.returncode == 0, p.stderr
    by = {r["name"]: r for r in json.loads(p.stdout)["runs"]}
    g = by["grpo"]
    assert g["state"] == "completed" and g["steps"] == 3, g  # before: 1 (the last logged step)
    assert g["train_loss_step"] == 1
    t = cli("compare", "grpo", "dpo", env={"SAGE_FT_HOME": str(runs["home"])})
    assert "(step 1)" in t.stdout  # the loss says which step it is
