"""GPU check, one command, ≤ 8 minutes on one H100/H200 (run by bench/gpu_check.sh, which
installs the carried wheels first). Through the real detached worker, on random-weight
models of the families users train, at their published shapes, built here (no hub):

  setup                  doctor (which attention/kernel path a run takes and why), models, data
  lora-qwen2.5-0.5b      bf16 LoRA, packing: real tokens/s, MFU, peak memory vs `estimate`;
                         the wizard's Monitor screen is driven headlessly against this live run
                         (Textual run_test) and saved as monitor.svg, its GPU panel fed by NVML
  unfused-qwen2.5-0.5b   the same run without our fused paths (Liger off, plain SDPA with the
                         packed mask; on CPU: peft's LoRA forward, TRL's head): memory and speed
                         they save
  lora-llama-3.2-1b      bf16 LoRA at Llama-3.2-1B's shape
  lora-gemma-2-2b        bf16 LoRA at Gemma-2-2B's shape (attention softcap, sliding window)
  lora-llama-3.1-8b      bf16 LoRA at Llama-3.1-8B's shape: the MFU figure
  qlora-llama-3.2-1b     4-bit NF4 QLoRA (bitsandbytes), gradient checkpointing, paged 8-bit AdamW
  qlora-llama-3.1-8b     the same at 8B
  oom-recovery           a micro-batch ~3× too big for the card: the worker must hit CUDA OOM and
                         retry with smaller ones (training.oom_retries) until it completes

MFU uses the LoRA-aware FLOP count of engine/hardware/flops.py (4·N frozen + 6·n adapters +
causal attention + the recompute under checkpointing), the textbook 6·N beside it.
Each phase has a time budget (unused time carries over); a slow phase is cut short with a
note and the later ones still run. A path that could not be exercised (a wheel missing,
no GPU) is listed, never a failure. Ends with one summary table; writes gpu_check.json
(and the table, and monitor.svg) into --out, else $OUT, else a temp folder.

    python bench/gpu_check.py                # on the GPU machine (via bench/gpu_check.sh)
    python bench/gpu_check.py --cpu-smoke    # the same code path, tiny shapes, on CPU

Prints figures; it never fails on a timing. Exit status 0 unless a phase failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gpu.budget import Budget  # noqa: E402
from bench.gpu.report import CUT, FAILED, OK, SKIPPED, SUMMARY_NAME, table, write_json  # noqa: E402
from sage_ft_tui.engine.fsutil import GiB  # noqa: E402

GPU_PLAN = {
    "setup": 90,
    "lora-qwen2.5-0.5b": 55,
    "unfused-qwen2.5-0.5b": 40,
    "lora-llama-3.2-1b": 45,
    "lora-gemma-2-2b": 50,
    "lora-llama-3.1-8b": 60,
    "qlora-llama-3.2-1b": 40,
    "qlora-llama-3.1-8b": 50,
    "oom-recovery": 50,
}
SMOKE_PLAN = {p: 1 for p in GPU_PLAN} | {"setup": 60, "lora-qwen2.5-0.5b": 150, "unfused-qwen2.5-0.5b": 90}
# The shape each model key trains at on CPU (--cpu-smoke): the same architecture, tiny.
SMOKE_SHAPE = {
    "qwen2.5-0.5b": "tiny",
    "llama-3.2-1b": "tiny-llama",
    "gemma-2-2b": "tiny-gemma2",
    "llama-3.1-8b": "tiny-llama",
}
# Our fused paths, off: the engine's own switches (Liger and the attention on CUDA; the fused
# LoRA linear and the compact LM head on CPU).
UNFUSED_ENV = {"SAGE_FT_LIGER": "0", "SAGE_FT_ATTN": "sdpa", "SAGE_FT_FUSED_LORA": "0", "SAGE_FT_COMPACT_HEAD": "0"}
MONITOR_S = 50  # at most, inside lora-qwen2.5-0.5b's window
OOM_FACTOR = 2.5  # the OOM phase's first micro-batch: estimated at least this × the card's memory
MIN_PHASE_S = 20  # less than this left: the phase is skipped (a worker needs ~15 s to start)


def versions() -> dict:
    """Versions of what a run uses (doctor's package list) and of triton (Liger, FlexAttention)."""
    import importlib.metadata as md

    from sage_ft_tui.engine.hardware.doctor import PACKAGES

    out: dict = {"python": sys.version.split()[0]}
    for n in (*PACKAGES, "triton"):
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:
            out[n] = None
    return out


def fit_micro_batch(model_dir: Path, want: int, length: int, vram: int, fraction: float, **kw) -> int:
    """The largest micro-batch ≤ `want` (halving) whose estimate stays under `fraction` of the card."""
    from sage_ft_tui.engine.hardware.estimate import TrainSetup, estimate_memory

    mb = want
    while (
        mb > 1
        and estimate_memory(str(model_dir), TrainSetup(micro_batch=mb, max_length=length, **kw)).total > fraction * vram
    ):
        mb //= 2
    return mb


def oom_micro_batch(model_dir: Path, length: int, vram: int) -> int:
    """The smallest power-of-two micro-batch estimated at ≥ OOM_FACTOR × the card's memory."""
    from sage_ft_tui.engine.hardware.estimate import TrainSetup, estimate_memory

    mb = 16
    while (
        estimate_memory(
            str(model_dir),
            TrainSetup(micro_batch=mb, max_length=length, gradient_checkpointing=False, optimizer="adamw_torch_fused"),
        ).total
        < OOM_FACTOR * vram
    ):
        mb *= 2
    return mb


def phase_spec(phase: str, models: dict[str, Path], data: Path, vram: int, *, smoke: bool = False):
    """What a training phase trains: `models` by key ("qwen2.5-0.5b", ...; built at the tiny
    shapes for the smoke), sized for a card of `vram` bytes."""
    from bench.gpu.runs import Spec

    kind, _, key = phase.partition("-")
    if smoke:
        return Spec(
            phase,
            models[key],
            data,
            steps=4,
            micro_batch=2,
            length=256,
            logging_steps=1,
            optimizer="adamw_torch",
            precision="auto",
            env=UNFUSED_ENV if kind == "unfused" else {},
        )
    if kind in ("lora", "unfused"):
        big = key == "llama-3.1-8b"
        mb = fit_micro_batch(
            models[key],
            16,
            1024,
            vram,
            0.5 if not big else 0.8,
            gradient_checkpointing=False,
            optimizer="adamw_torch_fused",
        )
        steps = {"qwen2.5-0.5b": 40, "llama-3.2-1b": 30, "gemma-2-2b": 25}.get(key, 20)
        env = UNFUSED_ENV if kind == "unfused" else {}
        return Spec(phase, models[key], data, steps=steps, micro_batch=mb, length=1024, env=env)
    if kind == "qlora":
        return Spec(
            phase,
            models[key],
            data,
            steps=15 if key == "llama-3.2-1b" else 10,
            micro_batch=16 if key == "llama-3.2-1b" else 8,
            length=1024,
            checkpointing=True,
            quantization="4bit",
            optimizer="paged_adamw_8bit",
        )
    if phase == "oom-recovery":
        mb = oom_micro_batch(models["qwen2.5-0.5b"], 1024, vram)
        return Spec(
            phase, models["qwen2.5-0.5b"], data, steps=2, micro_batch=mb, length=1024, oom_retries=6, logging_steps=1
        )
    raise ValueError(f"no training phase {phase!r}")


def not_exercised(report: dict, cuda: bool) -> list[str]:
    """The attention/kernel/quantization paths no phase took, each with the reason."""
    from sage_ft_tui.engine.train.attention import torch_varlen_available

    pk = report["versions"]
    taken = set()
    for p in report["phases"]:
        paths = (p.get("figures") or {}).get("paths") or {}
        taken.add(paths.get("attention_path"))
        if paths.get("liger"):
            taken.add("Liger")
        if paths.get("quantization") not in (None, "none"):
            taken.add("bitsandbytes")
    cpu = "needs a CUDA GPU (this check ran on CPU)"
    out = []

    failed = {f.split(" failed in ")[0] for f in report.get("path_failures", [])}  # exercised, and broke

    def why(path: str, reason: str) -> None:
        if path not in taken and path not in failed:
            out.append(f"{path}: {reason}")

    why(
        "flash-attn varlen",
        cpu if not cuda else "flash-attn missing (no PyPI wheel: it is built for one torch/CUDA pair)",
    )
    why(
        "torch varlen_attn",
        cpu
        if not cuda
        else "flash-attn took precedence"
        if pk.get("flash-attn")
        else f"torch {pk.get('torch')} has no torch.nn.attention.varlen"
        if not torch_varlen_available()
        else "not taken (see the runs' attention)",
    )
    why(
        "FlexAttention (document mask)",
        cpu if not cuda else "a faster path was taken (SAGE_FT_ATTN=sage_varlen_flex forces it)",
    )
    why("SDPA once per packed sequence", "the CPU path (and fp32 on CUDA): bf16 on CUDA takes a varlen kernel")
    why("Liger", cpu if not cuda else "liger-kernel missing" if not pk.get("liger-kernel") else "not applied")
    why("bitsandbytes", cpu if not cuda else "bitsandbytes missing" if not pk.get("bitsandbytes") else "no QLoRA run")
    return out


class Check:
    def __init__(self, args):
        self.smoke = args.cpu_smoke
        self.out = Path(args.out or os.environ.get("OUT") or tempfile.mkdtemp(prefix="sage-gpu-check-out-"))
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work or tempfile.mkdtemp(prefix="sage-gpu-check-"))
        self.home = self.work / "runs"
        plan = dict(SMOKE_PLAN if self.smoke else GPU_PLAN)
        self.budget = Budget(args.budget or (sum(plan.values()) + 25), plan)
        self.report: dict = {
            "version": 1,
            "mode": "cpu-smoke" if self.smoke else "gpu",
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "out": str(self.out),
            "work": str(self.work),
            "budget_s": self.budget.total,
            "phases": [],
            "not_exercised": [],
        }
        self.models: dict[str, Path] = {}
        self.data: Path = self.work / "text.jsonl"

    # ---- running a phase -----------------------------------------------------------------
    def phase(self, name: str, fn, *, skip: str = "") -> dict:
        entry: dict = {"name": name, "status": SKIPPED, "wall_s": 0.0, "note": skip}
        allow = self.budget.allow(name)
        entry["budget_s"] = round(allow, 1)
        if not skip and allow < MIN_PHASE_S:
            skip = entry["note"] = f"cut: {allow:.0f}s of the check's budget left (earlier phases ran long)"
            entry["status"] = CUT
        t0 = time.monotonic()
        if not skip:
            print(f"\n== {name} (budget {allow:.0f}s)", flush=True)
            try:
                entry.update(fn(allow))
            except Exception as e:
                entry.update(
                    status=FAILED, note=f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
                )
                import traceback

                traceback.print_exc()
        else:
            print(f"\n== {name}: {entry['status']}: {skip}", flush=True)
        entry["wall_s"] = round(time.monotonic() - t0, 1)
        self.budget.done(name, entry["wall_s"])
        self.report["phases"].append(entry)
        self.save()
        return entry

    def save(self) -> None:
        self.report["wall_s"] = round(time.monotonic() - self.budget.t0, 1)
        write_json(self.out, self.report)

    # ---- the phases ----------------------------------------------------------------------
    def setup(self, allow: float) -> dict:
        from bench.gpu.build import build_data, build_model
        from sage_ft_tui.engine.hardware.doctor import run_doctor

        doc = run_doctor()
        self.report["doctor"] = {k: doc.get(k) for k in ("cuda", "gpus", "training_paths", "backends", "problems")}
        for k, v in (doc.get("training_paths") or {}).items():
            print(f"   doctor {k}: {v}")
        t0 = time.monotonic()
        for key in ("qwen2.5-0.5b", "llama-3.2-1b", "gemma-2-2b", "llama-3.1-8b"):
            shape = SMOKE_SHAPE[key] if self.smoke else key
            self.models[key] = build_model(self.work / f"{shape}-random", shape, "cpu" if self.smoke else "cuda")
        # ~505 tokens a row: 3,000 rows pack into ~1,480 rows of 1,024, more than any phase takes
        build_data(self.data, rows=240 if self.smoke else 3000, words=60 if self.smoke else 220)
        self._preflight_paths()
        return {"status": OK, "note": f"models and data built in {time.monotonic() - t0:.0f}s"}

    def _preflight_paths(self) -> None:
        """A path the engine would take that cannot work with what is installed: reported as a
        path failure, and the runs start one step down (no GPU time spent failing on it)."""
        from bench.gpu.fallback import taken, varlen_signature_gap
        from sage_ft_tui.engine.train.attention import VARLEN, VARLEN_FLEX

        gap = varlen_signature_gap()
        if self.cuda and gap and taken({}, True)[1] == VARLEN:
            failure = (
                f"torch varlen_attn failed in setup: torch {self.report['versions'].get('torch')}'s varlen_attn "
                f"takes no {', '.join(gap)} (engine/train/attention.py torch_varlen passes them)"
            )
            print(f"   {failure}; the runs use SAGE_FT_ATTN={VARLEN_FLEX}", flush=True)
            self.report.setdefault("path_failures", []).append(failure)
            self.report.setdefault("fallback_env", {})["SAGE_FT_ATTN"] = VARLEN_FLEX
            os.environ["SAGE_FT_ATTN"] = VARLEN_FLEX

    def _train(self, spec, allow: float, *, monitor: bool = False) -> dict:
        from bench.gpu.fallback import next_path
        from bench.gpu.measure import errors, figures, last_life
        from bench.gpu.runs import train

        def hook(run: Path, left: float) -> None:
            from bench.gpu.monitor import drive_monitor

            t = max(5.0, min(MONITOR_S, left - 10))
            try:
                self.monitor = drive_monitor(run, self.out / "monitor.svg", t, want_gpu=self.cuda)
            except Exception as e:
                self.monitor = {"error": f"{type(e).__name__}: {e}"}

        t0, notes = time.monotonic(), []
        while True:
            left = allow - (time.monotonic() - t0)
            watch = monitor and not self.monitor.get("train_points")
            fin = train(spec, self.home, left, while_running=hook if watch else None)
            if fin.state == "completed" or fin.cut or fin.state == "timeout":
                break
            start = next((e for e in last_life(fin.events) if e.get("kind") == "start"), {})
            err = "; ".join(errors(fin)) or f"ended {fin.state}"
            step = next_path(start, self.cuda, err)
            if step is None or allow - (time.monotonic() - t0) < 30:
                break
            env, what = step
            failure = f"{what} failed in {spec.name}: {err[:300]}"
            print(f"   {failure}\n   retrying with {env} (kept for the later phases)", flush=True)
            self.report.setdefault("path_failures", []).append(failure)
            self.report.setdefault("fallback_env", {}).update(env)
            os.environ.update(env)
            notes.append(f"{what} failed, re-run with {' '.join(f'{k}={v}' for k, v in env.items())}")
        fig = figures(fin, self.gpu_name)
        self._print(spec.name, fig)
        if fin.state == "completed":
            status, note = OK, ""
        elif fin.cut:
            status, note = CUT, f"cut short at step {fig.get('step')}/{spec.steps} after its {allow:.0f}s budget"
        else:
            status, note = FAILED, "; ".join(fig["errors"]) or f"ended {fin.state}"
        return {"status": status, "note": "; ".join(x for x in (*notes, note) if x), "figures": fig}

    def lora(self, phase: str, *, monitor: bool = False):
        def run(allow: float) -> dict:
            spec = phase_spec(phase, self.models, self.data, self.vram, smoke=self.smoke)
            res = self._train(spec, allow, monitor=monitor)
            if phase.startswith("unfused-"):
                res["note"] = "; ".join(x for x in (self._against_fused(phase, res), res["note"]) if x)
            if self.smoke:
                shape = SMOKE_SHAPE[phase.partition("-")[2]]
                res["note"] = "; ".join(x for x in (f"{shape} shape (--cpu-smoke)", res["note"]) if x)
            return res

        return run

    def _against_fused(self, phase: str, res: dict) -> str:
        """The unfused run's peak memory and speed against the fused run of the same model."""
        from bench.gpu.measure import gib

        fused = next((p for p in self.report["phases"] if p["name"] == "lora-" + phase.partition("-")[2]), None)
        f, u = (fused or {}).get("figures") or {}, res.get("figures") or {}
        if not f or not u:
            return ""
        mf, mu = f.get("memory") or {}, u.get("memory") or {}
        parts = [f"without our fused paths ({', '.join(f'{k}={v}' for k, v in UNFUSED_ENV.items())})"]
        a, b = mf.get("torch_peak_allocated"), mu.get("torch_peak_allocated")
        if a and b:
            parts.append(f"torch peak {gib(b)} vs {gib(a)} fused ({b / a:.2f}x)")
        ta, tb = f.get("tokens_per_s"), u.get("tokens_per_s")
        if ta and tb:
            parts.append(f"tokens/s {tb:,.0f} vs {ta:,.0f} fused ({ta / tb:.2f}x faster fused)")
        res.setdefault("figures", {})["against_fused"] = {"peak": [a, b], "tokens_per_s": [ta, tb]}
        return ": ".join([parts[0], ", ".join(parts[1:])]) if len(parts) > 1 else parts[0]

    def qlora(self, phase: str):
        return lambda allow: self._train(phase_spec(phase, self.models, self.data, self.vram), allow)

    def oom(self, allow: float) -> dict:
        spec = phase_spec("oom-recovery", self.models, self.data, self.vram)
        mb = spec.micro_batch
        res = self._train(spec, allow)
        retries = res["figures"]["oom_retries"]
        res["figures"]["first_micro_batch"] = mb
        final = retries[-1]["micro_batch_size"] if retries else mb
        res["figures"]["final_micro_batch"] = final
        for r in retries:
            print(f"   retry {r['retry']}: {r['message']}")
        if res["status"] == OK and not retries:
            res.update(status=FAILED, note=f"no CUDA OOM at micro-batch {mb} × 1024: the estimate overshoots the card")
        elif res["status"] == OK:
            res["note"] = f"{len(retries)} OOM retries: micro-batch {mb} → {final}, then completed"
        return res

    # ---- printing ------------------------------------------------------------------------
    def _print(self, name: str, f: dict) -> None:
        from bench.gpu.measure import gib

        m, p = f.get("memory") or {}, f.get("paths") or {}
        tps, mfu = f.get("tokens_per_s"), f.get("mfu")
        print(f"   {name}: {f['state']} at step {f.get('step')} in {f['wall_s']:.0f}s ({f['run']})")
        print(
            f"   path: {p.get('attention')} → {p.get('attention_path')}; liger {p.get('liger')}; {p.get('quantization')}"
        )
        if tps:
            print(
                f"   tokens/s {tps:,.0f} over {f['window_s']:.0f}s"
                + (
                    f"; MFU {mfu:.1%} (LoRA-aware {f['flops_per_token'] / 1e9:.2f} GFLOP/token; "
                    f"6·N: {f['mfu_6n']:.1%}; peak {f['peak_tflops']} TFLOP/s)"
                    if mfu
                    else ""
                )
            )
        if m:
            print(
                f"   torch peak {gib(m.get('torch_peak_allocated'))} vs estimate {gib(m.get('estimate_allocated'))}; "
                f"NVML {gib(m.get('nvml_peak'))} ({m.get('nvml_source')}) vs estimate {gib(m.get('estimate_total'))}"
            )
        for line in f.get("errors") or []:
            print(f"   error: {line}")
        if f.get("log_tail"):
            print("   train.log tail:\n     " + "\n     ".join(f["log_tail"][-12:]))

    # ---- the whole check -----------------------------------------------------------------
    def run(self) -> int:
        os.environ["SAGE_FT_HOME"] = str(self.home)
        os.environ["SAGE_FT_CACHE"] = str(self.work / "cache")
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.pop("SAGE_FT_HW_RECORDED", None)  # real readings only
        if self.smoke:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the CPU path even on a GPU machine
        from sage_ft_tui.engine.hardware.probe import get_backend

        snap = get_backend(fresh=True).snapshot()
        import torch

        self.cuda = bool(snap.gpus) and torch.cuda.is_available()  # no CUDA context in this process
        if not self.cuda and not self.smoke:
            print("gpu_check: no CUDA GPU here (NVML and torch); `--cpu-smoke` runs the phases on CPU")
            return 2
        g = snap.gpus[0] if snap.gpus else None
        self.gpu_name = g.name if g else ""
        self.vram = g.mem_total if g else 0
        self.monitor: dict = {}
        self.report["versions"] = versions()
        self.report["machine"] = {
            "gpu": self.gpu_name or None,
            "vram": self.vram or None,
            "driver": snap.driver,
            "cuda_driver": snap.cuda,
            "torch_cuda": torch.version.cuda,
            "summary": snap.summary(),
        }
        print(f"gpu_check ({self.report['mode']}): {snap.summary()}; out {self.out}; work {self.work}")
        print("versions: " + ", ".join(f"{k} {v}" for k, v in self.report["versions"].items() if v))
        bnb = importlib.util.find_spec("bitsandbytes") is not None
        no_cuda = "needs a CUDA GPU (--cpu-smoke)" if self.smoke else ""
        qskip = no_cuda or ("" if bnb else "bitsandbytes missing")

        self.budget.t0 = time.monotonic()  # the phases' clock: imports and the probe above are not a phase
        setup = self.phase("setup", self.setup)
        broken = "" if setup["status"] == OK else "setup failed"
        self.phase("lora-qwen2.5-0.5b", self.lora("lora-qwen2.5-0.5b", monitor=True), skip=broken)
        self.phase_monitor(broken)
        self.phase("unfused-qwen2.5-0.5b", self.lora("unfused-qwen2.5-0.5b"), skip=broken)
        one = "--cpu-smoke trains one shape (the others are built)" if self.smoke else ""
        for phase in ("lora-llama-3.2-1b", "lora-gemma-2-2b", "lora-llama-3.1-8b"):
            self.phase(phase, self.lora(phase), skip=broken or one)
        for phase in ("qlora-llama-3.2-1b", "qlora-llama-3.1-8b"):
            self.phase(phase, self.qlora(phase), skip=broken or qskip)
        self.phase("oom-recovery", self.oom, skip=broken or no_cuda)
        self.report["not_exercised"] = not_exercised(self.report, self.cuda)
        failed = [p["name"] for p in self.report["phases"] if p["status"] == FAILED]
        failed += [f"path: {x}" for x in self.report.get("path_failures", [])]
        self.report["ok"] = not failed
        self.save()
        text = table(self.report)
        (self.out / SUMMARY_NAME).write_text(text + "\n", encoding="utf-8")
        print("\n" + text)
        print(
            f"\ntotal {self.report['wall_s']:.0f}s; {'no phase failed' if not failed else 'FAILED: ' + ', '.join(failed)}"
        )
        print(f"report: {self.out / 'gpu_check.json'}")
        return 0 if not failed else 1

    def phase_monitor(self, broken: str) -> None:
        """The monitor ran inside lora-qwen2.5-0.5b; its own line in the report."""
        m = self.monitor
        entry: dict = {"name": "monitor", "wall_s": m.get("seconds", 0.0), "monitor": m}
        if broken or not m:
            entry.update(status=SKIPPED, note=broken or "lora-qwen2.5-0.5b ended before the monitor attached")
        elif m.get("error"):
            entry.update(status=FAILED, note=m["error"])
        elif self.cuda and not m.get("live_nvml_polls"):
            entry.update(status=FAILED, note="the GPU panel got no live NVML reading")
        else:
            shown = m.get("gpus_shown") or []
            g = shown[0] if shown else {}
            fed = (
                f"GPU panel fed by {m['live_nvml_polls']} live NVML polls ({g.get('util')}% util, "
                f"{(g.get('mem_used') or 0) / GiB:.1f} GiB used)"
                if shown
                else "no GPU on this machine: host panel only"
            )
            entry.update(
                status=OK, note=f"{fed}; {m.get('train_points')} loss points; screenshot {Path(m['screenshot']).name}"
            )
        self.report["phases"].append(entry)
        self.save()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--cpu-smoke", action="store_true", help="the same phases, tiny shape, on CPU (CUDA phases skipped)"
    )
    ap.add_argument("--out", default=None, help="folder for gpu_check.json and monitor.svg (default: $OUT, else temp)")
    ap.add_argument("--work", default=None, help="folder for the models, data and runs (default: a temp folder)")
    ap.add_argument("--budget", type=float, default=None, help="seconds for the whole check (default: the plan's sum)")
    return Check(ap.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
