"""sage-ft-tui against LLaMA-Factory on the same work, interleaved: prints figures, never pass/fail.

    python bench/bench_vs_llamafactory.py                          # full: both models, 30 steps, 3 rounds
    python bench/bench_vs_llamafactory.py --models 20m --steps 10 --rounds 2   # reduced (busy machine)
    python bench/bench_vs_llamafactory.py --ways ours,lf_packing --models tiny

LLaMA-Factory lives in a virtual environment of its own under the cache directory
(~/.cache/sage-ft-tui/bench/llamafactory-<version>), created on the first run: the
installed torch (e.g. 2.13.0+cpu, from the local wheel index) goes in first, so pip does
not pull a CUDA build, then `llamafactory==<version>` from PyPI. Never in the repository.

The workload (the same for every way): 1,000 alpaca rows (deterministic, lengths spread
like chat data, all under max length), max length 512, LoRA r 8 / alpha 16 / no dropout on
all linear layers, micro-batch 8, no accumulation, constant lr 1e-4, loss on the answers,
precision each tool's default on CPU (LLaMA-Factory: fp32; ours: `auto` = bf16 autocast where
the CPU has AMX/AVX512-BF16, else fp32; `lf_packing_bf16` gives LLaMA-Factory bf16 too), the same model folders (the tiny demo and a ~18M random llama, one tokenizer).

  ours         sage-ft-tui with its defaults (BFD packing into padding-free rows,
               per-sequence attention: sequences never see each other)
  lf_default   LLaMA-Factory's defaults (each batch padded to its longest; gradient
               checkpointing on)
  lf_packing   LLaMA-Factory `packing: true`, gradient checkpointing off (its rows let the
               sequences of a row attend to each other: not the same computation)
  lf_neat      LLaMA-Factory `neat_packing: true` (block-diagonal mask), checkpointing off
  lf_packing_bf16  lf_packing with `bf16: true` (autocast on CPU, as ours' auto does)
  ours_peft_lora   ours with peft's own LoRA forward (SAGE_FT_FUSED_LORA=0), an ablation
  ours_fp32        ours without bf16 autocast (SAGE_FT_CPU_BF16=0), an ablation

Counting is the same code in both processes: a wrapper around transformers'
`Trainer.training_step` counts the real (non-pad) input tokens and the loss tokens of every
batch, and times the window from the first step's start to the end of `Trainer.train`
(wall and process CPU); peak RSS is the child's own. Final loss: mean of the last 5 logs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LF_VERSION = "0.9.5"
WAYS = ("ours", "lf_default", "lf_packing", "lf_neat", "lf_packing_bf16")
# Ablations of ours (not in the default list): ours with one speed-up turned off by its switch.
OURS_WITHOUT = {"ours_peft_lora": {"SAGE_FT_FUSED_LORA": "0"}, "ours_fp32": {"SAGE_FT_CPU_BF16": "0"}}
CROSS_ATTENTION = {w: "yes (sequences of a row attend to each other)" for w in ("lf_packing", "lf_packing_bf16")}
WORKLOAD = dict(rows=1000, max_length=512, micro_batch=8, lora_r=8, lora_alpha=16, lr=1e-4, steps=30)
WORDS = (
    "the model data train token answer question list value step result check first second explain "
    "write code function return small large number because when which where about under over into "
    "python file line error fix loss batch length simple example people time year way day thing"
).split()


# ---- the workload (parent, our environment) -----------------------------------------------


def cache_dir() -> Path:
    sys.path.insert(0, str(REPO))
    from sage_ft_tui.engine.paths import cache_home

    return cache_home() / "bench"


def write_rows(path: Path, n: int, seed: int = 0) -> Path:
    """n alpaca rows, word counts log-normal (median ~110 words), clipped so every rendered
    row stays under the max length for the tiny tokenizer."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = int(min(220, max(8, rng.lognormvariate(math.log(110), 0.7))))
        body = [rng.choice(WORDS) for _ in range(words)]
        k = max(3, words // 5)
        rows.append({"instruction": " ".join(body[:k]).capitalize() + "?", "input": "", "output": " ".join(body[k:])})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def build_models(root: Path) -> dict[str, Path]:
    """The tiny demo and the ~18M llama of bench/bench_train.py, cached under `root`."""
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(HERE))
    from bench_train import ARCH_20M

    from sage_ft_tui.engine.models.tiny import build_tiny_model, ensure_tiny_model

    m20 = root / "llama-18m"
    if not (m20 / "config.json").exists():
        build_tiny_model(m20, seed=0, **ARCH_20M)
    return {"tiny": Path(ensure_tiny_model()), "20m": m20}


