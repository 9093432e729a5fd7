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
from bench.gpu.build import shape_config
from bench.gpu.fallback import next_path, varlen_signature_gap
from bench.gpu.measure import matmul_params, memory, mfu, throughput
from bench.gpu.report import CUT, FAILED, JSON_NAME, OK, SKIPPED, SUMMARY_NAME, table
from bench.gpu.runs import Finished, Spec
from bench.gpu_check import GPU_PLAN, fit_micro_batch, not_exercised, oom_micro_batch, phase_spec
from sage_ft_tui.engine.fsutil import GiB
from sage_ft_tui.engine.hardware.estimate import estimate_for_config
from sage_ft_tui.engine.hardware.gpus import target_snapshot
from sage_ft_tui.engine.train.attention import VARLEN, VARLEN_FLEX, VARLEN_SDPA

REPO = Path(__file__).resolve().parents[2]
QWEN_05B = REPO / "tests" / "unit" / "fixtures" / "hardware" / "models" / "qwen2.5-0.5b"
PHASES = [
    "setup",
    "lora-qwen2.5-0.5b",
    "monitor",
    "unfused-qwen2.5-0.5b",
    "lora-llama-3.2-1b",
    "lora-gemma-2-2b",
    "lora-llama-3.1-8b",
    "qlora-llama-3.2-1b",
    "qlora-llama-3.1-8b",
    "oom-recovery",
]
FAMILIES = ("llama-3.2-1b", "gemma-2-2b", "llama-3.1-8b")


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


@pytest.fixture
def qwen_15b(tmp_path) -> Path:
    d = tmp_path / "qwen2.5-1.5b"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(shape_config("qwen2.5-1.5b", 1024)))
    return d


@pytest.fixture
def families(tmp_path) -> dict[str, Path]:
    """config.json of each family shape the check builds (no weights: the estimate reads the shape)."""
    out = {"qwen2.5-0.5b": QWEN_05B}
    for key in FAMILIES:
        d = tmp_path / key
        d.mkdir()
        (d / "config.json").write_text(json.dumps(shape_config(key, 1024)))
        out[key] = d
    return out


def test_family_shapes_are_the_published_ones(families):
    from sage_ft_tui.engine.models.shape import model_shape

    got = {k: model_shape(str(families[k])) for k in FAMILIES}
    assert round(got["llama-3.2-1b"].total_params / 1e9, 2) == 1.24 and got["llama-3.2-1b"].vocab == 128256
    assert round(got["gemma-2-2b"].total_params / 1e9, 2) == 2.61 and got["gemma-2-2b"].attn_softcap == 50.0
    assert round(got["llama-3.1-8b"].total_params / 1e9, 2) == 8.03


def test_micro_batches_are_sized_to_the_card(qwen_15b):
    kw = dict(gradient_checkpointing=False, optimizer="adamw_torch_fused")
    assert fit_micro_batch(qwen_15b, 16, 1024, 141 * GiB, 0.5, **kw) == 16  # H200
    assert fit_micro_batch(qwen_15b, 16, 1024, 80 * GiB, 0.5, **kw) == 8  # H100 80GB
    mb = oom_micro_batch(QWEN_05B, 1024, 141 * GiB)  # ~2.5× the card, so a CUDA OOM is certain
    assert mb == 256
    assert oom_micro_batch(QWEN_05B, 1024, 80 * GiB) == 128


