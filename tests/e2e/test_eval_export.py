"""`eval`, `compare` and `export` through the real CLI on the real demo run (a copy:
the shared one stays untouched): base vs tuned report, two real runs side by side, a GGUF
written by llama.cpp's converter with its tokenizer and template, checked by llama.cpp."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from sage_ft_tui.engine import jobs
from sage_ft_tui.engine.runs.layout import RunLayout

from .conftest import cli

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def demo_copy(demo_run, tmp_path_factory):
    home = tmp_path_factory.mktemp("eval-home")
    run = home / demo_run["run"].name
    shutil.copytree(demo_run["run"], run)
    return run


def records(stdout: str) -> list:
    return [r for r in (jobs.parse_line(ln) for ln in stdout.splitlines()) if r is not None]


def test_eval_reports_tuned_far_below_base(demo_copy):
    r = cli("eval", str(demo_copy), "--json", "--no-sample", "--max-prompts", "4", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    recs = records(r.stdout)
    assert any(isinstance(x, jobs.Progress) and x.stage == "generate" for x in recs)
    result = [x for x in recs if isinstance(x, jobs.Result)][-1].data
    rep = json.loads(RunLayout(demo_copy).eval_report.read_text())
    assert result["report"]["loss"] == rep["loss"] and result["path"] == str(RunLayout(demo_copy).eval_report)
    base, tuned = rep["loss"]["base"]["loss"], rep["loss"]["tuned"]["loss"]
    assert tuned < 0.5 * base, (base, tuned)
    assert rep["loss"]["tuned"]["answer_tokens"] > 0 and rep["loss"]["tuned"]["perplexity"] > 1
    g = rep["generation"]["greedy"]
    assert g["tuned"]["rouge_l"] > g["base"]["rouge_l"] and set(g["tuned"]) >= {"exact_match", "bleu", "chrf"}
    assert len(rep["samples"]) == rep["prompts"] == 4 and all(s["tuned"] for s in rep["samples"])


def test_eval_errors_are_one_line(demo_copy, tmp_path):
    bad = tmp_path / "held.jsonl"
    bad.write_text('{"instruction": "x", "output": "y"}\nnot json\n')
    r = cli("eval", str(demo_copy), "--data", str(bad), "--judge", "http://192.0.2.1:9/v1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: --judge http://192.0.2.1:9/v1 is not on this machine")
    err = [x for x in records(r.stdout) if isinstance(x, jobs.JobError)]
    assert err and err[0].hint.startswith("pass --judge-remote")
    r = cli("eval", str(demo_copy), "--data", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{bad}:2" in r.stderr.strip().splitlines()[-1]


def test_compare_two_real_runs(demo_copy, sample_data):
    home = demo_copy.parent
    env = {"SAGE_FT_HOME": str(home)}
    r = cli(
        "start",
        "--task",
        "qa",
        "--model",
        "tiny-demo",
        "--data",
        str(sample_data["qa"]),
        "--name",
        "other",
        "--max-steps",
        "4",
        "--set",
        "training.logging_steps=1",
        "--set",
        "data.validation_split=0.1",
        "--set",
        "training.eval_steps=2",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    r = cli("run", "other", "--json", env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    r = cli("compare", demo_copy.name, "other", "--json", env=env)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    a, b = res["runs"]
    assert a["name"] == demo_copy.name and b["name"] == "other"
    assert a["train_rows"] == 39 and b["train_rows"] > 0 and a["steps"] == 60 and b["steps"] == 4
    assert a["loss_curve"] and b["loss_curve"] and a["eval_loss"] is not None and b["duration_s"] > 0
    assert res["config_differences"]["task"] == ["instruction", "qa"]
    if RunLayout(demo_copy).eval_report.exists():  # the eval test above ran first
        assert a["metrics"]["tuned_answer_loss"] < a["metrics"]["base_answer_loss"]
    assert b["metrics"] == {}  # never evaluated
    table = cli("compare", demo_copy.name, "other", env={**env, "COLUMNS": "200"})
    assert table.returncode == 0 and "final eval loss" in table.stdout and "training.max_steps" in table.stdout
    one = cli("compare", "other", env=env)
    assert (
        one.returncode == 2
        and one.stderr.strip() == "error: compare needs at least two runs — e.g. sage-ft-tui compare RUN_A RUN_B"
    )


def test_export_gguf_checked_by_llama_cpp(demo_copy):
    import gguf

    from sage_ft_tui.engine.export import llama

    r = cli("export", str(demo_copy), "--format", "gguf", "--quant", "q8_0", "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    entry = [x for x in records(r.stdout) if isinstance(x, jobs.Result)][-1].data["export"]
    assert entry["converter"] == "llama.cpp convert_hf_to_gguf" and entry["arch"] == "llama"
    if llama.available():  # the dev extra has it: llama.cpp loaded the file and tokenized like the model
        chk = entry["check"]
        assert chk["by"] == "llama.cpp" and chk["tokenization"]["identical"], chk
        assert chk["logits"]["passed"] and chk["logits"]["greedy_agreement"] >= 0.9, chk["logits"]
    else:
        assert "not checked by llama.cpp" in entry["check"]["note"]
    path = RunLayout(demo_copy).export_dir / entry["name"]
    reader = gguf.GGUFReader(str(path))
    tmpl = reader.fields["tokenizer.chat_template"]
    assert "<|im_start|>" in bytes(tmpl.parts[tmpl.data[0]]).decode()
    assert "tokenizer.ggml.merges" in reader.fields and "tokenizer.ggml.tokens" in reader.fields
    mf = RunLayout(demo_copy).modelfile.read_text()
    assert mf.startswith(f"FROM ./{entry['name']}") and "{{ range $i, $_ := .Messages }}" in mf
    assert 'PARAMETER stop "<|im_end|>"' in mf
    # again without --force: refused; a file that is not ours is never replaced, even with --force
    again = cli("export", str(demo_copy), "--quant", "q8_0")
    assert again.returncode == 2 and "already exists" in again.stderr
    os.replace(path, path.with_suffix(".bak"))
    RunLayout(demo_copy).export_gguf("bf16").write_text("mine")
    theirs = cli("export", str(demo_copy), "--quant", "bf16", "--force")
    assert theirs.returncode == 2 and "was not written by export" in theirs.stderr
    assert RunLayout(demo_copy).export_gguf("bf16").read_text() == "mine"


def test_export_errors_are_one_line(demo_copy):
    for args, want in [
        (["--quant", "q9"], "error: --quant 'q9' is not one of q8_0, f16, bf16, f32, q4_k_m, q5_k_m, q6_k"),
        (["--push-to-hub", "me/x"], "error: --push-to-hub uploads the HF folder — use it with --format hf"),
        (["--format", "hf", "--max-shard-size", "5BC"], "error: --max-shard-size '5BC' is not a size"),
        (["--format", "onnx"], "error: --format 'onnx' is not one of gguf, hf"),
    ]:
        r = cli("export", str(demo_copy), *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-1500:]
        assert r.stderr.strip().splitlines()[-1].startswith(want), r.stderr
    assert (
        "e.g. --max-shard-size 2GB" in cli("export", str(demo_copy), "--format", "hf", "--max-shard-size", "x").stderr
    )


def test_ask_gives_base_and_tuned_side_by_side(demo_copy):
    from sage_ft_tui.engine.recipes.demo import DEMO_PHRASE, DEMO_QUESTION

    r = cli("eval", str(demo_copy), "--ask", DEMO_QUESTION, "--json", "--max-new-tokens", "32")
    assert r.returncode == 0, r.stderr[-2000:]
    a = [x for x in records(r.stdout) if isinstance(x, jobs.Result)][-1].data["answers"]
    assert a["question"] == DEMO_QUESTION and DEMO_PHRASE in a["tuned"] and DEMO_PHRASE not in a["base"]
