"""engine/runs/plan.py: optimizer steps, tokens per step and duration from a config and its
data (what the Review step and `start` show), TRL's bfd packing, and the fit-length cost."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.runs.plan import length_cost, packed_rows, plan, plan_lines, plan_rows, plan_run, with_duration


def _cfg(task: str = "instruction", **training) -> RunConfig:
    base = {"micro_batch_size": 4, "grad_accumulation": 2, "max_length": 64, "epochs": 3, "packing": False}
    return RunConfig.from_dict(
        {"task": task, "model": {"name": "tiny-demo"}, "data": {"paths": ["x.jsonl"], "validation_split": 0.1},
         "training": {**base, **training}}, source="test",
    )  # fmt: skip


def test_steps_follow_the_trainer_arithmetic():
    ins = SimpleNamespace(usable=100, token_lengths=[30] * 100)
    p = plan(_cfg(), ins)
    # 100 rows − 10% eval = 90; 4 × 2 per step → ceil(90 / 8) = 12 per epoch, 3 epochs
    assert (p.train_rows, p.samples_per_step, p.tokens_per_step) == (90, 8, 8 * 64)
    assert (p.steps_per_epoch, p.total_steps) == (12, 36)
    assert plan(_cfg(max_steps=7), ins).total_steps == 7
    assert plan(_cfg(), None).total_steps is None  # no data yet: unknown, not a guess
    assert dict(plan_lines(p))["total steps"] == "36" and dict(plan_lines(p))["tokens/step"] == "≤ 512"


def test_packing_counts_bfd_rows_not_the_mean():
    # 42 + 22 fill a row exactly; two 40s never share one: the mean (35) would claim 3 rows
    assert packed_rows([42, 22, 40, 40], 64) == 3
    assert packed_rows([40, 40, 40, 40], 64) == 4  # ceil(160 / 64) = 3 would be wrong
    assert packed_rows([100, 10], 64) == 2  # cut at max length, then packed
    ins = SimpleNamespace(usable=100, token_lengths=[40] * 100)
    p = plan(_cfg(packing=True), ins)
    assert p.steps_per_epoch == 12 and not p.approx  # 90 rows of 40 tokens: 90 packed rows
    mean_only = plan_rows(_cfg(packing=True), 90, mean_length=40)
    assert mean_only.approx and mean_only.steps_per_epoch == 8  # ceil(90·40/64)=57 → a lower bound
    assert mean_only.summary().startswith("≥ 24 optimizer steps")
    short = SimpleNamespace(usable=100, token_lengths=[10] * 100)
    packed = plan(_cfg(packing=True), short)
    assert packed.steps_per_epoch == 2  # 6 rows of 10 share one: 90 rows → 16 packed
    lines = dict(plan_lines(packed))  # the Review step and `start` say packing, not a bare "per epoch 2"
    assert lines["  per epoch"] == "2 (packed)" and lines["  packed into"] == "16 rows of 64 tok"
    assert lines["samples/step"] == "8 packed rows"
    assert "  packed into" not in dict(plan_lines(plan(_cfg(), short)))
    assert plan(_cfg("preference", packing=True), short).steps_per_epoch == 12  # pairs are never packed


def test_duration_is_measured_on_a_finished_run_of_the_same_model(tmp_path, sage_home):
    from sage_ft_tui.engine.runs.layout import RunLayout

    run = sage_home / "done"
    run.mkdir(parents=True)
    lay = RunLayout(run)
    lay.marker.write_text("")
    _cfg().save(lay.config)
    now = time.time()
    lay.status.write_text(
        json.dumps({"state": "completed", "step": 10, "started": now - 100, "ended": now, "created": now - 100})
    )
    p = with_duration(plan(_cfg(), SimpleNamespace(usable=100, token_lengths=[])), "tiny-demo")
    # 100 s for 10 steps of 8 × 64 tokens; 36 steps of the same size take 360 s
    assert p.seconds is not None and abs(p.seconds - 360) < 1 and p.basis == "measured on done"
    assert with_duration(plan(_cfg(), None), "tiny-demo").basis == "needs the data's row count"


def test_plan_run_reads_the_prepared_counts(sage_home):
    from sage_ft_tui.engine.runs.layout import RunLayout

    run = sage_home / "made"
    (run / "data").mkdir(parents=True)
    lay = RunLayout(run)
    lay.marker.write_text("")
    _cfg().save(lay.config)
    lay.data_report.write_text(json.dumps({"counts": {"train": 45, "eval": 5}, "tokens": {"mean": 30.0}}))
    p = plan_run(run)
    assert (p.train_rows, p.steps_per_epoch, p.total_steps) == (45, 6, 18)
    assert "18 optimizer steps (6 per epoch)" in p.summary()


def test_length_cost_compares_two_max_lengths(tiny_model, monkeypatch):
    from tests.tui.factory import FIXTURES

    monkeypatch.setenv("SAGE_FT_HW_RECORDED", str(FIXTURES / "hw_2xh100.json"))
    cost = length_cost(_cfg(max_length=1024), 128)
    assert (cost.current_length, cost.other_length) == (1024, 128)
    assert cost.current and cost.other and cost.other < cost.current