def test_every_gpu_phase_trains_a_valid_config_sized_for_the_card(families, tmp_path):
    for vram, oom_mb in ((141 * GiB, 256), (80 * GiB, 128)):
        specs = {p: phase_spec(p, families, tmp_path / "x.jsonl", vram) for p in GPU_PLAN if p != "setup"}
        cfgs = {p: s.config() for p, s in specs.items()}  # RunConfig validates each
        assert cfgs["oom-recovery"].training.micro_batch_size == oom_mb
        assert cfgs["oom-recovery"].training.oom_retries >= 3
        for q in ("qlora-llama-3.2-1b", "qlora-llama-3.1-8b"):
            c = cfgs[q]
            assert c.model.quantization == "4bit" and c.training.gradient_checkpointing
            assert c.training.optimizer == "paged_adamw_8bit"
        assert all(c.training.precision == "bf16" and c.training.packing for c in cfgs.values())
        # the unfused run is the fused one with the engine's switches off, nothing else changed
        assert specs["unfused-qwen2.5-0.5b"].env["SAGE_FT_LIGER"] == "0" and not specs["lora-qwen2.5-0.5b"].env
        assert cfgs["unfused-qwen2.5-0.5b"].training == cfgs["lora-qwen2.5-0.5b"].training
        for p in [p for p in cfgs if p.startswith(("lora-", "qlora-"))]:  # each fits the card by the estimate
            assert estimate_for_config(cfgs[p], target_snapshot(vram_gib=vram / GiB)).fits, (p, vram)


def test_mfu_counts_lora_flops_over_the_cards_bf16_peak(families, tmp_path):
    from sage_ft_tui.engine.hardware.flops import flops_per_token

    n = matmul_params(QWEN_05B)
    assert 480e6 < n < 500e6  # 0.49B: decoder linears + the (tied) LM head's matmul
    spec = Spec("lora-qwen2.5-0.5b", QWEN_05B, tmp_path / "x.jsonl", steps=10, micro_batch=16, length=1024)
    m = mfu(100_000, spec, "NVIDIA H200")
    count = flops_per_token(str(QWEN_05B), lora_r=16, seq_len=1024).total
    assert m["peak_tflops"] == 989 and m["mfu"] == pytest.approx(count * 1e5 / 989e12)
    assert m["mfu_6n"] == pytest.approx(6 * n * 1e5 / 989e12) and m["mfu"] < m["mfu_6n"]  # LoRA skips 2·N
    assert mfu(100_000, spec, "NVIDIA H100 80GB HBM3")["peak_tflops"] == 989
    assert mfu(100_000, spec, "")["mfu"] is None


def test_throughput_skips_the_warm_up_log_and_the_lives_before_an_oom_retry():
    log = lambda t, step, tokens: {"kind": "log", "t": t, "step": step, "tokens": tokens}  # noqa: E731
    evs = [{"kind": "start"}, log(0, 1, 10), log(100, 5, 5000), {"kind": "start"}]
    evs += [log(200, 1, 1000), log(210, 5, 5000), log(220, 10, 25000)]
    tp = throughput(evs)
    assert tp["tokens_per_s"] == pytest.approx(2000) and tp["window_steps"] == [5, 10]


def test_memory_ratios_against_the_estimate_for_the_card(tmp_path):
    spec = Spec("lora-qwen2.5-0.5b", QWEN_05B, tmp_path / "x.jsonl", steps=10, micro_batch=16, length=1024)
    cfg = spec.config()
    h200 = target_snapshot("H200")
    est = estimate_for_config(cfg, h200)
    evs = [{"kind": "start"}, {"kind": "log", "vram_peak": int(est.allocated * 1.05)}]
    fin = Finished(spec, tmp_path / "no-run", cfg, "completed", 60, False, evs, 2 * GiB, 0, int(est.total * 0.9))
    m = memory(fin, h200)
    assert m["device"] == "cuda" and m["micro_batch"] == 16
    assert m["ratio_allocated"] == pytest.approx(1.05, abs=1e-3)
    assert m["ratio_total"] == pytest.approx(0.9, abs=1e-3) and m["nvml_source"] == "process"
    fin.nvml_process_peak, fin.nvml_device_peak = None, 2 * GiB + int(est.total * 1.1)  # no per-process reading
    m = memory(fin, h200)
    assert m["nvml_source"] == "device minus baseline" and m["ratio_total"] == pytest.approx(1.1, abs=1e-3)