def our_config(mdir: Path, data: Path, steps: int) -> dict:
    """Our run config for the workload: our defaults, except what the workload fixes."""
    w = WORKLOAD
    return {
        "task": "instruction",
        "model": {"name": str(mdir)},
        "data": {"paths": [str(data)]},
        "lora": {"r": w["lora_r"], "alpha": w["lora_alpha"], "dropout": 0.0},
        "training": {
            "max_steps": steps,
            "learning_rate": w["lr"],
            "lr_scheduler": "constant",
            "warmup_ratio": 0.0,
            "micro_batch_size": w["micro_batch"],
            "grad_accumulation": 1,
            "max_length": w["max_length"],
            "logging_steps": 1,
            "save_steps": 100000,
            "save_total_limit": 1,
            "seed": 0,
        },
    }


def lf_args(way: str, mdir: Path, data_dir: Path, out: Path, steps: int) -> dict:
    w = WORKLOAD
    args = {
        "model_name_or_path": str(mdir),
        "trust_remote_code": False,
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "lora_rank": w["lora_r"],
        "lora_alpha": w["lora_alpha"],
        "lora_dropout": 0.0,
        "lora_target": "all",
        "dataset": "bench_alpaca",
        "dataset_dir": str(data_dir),
        "template": "chatml",
        "cutoff_len": w["max_length"],
        "overwrite_cache": True,
        "preprocessing_num_workers": 1,
        "output_dir": str(out),
        "overwrite_output_dir": True,
        "logging_steps": 1,
        "save_strategy": "no",
        "per_device_train_batch_size": w["micro_batch"],
        "gradient_accumulation_steps": 1,
        "learning_rate": w["lr"],
        "lr_scheduler_type": "constant",
        "warmup_ratio": 0.0,
        "max_steps": steps,
        "bf16": False,
        "fp16": False,
        "report_to": "none",
        "seed": 0,
        "plot_loss": False,
        "ddp_timeout": 180000000,
    }
    if way in ("lf_packing", "lf_neat", "lf_packing_bf16"):
        args.update(packing=True, disable_gradient_checkpointing=True)
    if way == "lf_packing_bf16":
        args.update(bf16=True)
    if way == "lf_neat":
        args.update(neat_packing=True)
    return args


def lf_python(version: str = LF_VERSION) -> Path:
    """The LLaMA-Factory venv's python, created (and cached) when missing."""
    import importlib.metadata as md

    venv = cache_dir() / f"llamafactory-{version}"
    py = venv / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", "import llamafactory"], capture_output=True).returncode == 0:
        return py
    print(f"creating LLaMA-Factory {version} in {venv} (first run only; a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Our torch (e.g. 2.13.0+cpu from the local wheel index) first, then pinned by a constraint
    # so that LLaMA-Factory's torch/torchvision/torchaudio requirements cannot pull a CUDA build.
    pin = venv / "constraints.txt"
    pin.write_text(f"torch=={md.version('torch')}\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(pin), "torch"], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(pin), f"llamafactory=={version}"], check=True)
    # PyPI's torchvision/torchaudio builds do not load against a CPU torch (and torchaudio
    # stops at 2.11): a text-only workload needs neither; the child stubs torchaudio's import.
    subprocess.run([str(py), "-m", "pip", "uninstall", "-y", "-q", "torchvision", "torchaudio"], check=True)
    return py


# ---- counting, the same in every child --------------------------------------------------


def install_counter(rec: dict, pad_id: int) -> None:
    """Wrap Trainer.training_step / log / train: real tokens, loss tokens, losses, timing."""
    import transformers

    T = transformers.Trainer
    step, log, train = T.training_step, T.log, T.train

    def training_step(self, model, inputs, *a, **k):
        if rec["t0"] is None:
            rec["t0"], rec["c0"] = time.perf_counter(), time.process_time()
        ids = inputs["input_ids"]
        rec["real_tokens"] += int((ids != pad_id).sum())
        labels = inputs.get("labels")
        if labels is not None:
            rec["loss_tokens"] += int((labels != -100).sum())
        rec["steps"] += 1
        return step(self, model, inputs, *a, **k)

    def log_(self, logs, *a, **k):
        if "loss" in logs:
            rec["losses"].append(float(logs["loss"]))
        return log(self, logs, *a, **k)

    def train_(self, *a, **k):
        out = train(self, *a, **k)
        rec["t1"], rec["c1"] = time.perf_counter(), time.process_time()
        return out

    T.training_step, T.log, T.train = training_step, log_, train_


def child(way: str, model_dir: str, data: str, steps: int) -> None:
    rec = {"t0": None, "real_tokens": 0, "loss_tokens": 0, "steps": 0, "losses": []}
    pad_id = int(os.environ["BENCH_PAD_ID"])
    install_counter(rec, pad_id)
    with tempfile.TemporaryDirectory(prefix=f"bench_lf.{way}.") as tmp:
        tmp = Path(tmp)
        if way == "ours" or way in OURS_WITHOUT:
            sys.path.insert(0, str(REPO))
            from sage_ft_tui.engine.config.schema import RunConfig
            from sage_ft_tui.engine.data.prepare import prepare_run_data, tokenized_datasets
            from sage_ft_tui.engine.train.trainer import run_training

            cfg = RunConfig.from_dict(our_config(Path(model_dir), Path(data), steps), source="bench")
            prepare_run_data(cfg, tmp / "run")
            train_ds, _ = tokenized_datasets(cfg, tmp / "run", model_dir)
            run_training(cfg, tmp / "run", train_ds, None)
        else:
            import types

            sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))  # see lf_python()
            from llamafactory.train.tuner import run_exp

            (tmp / "data").mkdir()
            (tmp / "data" / "dataset_info.json").write_text(json.dumps({"bench_alpaca": {"file_name": data}}))
            run_exp(lf_args(way, Path(model_dir), tmp / "data", tmp / "out", steps))
    rec["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(rec), flush=True)


# ---- driver -------------------------------------------------------------------------------


def run_one(way: str, mdir: Path, data: Path, steps: int, lf_py: Path | None, pad_id: int, threads: int) -> dict:
    ours = way == "ours" or way in OURS_WITHOUT
    py = sys.executable if ours else str(lf_py)
    cmd = [py, __file__, "--child", way, "--model-dir", str(mdir), "--data", str(data), "--steps", str(steps)]
    env = {
        **os.environ,
        "BENCH_PAD_ID": str(pad_id),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONWARNINGS": "ignore",
        "TRANSFORMERS_VERBOSITY": "error",
        "DISABLE_VERSION_CHECK": "1",
        "OMP_NUM_THREADS": str(threads),
        "CUDA_VISIBLE_DEVICES": "",
        **OURS_WITHOUT.get(way, {}),
    }
    if not ours:
        env.pop("PYTHONPATH", None)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(HERE))
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"{way} failed:\n{p.stdout[-3000:]}\n{p.stderr[-4000:]}")


