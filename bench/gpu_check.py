"""GPU check: train a Qwen2.5-0.5B-shaped model (random weights, no hub) with LoRA in bf16
with packing through the real detached worker, then print tokens/s, MFU, the measured
peak VRAM next to engine/memory.py's estimate, and the NVML readings the worker recorded.

Run by bench/gpu_check.sh (which installs the carried wheels first). Prints figures; it
never fails on a timing. Exit status: 0 when every run completed, 1 otherwise.

    python bench/gpu_check.py [--steps 300] [--batch 8] [--length 1024] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sage_ft_tui.engine.fsutil import GiB  # noqa: E402 (after the checkout is on the path)

SHAPE = ROOT / "tests" / "unit" / "fixtures" / "hardware" / "models" / "qwen2.5-0.5b" / "config.json"


def build_model(out: Path) -> Path:
    """Qwen2.5-0.5B's shape with random bf16 weights, and the tiny demo's BPE tokenizer."""
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    from sage_ft_tui.engine.models.tiny import CHAT_TEMPLATE, train_tokenizer

    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return out
    out.mkdir(parents=True, exist_ok=True)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(),
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        additional_special_tokens=["<|im_start|>", "<|endoftext|>"],
        model_max_length=32768,
    )
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(out)
    shape = json.loads(SHAPE.read_text())
    shape.pop("architectures", None)
    shape.update(
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
        torch_dtype="bfloat16",
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**shape)).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    return out


def build_data(path: Path, rows: int = 12000, words: int = 220) -> Path:
    rnd = random.Random(0)
    vocab = [
        w for w in (ROOT / "sage_ft_tui" / "samples" / "text.txt").read_text(encoding="utf-8").split() if w.isalpha()
    ] or ["alpha", "beta", "gamma", "delta"]
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(rows):
            fh.write(
                json.dumps({"text": " ".join(rnd.choice(vocab) for _ in range(rnd.randint(words // 2, words * 2)))})
                + "\n"
            )
    return path


def train(
    name: str,
    model_dir: Path,
    data: Path,
    *,
    steps: int,
    batch: int,
    length: int,
    gc: bool,
    quant: str = "none",
    timeout: float = 420,
) -> dict:
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.runs.manage import create_run, launch, read_status, wait_for_end

    cfg = RunConfig.from_dict(
        {
            "name": f"gpu-check-{name}-{int(time.time())}",
            "task": "text",
            "model": {"name": str(model_dir), "quantization": quant},
            "data": {"paths": [str(data)], "format": "text"},
            "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
            "training": {
                "max_steps": steps,
                "micro_batch_size": batch,
                "grad_accumulation": 1,
                "max_length": length,
                "packing": True,
                "gradient_checkpointing": gc,
                "precision": "bf16",
                "logging_steps": 10,
                "save_steps": max(steps // 2, 1),
                "save_total_limit": 1,
                "optimizer": "adamw_torch_fused",
                "oom_retries": 0,
            },
        }
    )
    run = create_run(cfg)
    t0 = time.time()
    launch(run)
    try:
        state = wait_for_end(run, timeout=timeout)
    except TimeoutError:
        from sage_ft_tui.engine.runs.manage import cancel

        cancel(run, wait=30)
        state = "timeout"
    events = [
        json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line.strip().startswith("{")
    ]
    return {
        "name": name,
        "run": run,
        "cfg": cfg,
        "state": state,
        "wall": time.time() - t0,
        "events": events,
        "status": read_status(run),
    }


def report(r: dict) -> bool:
    from sage_ft_tui.engine.hardware.estimate import estimate_memory

    cfg, ev = r["cfg"], r["events"]
    t = cfg.training
    logs = [e for e in ev if e["kind"] == "log"]
    hws = [e for e in ev if e["kind"] == "hw"]
    errors = [e for e in ev if e["kind"] == "error"]
    print(
        f"\n== {r['name']}: {t.micro_batch_size} × {t.max_length} tokens, checkpointing {'on' if t.gradient_checkpointing else 'off'}, "
        f"quantization {cfg.model.quantization}: {r['state']} in {r['wall']:.0f}s ({r['run']})"
    )
    for e in errors:
        print(f"   error event: {e.get('error_kind')}: {e.get('message')}")
    if r["state"] != "completed":
        log_tail = (r["run"] / "train.log").read_text(errors="replace").splitlines()[-15:]
        print("   train.log tail:\n     " + "\n     ".join(log_tail))
    est = estimate_memory(
        str(r["cfg"].model.name),
        quantization=cfg.model.quantization,
        dtype="bfloat16",
        micro_batch=t.micro_batch_size,
        max_length=t.max_length,
        gradient_checkpointing=t.gradient_checkpointing,
        lora_r=cfg.lora.r,
        lora_dropout=cfg.lora.dropout,
        optimizer=t.optimizer,
    )
    peak = max((e.get("vram_peak") or 0 for e in logs), default=0)
    rates = [e["tokens_per_s"] for e in logs[2:] if e.get("tokens_per_s")]  # skip warm-up logs
    tps = statistics.median(rates) if rates else None
    name = hws[0]["gpus"][0]["name"] if hws and hws[0]["gpus"] else ""
    from sage_ft_tui.engine.hardware.gpus import peak_tflops

    tflops = peak_tflops(name) if name else None  # the target-GPU table owns the data-sheet figures
    peak_flops = tflops * 1e12 if tflops else None
    flops_per_token = None
    try:
        from transformers import AutoConfig
        from trl.trainer.utils import compute_flops_per_token

        flops_per_token = compute_flops_per_token(AutoConfig.from_pretrained(str(cfg.model.name)), t.max_length)
    except Exception:
        from sage_ft_tui.engine.hardware.estimate import model_shape

        s = model_shape(str(cfg.model.name))
        flops_per_token = 6 * (s.linear_params + s.vocab * s.hidden) + 12 * s.layers * s.hidden * t.max_length
    mfu = tps * flops_per_token / peak_flops if (tps and peak_flops) else None
    nvml_used = max((g["mem_used"] for e in hws for g in e["gpus"]), default=0)
    print(f"   tokens/s (median of logs)  {tps:,.0f}" if tps else "   tokens/s                   n/a")
    print(
        f"   MFU                        {mfu:.1%}  ({flops_per_token / 1e9:.2f} GFLOP/token, peak {peak_flops / 1e12:.0f} TFLOP/s bf16)"
        if mfu
        else "   MFU                        n/a (unknown GPU peak)"
    )
    print(f"   {'':26} {'estimate':>10} {'measured':>10} {'diff':>8}")
    rows = [("peak allocated (torch)", est.allocated, peak), ("peak used (NVML, process+ctx)", est.total, nvml_used)]
    ok = True
    for label, a, b in rows:
        diff = (a - b) / b if b else None
        print(
            f"   {label:26} {a / GiB:>9.2f}G {b / GiB:>9.2f}G {('%+.1f%%' % (100 * diff)) if diff is not None else 'n/a':>8}"
        )
    print("   estimate parts: " + ", ".join(f"{p} {b / GiB:.2f}G" for p, b, _ in est.breakdown()))
    if hws:

        def span(key, scale=1.0, fmt="{:.0f}"):
            vals = [g[key] * scale for e in hws for g in e["gpus"] if g.get(key) is not None]
            return f"{fmt.format(min(vals))}–{fmt.format(max(vals))}" if vals else "n/a"

        print(
            f"   NVML ({len(hws)} hw events): util {span('util')} %, mem used {span('mem_used', 1 / GiB, '{:.1f}')} GiB "
            f"of {(hws[0]['gpus'][0]['mem_total'] if hws[0]['gpus'] else 0) / GiB:.0f}, temp {span('temp')} °C, power {span('power')} W, "
            f"cpu {min(e['cpu_percent'] or 0 for e in hws):.0f}–{max(e['cpu_percent'] or 0 for e in hws):.0f} %"
        )
    else:
        print("   NVML: no hw events recorded")
        ok = False
    return ok and r["state"] == "completed"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=1024)
    ap.add_argument("--quick", action="store_true", help="only the main run")
    ap.add_argument("--work", default=None, help="folder for the model, data and runs (default: a temp folder)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="sage-gpu-check-"))
    os.environ["SAGE_FT_HOME"] = str(work / "runs")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to check")
        return 1
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}; work in {work}")
    from sage_ft_tui.engine.hardware.probe import snapshot

    print("hardware:", snapshot().summary())
    t0 = time.time()
    model_dir = build_model(work / "qwen2.5-0.5b-random")
    data = build_data(work / "text.jsonl")
    print(f"model and data built in {time.time() - t0:.0f}s")
    results = [train("main", model_dir, data, steps=args.steps, batch=args.batch, length=args.length, gc=False)]
    if not args.quick:
        results.append(train("checkpointing", model_dir, data, steps=60, batch=16, length=2048, gc=True, timeout=180))
        try:
            import bitsandbytes  # noqa: F401

            results.append(
                train("qlora-4bit", model_dir, data, steps=40, batch=8, length=1024, gc=True, quant="4bit", timeout=180)
            )
        except ImportError:
            print("\n(bitsandbytes not installed: QLoRA run skipped)")
    ok = all([report(r) for r in results])
    print(f"\ntotal {time.time() - t0:.0f}s; {'all runs completed' if ok else 'SOME RUNS FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
