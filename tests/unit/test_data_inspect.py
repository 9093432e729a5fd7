"""The data inspector (engine/data/inspect.py) through the real prepare step and the real
tiny-demo tokenizer: wrong signals are refused or warned, secrets never reach the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.data.inspect import inspect_data, summary_lines
from sage_ft_tui.engine.data.load import load_training_data
from sage_ft_tui.engine.data.prepare import prepare_run_data
from sage_ft_tui.engine.errors import SageError

ROWS = [{"instruction": f"say {i}", "output": f"answer number {i}"} for i in range(40)]
SECRET = "sk-proj-" + "Zq7" * 12


def jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def write(tmp_path, rows, name="d.jsonl"):
    p = tmp_path / name
    p.write_text(jsonl(rows))
    return p


def cfg_for(path, **data) -> RunConfig:
    max_length = data.pop("max_length", 256)
    return RunConfig.from_dict(
        {
            "task": "instruction",
            "model": {"name": "tiny-demo"},
            "data": {"paths": [str(path)], **data},
            "training": {"max_length": max_length},
        }
    )


@pytest.mark.parametrize(
    "row,named",
    [
        ({"instruction": "hear", "output": "a bird", "audios": ["a.wav"]}, "field 'audios'"),
        ({"instruction": "<|video_pad|>describe", "output": "a cat"}, "<|video_pad|> token in 'instruction'"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x"}}]},
                    {"role": "assistant", "content": "a cat"},
                ]
            },
            "input_audio content part",
        ),
    ],
)
def test_audio_and_video_rows_are_refused_naming_the_field(tmp_path, row, named):
    # (image rows are trained: tests/unit/test_image_data.py)
    p = write(tmp_path, ROWS + [row])
    with pytest.raises(SageError) as e:
        load_training_data(p, task="chat")
    assert named in e.value.message and e.value.where == f"{p}:41"
    # an empty images list (LLaMA-Factory writes them) is text data
    assert load_training_data(write(tmp_path, [dict(r, images=[]) for r in ROWS], "e.jsonl")).records


@pytest.mark.parametrize(
    "row", [{"prompt": "p", "chosen": "good", "rejected": "bad"}, {"prompt": "p", "completion": "c", "label": False}]
)
def test_preference_data_given_to_sft_is_refused(tmp_path, row):
    p = write(tmp_path, [row] * 5)
    with pytest.raises(SageError) as e:
        load_training_data(p)
    assert "this is preference data" in e.value.message and "--task preference" in e.value.hint


def test_placeholders_warned_and_filled_by_data_replace(tmp_path):
    p = write(tmp_path, ROWS + [{"instruction": "Hi {{name}}, about {{ topic }}", "output": "Dear {{name}}"}])
    got = load_training_data(p)
    (f,) = [f for f in got.findings if f.kind == "placeholder"]
    assert f.severity == "warning" and "{{name}} ×1" in f.message and "{{topic}}" in f.message
    assert f.where == f"{p}:41" and "data.replace.name" in f.hint
    got = load_training_data(p, replace={"name": "Ada", "{{topic}}": "maths"})
    assert got.records[-1]["messages"][0]["content"] == "Hi Ada, about maths"
    assert not [f for f in got.findings if f.kind == "placeholder"]


def test_secrets_are_skipped_and_never_reach_the_run_folder(tmp_path, tiny_model):
    secret_rows = [
        {"instruction": "my key", "output": f"use {SECRET}"},
        {"instruction": "key", "output": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n"},
        {"instruction": "db", "output": "postgres://admin:s3cr3tPw@db.internal/app"},
    ]
    p = write(tmp_path, ROWS + secret_rows)
    run = tmp_path / "run"
    report = prepare_run_data(cfg_for(p, max_bad_share=0.1), run)
    assert report["counts"]["skipped"] == 3 and report["counts"]["train"] == 40
    reasons = {s["where"]: s["reason"] for s in report["skipped"]}
    assert reasons[f"{p}:41"] == "holds a secret (openai key); skipped"
    assert "private key block" in reasons[f"{p}:42"] and "password in a URL" in reasons[f"{p}:43"]
    for f in (run / "data").rglob("*"):
        if f.is_file():
            text = f.read_text(errors="replace")
            assert SECRET not in text and "s3cr3tPw" not in text and "b3BlbnNzaC1rZXk" not in text, f
    # the opt-out trains them, with a warning
    report = prepare_run_data(cfg_for(p, allow_secrets=True), tmp_path / "run2")
    assert report["counts"]["train"] == 43
    assert any(
        f["kind"] == "secret" and "allow_secrets is on" in f["message"] for f in report["inspection"]["findings"]
    )


def test_truncation_figures_eos_loss_and_memory(tmp_path, tiny_model):
    long = [{"instruction": f"q{i}", "output": "word " * (20 + i * 3)} for i in range(40)]
    p = write(tmp_path, long)
    report = prepare_run_data(cfg_for(p, max_length=64), tmp_path / "run")
    tr = report["inspection"]["truncation"]
    assert tr["share_cut"] > 0.5 and tr["share_eos_lost"] == tr["share_cut"]
    assert 64 < tr["keep_95"] <= tr["keep_99"] and tr["keep_99_memory"] > tr["keep_95_memory"] > 0
    (f,) = [f for f in report["inspection"]["findings"] if f["kind"] == "eos_lost"]
    assert f"--max-length {tr['keep_95']} keeps 95% whole" in f["hint"]
    lines = summary_lines(report)
    assert "answers lose their EOS" in lines[0] and any(ln.startswith("warning: ") for ln in lines)


def test_rows_with_no_trained_token_are_dropped_and_none_left_is_refused(tmp_path, tiny_model):
    rows = ROWS[:30] + [{"instruction": "long question " * 60, "output": "short"}] * 2
    p = write(tmp_path, rows)
    report = prepare_run_data(cfg_for(p, max_length=48), tmp_path / "run")
    assert report["counts"]["dropped_no_trained_token"] == 2 and report["counts"]["train"] == 30
    train = (tmp_path / "run" / "data" / "train.jsonl").read_text()
    assert "long question" not in train
    with pytest.raises(SageError, match="no sample keeps an answer token within max length 8"):
        prepare_run_data(cfg_for(write(tmp_path, ROWS, "short.jsonl"), max_length=8), tmp_path / "run8")


def test_wizard_inspection_has_structured_findings(tmp_path, tiny_model):
    p = write(tmp_path, ROWS + [{"instruction": "x {{who}}", "output": "y"}])
    ins = inspect_data([str(p)], max_length=256)
    assert ins.ok and ins.usable == 41
    f = next(f for f in ins.findings if f.kind == "placeholder")
    assert (f.severity, f.where) == ("warning", f"{p}:41") and f.hint and f.message
    bad = inspect_data([str(write(tmp_path, [{"prompt": "p", "chosen": "a", "rejected": "b"}], "pref.jsonl"))])
    assert not bad.ok and bad.findings[0].kind == "preference" and bad.findings[0].severity == "error"


def test_cli_refuses_max_length_8_in_one_line(tmp_path, tiny_model):
    p = write(tmp_path, ROWS)
    env = {**os.environ, "SAGE_FT_HOME": str(tmp_path / "home")}
    base = [sys.executable, "-m", "sage_ft_tui", "start", "--task", "instruction", "--model", "tiny-demo"]
    r = subprocess.run(
        base + ["--data", str(p), "--max-length", "8", "--no-tui"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "max length 8" in lines[0]
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").iterdir())
