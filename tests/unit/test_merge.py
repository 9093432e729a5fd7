"""merge: adapter choice by step number, self-check, safe overwrite, disk check, errors.

The adapters are real PEFT adapters on the tiny model with non-zero B matrices, so the
self-check compares two different things (base+adapter vs merged), not base vs base."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sage_ft_tui.engine.deploy import artifacts as A
from sage_ft_tui.engine.deploy import merge as M
from sage_ft_tui.engine.errors import SageError
from tests.adapters import make_adapter


def _make_adapter(base: Path, out: Path, seed: int, r: int = 8) -> Path:
    return make_adapter(base, out, seed, r)


@pytest.fixture(scope="module")
def adapters(tiny_model, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {k: _make_adapter(tiny_model, root / k, seed) for k, seed in (("a", 1), ("b", 2))}


def _new_run(name: str = "m1") -> Path:
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.runs.create import create_run

    cfg = RunConfig.from_dict(
        {"name": name, "task": "qa", "model": {"name": "tiny-demo"}, "data": {"paths": ["x.jsonl"]}}
    )
    return create_run(cfg, prepare=False)


@pytest.fixture
def run_with_adapter(adapters) -> Path:
    run = _new_run()
    shutil.copytree(adapters["a"], run / "adapter")
    return run


def _add_checkpoint(run: Path, step: int, adapter: Path, complete: bool = True) -> Path:
    ck = run / "checkpoints" / f"checkpoint-{step}"
    shutil.copytree(adapter, ck)
    if complete:
        (ck / "sage_complete.json").write_text("{}")
    return ck


def _tree(p: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(p.iterdir()) if f.is_file()}


def test_merge_final_adapter_self_check_and_files(run_with_adapter, tiny_model):
    run = run_with_adapter
    stages = []
    rep = M.merge_run(run.name, progress=lambda s, i: stages.append(s))
    out = run / "merged"
    assert stages[:1] == ["resolve"] and stages[-1] == "done" and "check" in stages
    sc = rep["self_check"]
    assert sc["passed"] and sc["max_rel_diff"] <= sc["tolerance"]
    assert sc["adapter_effect"] > 100 * sc["tolerance"], (
        "the adapter must change the logits, or the check proves nothing"
    )
    assert rep["source"] == "final adapter" and rep["dtype"] == "float32"
    names = {f.name for f in out.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "chat_template.jinja",
        "generation_config.json",
        "merge_report.json",
    } <= names
    assert not any(n.endswith((".bin", ".pt")) for n in names)
    assert "adapter_config.json" not in names  # a plain model, not a PEFT folder
    gen = json.loads((out / "generation_config.json").read_text())
    eos = gen["eos_token_id"] if isinstance(gen["eos_token_id"], list) else [gen["eos_token_id"]]
    tok = json.loads((tiny_model / "tokenizer.json").read_text())
    im_end = next(t["id"] for t in tok["added_tokens"] if t["content"] == "<|im_end|>")
    assert im_end in eos
    assert json.loads((run / "merge_report.json").read_text())["self_check"]["passed"]
    assert A.merged_ok(out)
    assert not [p for p in run.iterdir() if p.name.startswith(".merged")]


def test_checkpoints_by_step_number_not_text(adapters):
    run = _new_run("ck")
    _add_checkpoint(run, 2, adapters["a"])
    _add_checkpoint(run, 10, adapters["b"])
    _add_checkpoint(run, 11, adapters["a"], complete=False)  # half-written: never chosen
    assert A.find_adapter(run, "latest")[1] == "checkpoint-10"
    assert A.find_adapter(run, 2)[1] == "checkpoint-2"
    assert A.find_adapter(run, "checkpoint-2")[1] == "checkpoint-2"
    with pytest.raises(SageError, match="incomplete"):
        A.find_adapter(run, 11)
    with pytest.raises(SageError, match="does not exist") as e:
        A.find_adapter(run, 5)
    assert "2, 10" in e.value.hint
    with pytest.raises(SageError, match="step number or 'latest'"):
        A.find_adapter(run, "newest")
    # No final adapter: the error points at the checkpoints.
    with pytest.raises(SageError, match="no final adapter") as e:
        A.find_adapter(run)
    assert "--checkpoint latest" in e.value.hint and "10" in e.value.hint
    rep = M.merge_run(run, checkpoint="latest")
    assert rep["source"] == "checkpoint-10" and rep["self_check"]["passed"]


def test_no_adapter_at_all():
    run = _new_run("empty")
    with pytest.raises(SageError, match="no adapter and no complete checkpoint") as e:
        M.merge_run(run)
    assert "train" in e.value.hint
    assert not (run / "merged").exists()


def test_refuses_overwrite_and_old_survives_a_failed_force(run_with_adapter, adapters, monkeypatch):
    run = run_with_adapter
    M.merge_run(run)
    before = _tree(run / "merged")
    with pytest.raises(SageError, match="already exists") as e:
        M.merge_run(run)
    assert "--force" in e.value.hint
    assert _tree(run / "merged") == before

    def boom(*a, **k):
        raise RuntimeError("simulated crash halfway through saving")

    monkeypatch.setattr(M, "_do_merge", boom)
    with pytest.raises(SageError, match="merge failed: RuntimeError"):
        M.merge_run(run, force=True)
    assert _tree(run / "merged") == before
    assert not [p for p in run.iterdir() if p.name.startswith(".merged")]
    monkeypatch.undo()

    # A successful --force replaces it (new adapter → new weights) and leaves no debris.
    shutil.rmtree(run / "adapter")
    shutil.copytree(adapters["b"], run / "adapter")
    M.merge_run(run, force=True)
    after = _tree(run / "merged")
    assert after["model.safetensors"] != before["model.safetensors"]
    assert not [p for p in run.iterdir() if p.name.startswith(".merged")]


def test_disk_check_comes_first(run_with_adapter, monkeypatch):
    run = run_with_adapter
    monkeypatch.setattr(M, "free_bytes", lambda p: 1000)
    called = []
    monkeypatch.setattr(M, "_do_merge", lambda *a, **k: called.append(1))
    with pytest.raises(SageError, match="not enough disk space") as e:
        M.merge_run(run)
    assert e.value.kind == "disk" and not called
    assert not (run / "merged").exists()


def test_self_check_mismatch_fails_and_writes_nothing(run_with_adapter, monkeypatch):
    """A merge that silently drops the adapter must be caught by the self-check."""
    from peft.tuners.tuners_utils import BaseTuner

    run = run_with_adapter
    monkeypatch.setattr(BaseTuner, "merge_and_unload", lambda self, **kw: self.unload())
    with pytest.raises(SageError, match="self-check failed") as e:
        M.merge_run(run)
    assert e.value.where.endswith("merge_report.json")
    assert not (run / "merged").exists()
    rep = json.loads((run / "merge_report.json").read_text())
    assert rep["self_check"]["passed"] is False and rep["self_check"]["max_rel_diff"] > rep["self_check"]["tolerance"]
    assert not [p for p in run.iterdir() if p.name.startswith(".merged")]


def test_eos_includes_the_turn_end_token(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    tok.eos_token = "<|endoftext|>"  # a base model whose eos is not the chat turn's end
    ids = M._eos_ids(tok, None)
    assert ids[0] == tok.convert_tokens_to_ids("<|endoftext|>")
    assert tok.convert_tokens_to_ids("<|im_end|>") in ids


def test_bad_inputs_are_one_line_errors(run_with_adapter):
    env = {**os.environ}
    cases = [
        (["merge", "no-such-run"], "no run 'no-such-run'"),
        (["merge", run_with_adapter.name, "--checkpoint", "abc"], "step number or 'latest'"),
        (["merge", run_with_adapter.name, "--dtype", "int3"], "--dtype 'int3'"),
    ]
    for args, want in cases:
        p = subprocess.run(
            [sys.executable, "-m", "sage_ft_tui", *args], capture_output=True, text=True, env=env, timeout=120
        )
        assert p.returncode == 2, p.stderr
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and want in lines[0], p.stderr
        assert "Traceback" not in p.stderr + p.stdout


def test_helpers_are_light():
    """The TUI imports merge helpers: no torch/transformers at import time."""
    code = (
        "import sys, sage_ft_tui.engine.deploy.merge, sage_ft_tui.engine.deploy.serve, sage_ft_tui.engine.deploy.chat,"
        " sage_ft_tui.engine.deploy.serve_command, sage_ft_tui.engine.deploy.serve_info, sage_ft_tui.engine.deploy.net;"
        "bad=[m for m in ('torch','transformers','peft','textual') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_sigterm_mid_merge_keeps_the_old_model(run_with_adapter):
    """The TUI cancels with SIGTERM: the half-made folder goes, the old merged model stays."""
    import signal

    run = run_with_adapter
    M.merge_run(run)
    before = _tree(run / "merged")
    p = subprocess.Popen(
        [sys.executable, "-m", "sage_ft_tui", "merge", str(run), "--force", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in p.stdout:
        if json.loads(line).get("stage") in ("adapter", "merge", "save"):
            break
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "nothing was changed" in err
    assert _tree(run / "merged") == before
    assert not [q for q in run.iterdir() if q.name.startswith(".merged")]


def test_config_dtype_one_reader_for_merge_and_export(tmp_path):
    """deploy.artifacts.config_dtype: the top-level dtype, else the text model's (a VLM), without
    a "torch." prefix; "" when none is named or config.json is unreadable. The merge's size
    estimate then counts 4 bytes a weight (float32), as before."""
    cases = [
        ({"torch_dtype": "torch.bfloat16"}, "bfloat16"),
        ({"dtype": "float16", "torch_dtype": "float32"}, "float16"),
        ({"text_config": {"torch_dtype": "bfloat16"}}, "bfloat16"),
        ({"text_config": ["not", "a", "dict"]}, ""),
        (["not", "an", "object"], ""),
        ({}, ""),
    ]
    for i, (cfg, want) in enumerate(cases):
        d = tmp_path / str(i)
        d.mkdir()
        (d / "config.json").write_text(json.dumps(cfg))
        assert A.config_dtype(d) == want, cfg
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    assert A.config_dtype(tmp_path / "bad") == "" and A.config_dtype(tmp_path / "missing") == ""
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"\0" * 400)
    assert A.expected_size(tmp_path / "bad", "bfloat16") == 200  # unknown source dtype: float32
