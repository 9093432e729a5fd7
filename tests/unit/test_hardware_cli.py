"""`sage-ft-tui estimate`: the table, --json, and one-line errors (recorded hardware)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sage_ft_tui.cli.app import app
from sage_ft_tui.engine.hardware import probe as hw

FIX = Path(__file__).parent / "fixtures" / "hardware"
QWEN7 = str(FIX / "models" / "qwen2.5-7b")


@pytest.fixture(autouse=True)
def _rtx4090(monkeypatch):
    monkeypatch.setenv(hw.RECORDED_ENV, str(FIX / "rtx4090.json"))
    monkeypatch.setattr(hw, "_cached", None)


def run(*args):
    return CliRunner().invoke(app, ["estimate", *args])


def test_table():
    r = run("--model", QWEN7, "--quantization", "4bit", "--batch", "1", "--max-length", "1024")
    assert r.exit_code == 0, r.output
    for word in ("base weights", "activations", "optimizer states", "budget", "fits", "RTX 4090"):
        assert word in r.output


def test_json_and_preset_auto():
    r = run("--model", QWEN7, "--preset", "auto", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert (
        d["fits"] is True
        and d["quantization"] == "none"
        and d["auto"]
        and d["total"] == sum(p["bytes"] for p in d["breakdown"])
    )


def test_no_fit_says_so():
    r = run("--model", QWEN7, "--batch", "8", "--no-gradient-checkpointing", "--json")
    assert json.loads(r.output)["fits"] is False


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--model", "org/not-cached"], "not in the local Hugging Face cache"),
        (["--model", QWEN7, "-q", "2bit"], "--quantization '2bit'"),
        (["--model", QWEN7, "--batch", "0"], "--batch must be a positive"),
        (["--model", QWEN7, "--preset", "huge"], "unknown preset 'huge'"),
        (["--model", "/no/such/folder"], "no such model folder"),
    ],
)
def test_errors_are_one_line(args, msg):
    r = run(*args)
    assert r.exit_code == 2
    assert msg in r.output and "Traceback" not in r.output
    assert len([l for l in r.output.splitlines() if l.strip()]) == 1
