"""The figures of one finished run: real tokens/s, MFU, peak memory against the estimate,
the attention/kernel path its start event names, and the OOM retries it made."""

from __future__ import annotations

from typing import Optional

from bench.gpu.runs import Finished
from sage_ft_tui.engine.fsutil import GiB


def last_life(events: list[dict]) -> list[dict]:
    """The events since the last `start` (an OOM retry starts the trainer, and its token
    counter, again)."""
    starts = [i for i, e in enumerate(events) if e.get("kind") == "start"]
    return events[starts[-1] :] if starts else events


def throughput(events: list[dict]) -> dict:
    """Real (non-pad) tokens per second between the second `log` event and the last: the
    first log (step 1) carries the warm-up (CUDA kernels, compilation, allocator growth)."""
    logs = [e for e in last_life(events) if e.get("kind") == "log" and e.get("tokens")]
    out: dict = {"logs": len(logs), "tokens_per_s": None, "steps_per_s": None, "window_s": None}
    if len(logs) < 2:
        return out
    a, b = (logs[1], logs[-1]) if len(logs) >= 3 else (logs[0], logs[-1])
    dt = b["t"] - a["t"]
    if dt <= 0:
        return out
    out.update(
        tokens_per_s=(b["tokens"] - a["tokens"]) / dt,
        steps_per_s=(b["step"] - a["step"]) / dt,
        window_s=dt,
        window_steps=[a["step"], b["step"]],
    )
    return out


def matmul_params(model_dir) -> int:
    """N of 6·N: the decoder's linear layers plus the LM head (the input embedding is a
    lookup, no FLOPs)."""
    from sage_ft_tui.engine.models.shape import model_shape

    s = model_shape(str(model_dir))
    return s.linear_params + s.vocab * s.hidden


def mfu(tokens_per_s: Optional[float], spec, gpu_name: str) -> dict:
    """Model FLOP utilisation with the LoRA-aware count of engine/hardware/flops.py (4·N for
    the frozen base, 6·n for the adapters, causal attention at the max length, the recompute
    under checkpointing) over the card's dense bf16 peak (gpus.py); the textbook 6·N beside it."""
    from sage_ft_tui.engine.hardware.flops import flops_per_token
    from sage_ft_tui.engine.hardware.flops import mfu as utilisation
    from sage_ft_tui.engine.hardware.gpus import peak_tflops

    count = flops_per_token(
        str(spec.model_dir), lora_r=16, seq_len=spec.length, gradient_checkpointing=spec.checkpointing
    )
    peak = peak_tflops(gpu_name) if gpu_name else None
    n = matmul_params(spec.model_dir)
    return {
        "flops_per_token": count.total,
        "flops_parts": count.to_dict(),
        "peak_tflops": peak,
        "mfu": utilisation(tokens_per_s, count.total, peak),
        "mfu_6n": utilisation(tokens_per_s, 6.0 * n, peak),
    }


def final_config(fin: Finished):
    """The config the run ended with: an OOM retry rewrites the run's config.yaml with the
    micro-batch that worked."""
    from sage_ft_tui.engine.runs.state import load_config

    try:
        return load_config(fin.run)
    except Exception:
        return fin.cfg


def memory(fin: Finished, snapshot=None) -> dict:
    """torch's peak allocated (the worker's `vram_peak`) against the estimate's `allocated`,
    and NVML's reading (process, else device minus what was in use before) against its
    `total`; ratios measured/estimate (goal 0.9–1.1). `snapshot`: the hardware to estimate
    for (default: this machine's)."""
    from sage_ft_tui.engine.hardware.estimate import estimate_for_config

    out: dict = {}
    try:
        est = estimate_for_config(final_config(fin), snapshot)
    except Exception as e:
        return {"estimate_error": f"{type(e).__name__}: {e}"}
    out.update(
        device=est.device,
        micro_batch=est.micro_batch,
        estimate_allocated=est.allocated,
        estimate_total=est.total,
        estimate_parts={p: b for p, b, _ in est.breakdown()},
    )
    logs = [e for e in last_life(fin.events) if e.get("kind") == "log"]
    peak = max((e.get("vram_peak") or 0 for e in logs), default=0) or None
    out["torch_peak_allocated"] = peak
    out["ratio_allocated"] = peak / est.allocated if peak and est.allocated else None
    nvml = fin.nvml_process_peak
    out["nvml_source"] = "process" if nvml else None
    if not nvml and fin.nvml_device_peak:
        nvml = fin.nvml_device_peak - (fin.nvml_baseline or 0)
        out["nvml_source"] = "device minus baseline"
    hw_peak = max(
        (g.get("mem_used") or 0 for e in fin.events if e.get("kind") == "hw" for g in e.get("gpus") or []), default=0
    )
    out["nvml_peak"] = nvml or None
    out["nvml_hw_events_peak"] = hw_peak or None  # the worker's own 2 s samples, device-wide
    out["ratio_total"] = nvml / est.total if nvml and est.total else None
    return out