def machine() -> str:
    import platform

    load = os.getloadavg()
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the start"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="20m,tiny")
    ap.add_argument("--ways", default=",".join(WAYS))
    ap.add_argument("--steps", type=int, default=WORKLOAD["steps"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--lf-version", default=LF_VERSION)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.model_dir, args.data, args.steps)
        return
    ways = [w for w in args.ways.split(",") if w]
    lf_py = lf_python(args.lf_version) if any(w.startswith("lf_") for w in ways) else None
    root = cache_dir()
    models = build_models(root / "models")
    data = write_rows(root / "data" / f"alpaca-{WORKLOAD['rows']}.jsonl", WORKLOAD["rows"])
    print(f"machine: {machine()}")
    print(f"workload: {WORKLOAD | {'steps': args.steps}}, {args.rounds} rounds interleaved, {args.threads} threads\n")
    for name in [m for m in args.models.split(",") if m]:
        mdir = models[name]
        tok = json.loads((mdir / "tokenizer_config.json").read_text())
        vocab = json.loads((mdir / "tokenizer.json").read_text())["model"]["vocab"]
        pad_id = vocab[tok.get("pad_token") or "<|pad|>"]
        res: dict[str, list[dict]] = {w: [] for w in ways}
        for r in range(args.rounds):
            order = ways[r % len(ways) :] + ways[: r % len(ways)]
            for w in order:
                out = run_one(w, mdir, data, args.steps, lf_py, pad_id, args.threads)
                out["tps"] = out["real_tokens"] / (out["t1"] - out["t0"])
                res[w].append(out)
                print(
                    f"  {name} round {r + 1} {w}: {out['t1'] - out['t0']:.1f} s, {out['real_tokens']} real tokens, "
                    f"{out['tps']:.0f}/s, loss {out['losses'][-1]:.3f}",
                    flush=True,
                )
        print_table(name, ways, res)


def print_table(name: str, ways: list[str], res: dict[str, list[dict]]) -> None:
    med = {w: statistics.median(o["tps"] for o in res[w]) for w in ways}
    ref = med.get("ours")
    print(f"\n### {name}: medians of {len(next(iter(res.values())))} interleaved rounds\n")
    print(
        "| way | wall s | real tokens | loss tokens | real tokens/s | CPU s | peak RSS MiB | final loss "
        "| ours ÷ this (tokens/s) | sequences attend across boundaries |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for w in ways:
        rs = res[w]

        def m(f, rs=rs):
            return statistics.median(f(o) for o in rs)

        final = m(lambda o: statistics.fmean(o["losses"][-5:]))
        ratio = f"{ref / med[w]:.2f}x" if ref else "-"
        print(
            f"| {w} | {m(lambda o: o['t1'] - o['t0']):.1f} | {m(lambda o: o['real_tokens']):,.0f} "
            f"| {m(lambda o: o['loss_tokens']):,.0f} | {med[w]:,.0f} | {m(lambda o: o['c1'] - o['c0']):.1f} "
            f"| {m(lambda o: o['rss_mib']):,.0f} | {final:.3f} | {ratio} | {CROSS_ATTENTION.get(w, 'no')} |"
        )
    print()


if __name__ == "__main__":
    main()
