"""OOM recovery in the worker: halve the micro-batch, double accumulation, resume from the
newest complete checkpoint, record it as events, give up with the estimate after N tries.
run_training is replaced by a stand-in that raises a CUDA OOM (no GPU here)."""

import json
from pathlib import Path

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.hardware import probe as hw
from sage_ft_tui.engine.runs.events import EventWriter
from sage_ft_tui.engine.train import worker

FIX = Path(__file__).parent / "fixtures" / "hardware"


class OutOfMemoryError(RuntimeError):  # the name torch.cuda.OutOfMemoryError has
    pass


def setup(tmp_path, monkeypatch, fails, mb=8, retries=3):
    monkeypatch.setenv(hw.RECORDED_ENV, str(FIX / "rtx3060.json"))
    monkeypatch.setattr(hw, "_cached", None)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    cfg = RunConfig.from_dict(
        {
            "model": {"name": str(FIX / "models" / "qwen2.5-0.5b")},
            "training": {"micro_batch_size": mb, "grad_accumulation": 2, "oom_retries": retries},
        }
    )
    cfg.save(tmp_path / "config.yaml")
    ck = tmp_path / "checkpoints" / "checkpoint-20"
    ck.mkdir(parents=True)
    (ck / "sage_complete.json").write_text("{}")
    calls = []

    def fake_run_training(cfg, run, train_ds, eval_ds, *, events, flags, resume_from, status_cb):
        calls.append((cfg.training.micro_batch_size, cfg.training.grad_accumulation, resume_from))
        if len(calls) <= fails:
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "done"

    monkeypatch.setattr(worker, "run_training", fake_run_training)
    ev = EventWriter(tmp_path / "events.jsonl")
    status = []

    def go():
        return worker._train_with_oom_retries(
            cfg,
            tmp_path,
            None,
            None,
            events=ev,
            flags=worker.StopFlags(tmp_path),
            resume_from=None,
            status_cb=lambda **kw: status.append(kw),
        )

    return go, calls, tmp_path / "events.jsonl", status


def test_recovers_keeping_effective_batch(tmp_path, monkeypatch):
    go, calls, events, status = setup(tmp_path, monkeypatch, fails=2)
    assert go() == "done"
    assert [(mb, acc) for mb, acc, _ in calls] == [(8, 2), (4, 4), (2, 8)]
    assert calls[0][2] is None and calls[1][2].name == "checkpoint-20"
    evs = [json.loads(l) for l in events.read_text().splitlines()]
    assert [e["retry"] for e in evs if e["kind"] == "error" and e.get("recovering")] == [1, 2]
    saved = RunConfig.load(tmp_path / "config.yaml").training
    assert (saved.micro_batch_size, saved.grad_accumulation) == (2, 8)
    assert status[-1]["oom_retries"] == 2


def test_gives_up_with_the_estimate(tmp_path, monkeypatch):
    go, calls, _, _ = setup(tmp_path, monkeypatch, fails=99, retries=2)
    with pytest.raises(SageError) as e:
        go()
    assert e.value.kind == "oom" and len(calls) == 3
    assert "2 retries used" in e.value.message and "GiB" in e.value.message and "estimate" in e.value.message


def test_micro_batch_one_cannot_shrink(tmp_path, monkeypatch):
    go, calls, _, _ = setup(tmp_path, monkeypatch, fails=99, mb=1)
    with pytest.raises(SageError, match="micro-batch is already 1"):
        go()
    assert len(calls) == 1


def test_other_errors_pass_through(tmp_path, monkeypatch):
    go, calls, _, _ = setup(tmp_path, monkeypatch, fails=0)

    def boom(*a, **k):
        raise ValueError("bad data")

    monkeypatch.setattr(worker, "run_training", boom)
    with pytest.raises(ValueError):
        go()