def attention_path(name: Optional[str]) -> str:
    """In words, the path a run's `attention` (its start event) takes on this machine."""
    from sage_ft_tui.engine.train.attention import FLASH, VARLEN, VARLEN_FLEX, VARLEN_SDPA, torch_varlen_available

    if name == VARLEN:
        return "torch varlen_attn" if torch_varlen_available() else "FlexAttention (document mask)"
    return {
        FLASH: "flash-attn varlen",
        VARLEN_FLEX: "FlexAttention (document mask)",
        VARLEN_SDPA: "SDPA once per packed sequence",
        "sdpa": "SDPA",
        "eager": "eager",
    }.get(name or "", f"unknown ({name})")


def paths(fin: Finished) -> dict:
    start = next((e for e in last_life(fin.events) if e.get("kind") == "start"), {})
    att = start.get("attention")
    q = fin.cfg.model.quantization
    return {
        "attention": att,
        "attention_path": attention_path(att) if att else "no start event",
        "liger": start.get("liger"),
        "precision": start.get("precision"),
        "kernels": start.get("kernels"),
        "env": dict(fin.spec.env),
        "quantization": "bitsandbytes 4-bit NF4" if q == "4bit" else "bitsandbytes 8-bit" if q == "8bit" else "none",
        "sharding": start.get("sharding"),
        "optimizer": fin.cfg.training.optimizer,
    }


def oom_retries(fin: Finished) -> list[dict]:
    return [
        {k: e.get(k) for k in ("t", "message", "retry", "micro_batch_size", "grad_accumulation")}
        for e in fin.events
        if e.get("kind") == "error" and e.get("error_kind") == "oom" and e.get("recovering")
    ]


def errors(fin: Finished) -> list[str]:
    return [
        f"{e.get('error_kind')}: {e.get('message')}"
        for e in fin.events
        if e.get("kind") == "error" and not e.get("recovering")
    ]


def figures(fin: Finished, gpu_name: str) -> dict:
    """Everything the report shows for one training phase."""
    tp = throughput(fin.events)
    logs = [e for e in last_life(fin.events) if e.get("kind") == "log"]
    last = logs[-1] if logs else {}
    n = matmul_params(fin.spec.model_dir)
    return {
        "run": str(fin.run),
        "state": fin.state,
        "cut_short": fin.cut,
        "wall_s": round(fin.wall_s, 1),
        "config": {
            "micro_batch": fin.spec.micro_batch,
            "max_length": fin.spec.length,
            "steps": fin.spec.steps,
            "gradient_checkpointing": fin.spec.checkpointing,
            "quantization": fin.spec.quantization,
            "precision": fin.spec.precision,
        },
        "step": last.get("step"),
        "loss_first": logs[0].get("loss") if logs else None,
        "loss_last": last.get("loss"),
        "tokens": last.get("tokens"),
        **tp,
        "matmul_params": n,
        **mfu(tp["tokens_per_s"], fin.spec, gpu_name),
        "memory": memory(fin),
        "paths": paths(fin),
        "oom_retries": oom_retries(fin),
        "errors": errors(fin),
        "log_tail": fin.log_tail,
    }


def gib(b: Optional[float]) -> str:
    return f"{b / GiB:.2f}G" if b else "n/a"
