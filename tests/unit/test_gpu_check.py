"""bench/gpu_check.py cannot rot between GPU loans: its --cpu-smoke mode runs the same
phases (a tiny Qwen2 shape trained by the real detached worker, the Monitor driven
headlessly against the live run) and must write the JSON and summary the GPU run writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.gpu.budget import Budget
from bench.gpu.report import CUT, FAILED, JSON_NAME, OK, SKIPPED, SUMMARY_NAME, table
from sage_ft_tui.engine.train.attention import VARLEN_SDPA

REPO = Path(__file__).resolve().parents[2]
PHASES = ["setup", "lora-0.5b", "monitor", "lora-1.5b", "qlora-0.5b", "qlora-1.5b", "oom-recovery"]


def test_budget_carries_unused_time_but_keeps_what_later_phases_need():
    b = Budget(100, {"a": 20, "b": 30, "c": 40})
    assert b.allow("a") == pytest.approx(20, abs=0.5)
    b.done("a", 5)  # 15 s unused: b may take them
    assert b.allow("b") == pytest.approx(45, abs=0.5)
    b.t0 -= 80  # the clock says 80 s have gone: c's 40 s no longer all fit
    b.done("b", 75)
    assert b.allow("c") == pytest.approx(20, abs=0.5)
    b.t0 -= 30
    assert b.allow("c") == 0


def test_summary_table_names_every_phase_and_the_paths_not_exercised():
    report = {
        "phases": [
            {
                "name": "lora-0.5b",
                "status": OK,
                "wall_s": 61,
                "note": "",
                "figures": {
                    "tokens_per_s": 51234.0,
                    "mfu": 0.42,
                    "memory": {
                        "torch_peak_allocated": 2**34,
                        "estimate_allocated": 2**34 * 1.05,
                        "ratio_allocated": 0.95,
                    },
                    "paths": {"attention_path": "torch varlen_attn", "liger": True},
                },
            },
            {"name": "qlora-0.5b", "status": CUT, "wall_s": 50, "note": "cut short at step 9/30"},
            {"name": "oom-recovery", "status": FAILED, "wall_s": 3, "note": "boom"},
            {"name": "qlora-1.5b", "status": SKIPPED, "wall_s": 0, "note": "bitsandbytes missing"},
        ],
        "not_exercised": ["bitsandbytes: bitsandbytes missing"],
    }
    text = table(report)
    assert "51,234" in text and "42.0%" in text and "(0.95)" in text
    assert "torch varlen_attn + Liger" in text
    for p in report["phases"]:
        assert p["name"] in text and p["status"] in text
    assert "bitsandbytes missing" in text.split("not exercised (")[1]


@pytest.mark.slow
def test_cpu_smoke_runs_every_phase_and_writes_the_report(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env.pop("OUT", None)
    env.pop("SAGE_FT_HW_RECORDED", None)
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--cpu-smoke", "--out", str(out), "--work", str(work)],
        capture_output=True,
        text=True,
        timeout=400,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    r = json.loads((out / JSON_NAME).read_text())
    assert r["mode"] == "cpu-smoke" and r["ok"] is True
    assert [p["name"] for p in r["phases"]] == PHASES
    by = {p["name"]: p for p in r["phases"]}
    assert by["setup"]["status"] == OK and by["setup"]["budget_s"] > 0
    assert set(r["doctor"]["training_paths"]) >= {"attention", "precision"}
    assert r["versions"]["torch"] and r["versions"]["trl"]

    lora = by["lora-0.5b"]
    assert lora["status"] == OK, lora
    f = lora["figures"]
    assert f["state"] == "completed" and f["step"] == f["config"]["steps"]
    assert f["tokens_per_s"] > 0 and f["tokens"] > 0 and f["window_s"] > 0
    assert f["mfu"] is None and f["flops_per_token"] == 6 * f["matmul_params"] > 0  # no GPU peak on CPU
    assert f["paths"]["attention"] == VARLEN_SDPA and f["paths"]["attention_path"]  # from the start event
    assert f["paths"]["liger"] is False and f["paths"]["quantization"] == "none"
    assert f["memory"]["device"] == "cpu" and f["memory"]["estimate_total"] > f["memory"]["estimate_allocated"] > 0
    assert Path(f["run"]).is_dir() and Path(f["run"]).is_relative_to(work)

    mon = by["monitor"]
    assert mon["status"] == OK, mon
    m = mon["monitor"]
    assert m["train_points"] >= 2 and m["hardware_backend"] != "RecordedBackend" and m["live_host_polls"] >= 1
    svg = Path(m["screenshot"])
    assert svg.parent == out and svg.read_text(encoding="utf-8").startswith("<svg")
    assert "Monitor" in svg.read_text(encoding="utf-8")

    for name in ("qlora-0.5b", "qlora-1.5b", "oom-recovery"):
        assert by[name]["status"] == SKIPPED and "CUDA" in by[name]["note"]
    assert by["lora-1.5b"]["status"] == SKIPPED
    listed = " ".join(r["not_exercised"])
    for path in ("flash-attn varlen", "torch varlen_attn", "FlexAttention", "Liger", "bitsandbytes"):
        assert path in listed
    assert "SDPA once per packed sequence" not in listed  # the smoke run took it

    summary = (out / SUMMARY_NAME).read_text()
    assert summary.strip() in proc.stdout and all(p in summary for p in PHASES)
    assert "tokens/s" in summary.splitlines()[0] and "not exercised (" in summary
    assert time.time() - t0 < 400