def test_a_broken_fast_path_falls_back_one_step_at_a_time():
    assert next_path({"liger": True, "attention": VARLEN}, True, "internal: x") == ({"SAGE_FT_LIGER": "0"}, "Liger")
    assert next_path({"liger": False, "attention": VARLEN}, True, "x")[0] == {"SAGE_FT_ATTN": VARLEN_FLEX}
    assert next_path({"attention": VARLEN_FLEX}, True, "x")[0] == {"SAGE_FT_ATTN": VARLEN_SDPA}
    assert next_path({"attention": VARLEN_SDPA}, True, "x") is None
    assert next_path({"attention": VARLEN}, True, "oom: CUDA out of memory at micro-batch 8") is None
    assert next_path({"attention": VARLEN}, False, "x") is None


def test_a_torch_whose_varlen_attn_lacks_what_the_engine_passes_is_caught_before_a_run(monkeypatch):
    varlen = pytest.importorskip("torch.nn.attention.varlen")

    def torch_2_10(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False, return_aux=None):
        raise AssertionError("not called")

    assert varlen_signature_gap() == []  # this torch's takes everything torch_varlen passes
    monkeypatch.setattr(varlen, "varlen_attn", torch_2_10)
    assert varlen_signature_gap() == ["scale", "window_size", "enable_gqa"]


def test_paths_not_exercised_on_a_gpu_name_the_missing_wheel():
    report = {
        "versions": {"torch": "2.11.0", "flash-attn": None, "liger-kernel": "0.8.5", "bitsandbytes": None},
        "phases": [
            {"figures": {"paths": {"attention_path": "torch varlen_attn", "liger": True, "quantization": "none"}}}
        ],
        "path_failures": [],
    }
    listed = "\n".join(not_exercised(report, cuda=True))
    assert "flash-attn varlen: flash-attn missing" in listed
    assert "bitsandbytes: bitsandbytes missing" in listed
    assert "FlexAttention (document mask): a faster path" in listed
    assert "Liger" not in listed and "torch varlen_attn" not in listed


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


@pytest.mark.train
@pytest.mark.timeout(600)
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

    lora = by["lora-qwen2.5-0.5b"]
    assert lora["status"] == OK, lora
    f = lora["figures"]
    assert f["state"] == "completed" and f["step"] == f["config"]["steps"]
    assert f["tokens_per_s"] > 0 and f["tokens"] > 0 and f["window_s"] > 0
    assert f["mfu"] is None and f["flops_parts"]["frozen"] == 4 * f["matmul_params"]  # LoRA-aware; no GPU peak
    assert f["flops_per_token"] == f["flops_parts"]["total"] > f["flops_parts"]["frozen"]
    assert f["paths"]["precision"] == "fp32" and "fused_lora" in f["paths"]["kernels"]
    unfused = by["unfused-qwen2.5-0.5b"]
    assert unfused["status"] == OK, unfused
    assert unfused["figures"]["paths"]["kernels"] == [] and "without our fused paths" in unfused["note"]
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

    for name in ("qlora-llama-3.2-1b", "qlora-llama-3.1-8b", "oom-recovery"):
        assert by[name]["status"] == SKIPPED and "CUDA" in by[name]["note"]
    assert all(by[f"lora-{k}"]["status"] == SKIPPED for k in FAMILIES)  # built at tiny shapes, not trained
    assert all((work / f"{s}-random" / "config.json").exists() for s in ("tiny-llama", "tiny-gemma2"))
    listed = " ".join(r["not_exercised"])
    for path in ("flash-attn varlen", "torch varlen_attn", "FlexAttention", "Liger", "bitsandbytes"):
        assert path in listed
    assert "SDPA once per packed sequence" not in listed  # the smoke run took it

    summary = (out / SUMMARY_NAME).read_text()
    assert summary.strip() in proc.stdout and all(p in summary for p in PHASES)
    assert "tokens/s" in summary.splitlines()[0] and "not exercised (" in summary
    assert time.time() - t0 < 400
