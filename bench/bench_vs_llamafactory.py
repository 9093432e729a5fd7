"""sage-ft-tui against LLaMA-Factory on the same work, at the same precision, interleaved:
prints figures, never pass/fail.

    python bench/bench_vs_llamafactory.py                          # full: both models, 30 steps, 3 rounds
    python bench/bench_vs_llamafactory.py --models 20m --steps 20 --rounds 2 --threads 1   # reduced
    python bench/bench_vs_llamafactory.py --ways ours,lf_packing --models tiny

LLaMA-Factory lives in a virtual environment of its own under the cache directory
(~/.cache/sage-ft-tui/bench/llamafactory-<version>), created on the first run: the
installed torch (e.g. 2.13.0+cpu, from the local wheel index) goes in first, so pip does
not pull a CUDA build, then `llamafactory==<version>` from PyPI. Never in the repository.

The workload (the same for every way): 1,000 alpaca rows (deterministic, lengths spread
like chat data, each checked to fit the max length in both tools' renderings), max length
512, LoRA r 8 / alpha 16 / no dropout on all linear layers, micro-batch 8, no accumulation,
constant lr 1e-4, loss on the answers, the same model folders (the tiny demo and a ~18M
random llama, one tokenizer).

Precision is part of each way, and ratios compare rows of the SAME precision:

  ours             sage-ft-tui with its defaults: BFD packing into padding-free rows,
                   per-sequence attention, precision `auto` (bf16 autocast where the CPU has
                   AMX/AVX512-BF16 and the model is wide enough, else fp32)
  lf_packing       LLaMA-Factory `packing: true`, gradient checkpointing off (its rows let the
                   sequences of a row attend to each other: not the same computation), at
                   ours' precision for that model on this CPU (`bf16: true` + `use_cpu: true`
                   where ours autocasts, else fp32)
  lf_neat          LLaMA-Factory `neat_packing: true` (block-diagonal mask), checkpointing
                   off, at ours' precision
  lf_default       LLaMA-Factory's defaults (each batch padded to its longest; gradient
                   checkpointing on), at ours' precision
  <way>_fp32       the same way in fp32 (ours: training.precision fp32)
  <way>_bf16       the same way in bf16 autocast (ours: training.precision bf16; LLaMA-Factory
                   `bf16: true` + `use_cpu: true`); emulated, slow, on a CPU without native bf16
  ours_peft_lora   ours with peft's own LoRA forward (SAGE_FT_FUSED_LORA=0), an ablation

The default list has ours and LLaMA-Factory's two packing ways at ours' precision, plus an
fp32 row for both; a row whose precision duplicates another of the same way is skipped (on a
CPU without native bf16, ours is fp32 already: ours_fp32 would be ours again).

Counting is the same code in every child: a wrapper around transformers'
`Trainer.training_step` counts the real (non-pad) input tokens and the loss tokens of every
batch and stamps each step's end (wall and process CPU). Figures:
  - steady real tokens per CPU-second: the steps after the first fifth (at least 2), from the
    end of the last warm-up step to the end of the last step, over the process's CPU seconds
    (all its threads) in that window; pooled over rounds = Σ tokens / Σ CPU s, with the
    rounds' min–max;
  - whole-run real tokens per CPU-second: all real tokens over the CPU seconds of the whole
    process tree from its start to the result (imports, data preparation, model load, saving);
  - peak RSS: the child's own maximum resident set (and its children's, if any);
  - threads: torch's intra-op thread count in the child (`--threads` sets OMP_NUM_THREADS).
Final loss: mean of the last 5 logs.
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
WAYS = ("ours", "lf_packing", "lf_neat", "ours_fp32", "lf_packing_fp32")
BASES = ("ours", "ours_peft_lora", "lf_default", "lf_packing", "lf_neat")
# Ablations of ours: ours with one speed-up turned off by its switch.
OURS_WITHOUT = {"ours_peft_lora": {"SAGE_FT_FUSED_LORA": "0"}}
CROSS_ATTENTION = "yes (sequences of a row attend to each other)"
WORKLOAD = dict(rows=1000, max_length=512, micro_batch=8, lora_r=8, lora_alpha=16, lr=1e-4, steps=30)
WORDS = (
    "the model data train token answer question list value step result check first second explain "
    "write code function return small large number because when which where about under over into "
    "python file line error fix loss batch length simple example people time year way day thing"
).split()


def split_way(way: str) -> tuple[str, str | None]:
    """'lf_packing_bf16' -> ('lf_packing', 'bf16'); 'lf_neat' -> ('lf_neat', None: ours' precision)."""
    for p in ("fp32", "bf16"):
        if way.endswith("_" + p) and way[: -len(p) - 1] in BASES:
            return way[: -len(p) - 1], p
    if way not in BASES:
        raise SystemExit(f"unknown way {way!r}: one of {', '.join(BASES)}, optionally with _fp32 or _bf16")
    return way, None


def is_ours(way: str) -> bool:
    return split_way(way)[0].startswith("ours")


# ---- the workload (parent, our environment) -----------------------------------------------


def cache_dir() -> Path:
    sys.path.insert(0, str(REPO))
    from sage_ft_tui.engine.paths import cache_home

    return cache_home() / "bench"


def rendered_lengths(tok, row: dict) -> int:
    """Tokens of the row as each tool renders it: ours (the model's chat template) and
    LLaMA-Factory's chatml (with a system turn, to be safe); the longer one."""
    msgs = [{"role": "user", "content": row["instruction"]}, {"role": "assistant", "content": row["output"]}]
    ours = len(tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"])
    chatml = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{row['instruction']}<|im_end|>\n<|im_start|>assistant\n{row['output']}<|im_end|>\n"
    )
    return max(ours, len(tok(chatml, add_special_tokens=True)["input_ids"]))


def write_rows(path: Path, n: int, seed: int = 0, tokenizer_dir: Path | None = None) -> Path:
    """n alpaca rows, word counts log-normal (median ~110 words). With `tokenizer_dir`, every
    row is cut (words off its answer) until both tools' renderings fit the max length, so
    neither tool truncates."""
    rng = random.Random(seed)
    tok = None
    if tokenizer_dir is not None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    rows = []
    for _ in range(n):
        words = int(min(220, max(8, rng.lognormvariate(math.log(110), 0.7))))
        body = [rng.choice(WORDS) for _ in range(words)]
        k = max(3, words // 5)
        row = {"instruction": " ".join(body[:k]).capitalize() + "?", "input": "", "output": " ".join(body[k:])}
        while tok is not None and rendered_lengths(tok, row) > WORKLOAD["max_length"]:
            out = row["output"].split()
            row["output"] = " ".join(out[: max(1, len(out) - max(1, (len(out) + 9) // 10))])
        rows.append(row)
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


def our_config(mdir: Path, data: Path, steps: int, precision: str = "auto") -> dict:
    """Our run config for the workload: our defaults, except what the workload fixes."""
    w = WORKLOAD
    return {
        "task": "instruction",
        "model": {"name": str(mdir)},
        "data": {"paths": [str(data)], "validation_split": 0},
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
            "precision": precision,
        },
    }


def ours_auto_precision(mdir: Path, data: Path) -> str:
    """What ours' precision `auto` computes in for this model on this CPU: bf16 or fp32."""
    sys.path.insert(0, str(REPO))
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.train.model import precision_flags

    cfg = RunConfig.from_dict(our_config(mdir, data, 1), source="bench")
    return "bf16" if precision_flags(cfg)["bf16"] else "fp32"


def lf_args(way: str, mdir: Path, data_dir: Path, out: Path, steps: int, precision: str) -> dict:
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
    base = split_way(way)[0]
    if base in ("lf_packing", "lf_neat"):
        args.update(packing=True, disable_gradient_checkpointing=True)
    if base == "lf_neat":
        args.update(neat_packing=True)
    if precision == "bf16":  # transformers refuses bf16 on a CPU unless use_cpu says it is meant
        args.update(bf16=True, use_cpu=True)
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
    """Wrap Trainer.training_step / log / train: real tokens, loss tokens, losses, per-step stamps."""
    import transformers

    T = transformers.Trainer
    step, log, train = T.training_step, T.log, T.train

    def training_step(self, model, inputs, *a, **k):
        if rec["t0"] is None:
            rec["t0"], rec["c0"] = time.perf_counter(), time.process_time()
        ids = inputs["input_ids"]
        real = int((ids != pad_id).sum())
        rec["real_tokens"] += real
        labels = inputs.get("labels")
        if labels is not None:
            rec["loss_tokens"] += int((labels != -100).sum())
        rec["steps"] += 1
        out = step(self, model, inputs, *a, **k)
        rec["stamps"].append((time.perf_counter(), time.process_time(), real))
        return out

    def log_(self, logs, *a, **k):
        if "loss" in logs:
            rec["losses"].append(float(logs["loss"]))
        return log(self, logs, *a, **k)

    def train_(self, *a, **k):
        out = train(self, *a, **k)
        rec["t1"], rec["c1"] = time.perf_counter(), time.process_time()
        return out

    T.training_step, T.log, T.train = training_step, log_, train_


def child(way: str, model_dir: str, data: str, steps: int, precision: str) -> None:
    rec = {"t0": None, "real_tokens": 0, "loss_tokens": 0, "steps": 0, "losses": [], "stamps": []}
    pad_id = int(os.environ["BENCH_PAD_ID"])
    install_counter(rec, pad_id)
    with tempfile.TemporaryDirectory(prefix=f"bench_lf.{way}.") as tmp:
        tmp = Path(tmp)
        if is_ours(way):
            sys.path.insert(0, str(REPO))
            from sage_ft_tui.engine.config.schema import RunConfig
            from sage_ft_tui.engine.data.prepare import prepare_run_data
            from sage_ft_tui.engine.data.trainer_data import tokenized_datasets
            from sage_ft_tui.engine.train.trainer import run_training

            raw = our_config(Path(model_dir), Path(data), steps, precision)
            cfg = RunConfig.from_dict(raw, source="bench")
            prepare_run_data(cfg, tmp / "run")
            train_ds, _ = tokenized_datasets(cfg, tmp / "run", model_dir)
            run_training(cfg, tmp / "run", train_ds, None)
        else:
            import types

            sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))  # see lf_python()
            from llamafactory.train.tuner import run_exp

            (tmp / "data").mkdir()
            (tmp / "data" / "dataset_info.json").write_text(json.dumps({"bench_alpaca": {"file_name": data}}))
            run_exp(lf_args(way, Path(model_dir), tmp / "data", tmp / "out", steps, precision))
    import torch
    import transformers

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    rec["rss_mib"] = max(own.ru_maxrss, kids.ru_maxrss) / 1024
    # the whole process tree from its start (imports included): user + system, every thread and child
    rec["tree_cpu_s"] = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    rec["threads"] = torch.get_num_threads()
    rec["versions"] = f"torch {torch.__version__}, transformers {transformers.__version__}"
    print("RESULT " + json.dumps(rec), flush=True)


# ---- driver -------------------------------------------------------------------------------


def child_cmd(
    way: str, mdir: Path, data: Path, steps: int, lf_py: Path | None, pad_id: int, threads: int, precision: str
):
    ours = is_ours(way)
    py = sys.executable if ours else str(lf_py)
    cmd = [py, __file__, "--child", way, "--model-dir", str(mdir), "--data", str(data), "--steps", str(steps)]
    cmd += ["--precision", precision]
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
        **OURS_WITHOUT.get(split_way(way)[0], {}),
    }
    if not ours:
        env.pop("PYTHONPATH", None)
    return cmd, env


def run_rounds(ways: list[str], rounds: int, parallel: bool, **kw) -> list[dict[str, dict]]:
    """Each way in a fresh child, round after round with the order rotated; or (`parallel`)
    every round's children at once: on a machine shared with other work, where CPU seconds
    are the measure and waiting for a core is not."""
    procs: list[dict[str, subprocess.Popen]] = []
    out: list[dict[str, dict]] = []
    for r in range(rounds):
        order = ways[r % len(ways) :] + ways[: r % len(ways)]
        procs.append({})
        out.append({})
        for w in order:
            cmd, env = child_cmd(
                w, precision=kw["prec"][w], **{k: v for k, v in kw.items() if k not in ("prec", "name")}
            )
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(HERE))
            procs[r][w] = p
            if not parallel:
                out[r][w] = read_result(w, p)
                report(kw["name"], r, w, kw["prec"][w], out[r][w])
    for r, round_procs in enumerate(procs):
        for w, p in round_procs.items():
            if w not in out[r]:
                out[r][w] = read_result(w, p)
                report(kw["name"], r, w, kw["prec"][w], out[r][w])
    return out


def report(name: str, r: int, w: str, precision: str, out: dict) -> None:
    print(
        f"  {name} round {r + 1} {w} ({precision}): {out['steady_tpc']:.0f} real tokens/CPU-s steady, "
        f"{out['whole_tpc']:.0f} whole run, {out['rss_mib']:.0f} MiB, loss {out['losses'][-1]:.3f}",
        flush=True,
    )


def read_result(way: str, p: subprocess.Popen) -> dict:
    stdout, stderr = p.communicate()
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return summarize(json.loads(line[7:]))
    raise SystemExit(f"{way} failed:\n{stdout[-3000:]}\n{stderr[-4000:]}")


def summarize(out: dict) -> dict:
    """Steady window: after the first fifth of the steps (at least 2), to the last step's end."""
    stamps = out["stamps"]
    warm = min(max(2, len(stamps) // 5), len(stamps) - 1)
    (w0, c0, _), (w1, c1, _) = stamps[warm - 1], stamps[-1]
    out["steady_tokens"] = sum(t for _, _, t in stamps[warm:])
    out["steady_cpu_s"], out["steady_wall_s"] = c1 - c0, w1 - w0
    out["steady_tpc"] = out["steady_tokens"] / max(out["steady_cpu_s"], 1e-9)
    out["whole_tpc"] = out["real_tokens"] / max(out["tree_cpu_s"], 1e-9)
    return out


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
    ap.add_argument(
        "--parallel",
        action="store_true",
        help="run every child at once (a machine shared with other work: CPU seconds are the measure)",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.model_dir, args.data, args.steps, args.precision)
        return
    ways = [w for w in args.ways.split(",") if w]
    for w in ways:
        split_way(w)  # an unknown way is one line, before anything runs
    lf_py = lf_python(args.lf_version) if any(not is_ours(w) for w in ways) else None
    root = cache_dir()
    models = build_models(root / "models")
    # one tokenizer for both models: the rows are checked against it once (v2: fitted rows)
    data = write_rows(root / "data" / f"alpaca-{WORKLOAD['rows']}-v2.jsonl", WORKLOAD["rows"], 0, models["tiny"])
    print(f"machine: {machine()}")
    how = "every child at once" if args.parallel else "interleaved"
    print(f"workload: {WORKLOAD | {'steps': args.steps}}, {args.rounds} rounds ({how}), {args.threads} threads\n")
    for name in [m for m in args.models.split(",") if m]:
        mdir = models[name]
        tok = json.loads((mdir / "tokenizer_config.json").read_text())
        vocab = json.loads((mdir / "tokenizer.json").read_text())["model"]["vocab"]
        pad_id = vocab[tok.get("pad_token") or "<|pad|>"]
        auto = ours_auto_precision(mdir, data)
        prec: dict[str, str] = {}
        for w in ways:
            base, p = split_way(w)
            p = p or auto
            if any(split_way(v)[0] == base and q == p for v, q in prec.items()):
                print(f"  {name}: {w} skipped: {base} already runs in {p} here (ours' auto precision is {auto})")
                continue
            prec[w] = p
        kw = dict(mdir=mdir, data=data, steps=args.steps, lf_py=lf_py, pad_id=pad_id, threads=args.threads)
        rounds = run_rounds(list(prec), args.rounds, args.parallel, prec=prec, name=name, **kw)
        res = {w: [r[w] | {"model_dir": str(mdir)} for r in rounds] for w in prec}
        print_table(name, prec, res, auto)


def pooled(rs: list[dict]) -> float:
    return sum(o["steady_tokens"] for o in rs) / max(sum(o["steady_cpu_s"] for o in rs), 1e-9)


def print_table(name: str, prec: dict[str, str], res: dict[str, list[dict]], auto: str) -> None:
    rounds = len(next(iter(res.values())))
    ours_at = {p: w for w, p in prec.items() if split_way(w)[0] == "ours"}
    print(f"\n### {name}: {rounds} rounds (ours' auto precision here: {auto})\n")
    print(
        "| way | precision | threads | steady real tokens/CPU-s, pooled (min–max) | whole run real tokens/CPU-s "
        "| steady real tokens/s (wall) | peak RSS MiB (max) | final loss | ours ÷ this, same precision "
        "| sequences attend across boundaries |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for w, p in prec.items():
        rs = res[w]

        def m(f, rs=rs):
            return statistics.median(f(o) for o in rs)

        steady = [o["steady_tpc"] for o in rs]
        ref = ours_at.get(p)
        ratio = "-"
        if ref and ref != w:
            ratio = f"{pooled(res[ref]) / pooled(rs):.2f}x"
            lo = min(o["steady_tpc"] for o in res[ref]) / max(steady)
            hi = max(o["steady_tpc"] for o in res[ref]) / min(steady)
            ratio += f" ({lo:.2f}–{hi:.2f})" if rounds > 1 else ""
        base = split_way(w)[0]
        across = CROSS_ATTENTION if base == "lf_packing" else "no"
        print(
            f"| {w} | {p} | {rs[0]['threads']} | {pooled(rs):,.0f} ({min(steady):,.0f}–{max(steady):,.0f}) "
            f"| {m(lambda o: o['whole_tpc']):,.0f} | {m(lambda o: o['steady_tokens'] / o['steady_wall_s']):,.0f} "
            f"| {m(lambda o: o['rss_mib']):,.0f} ({max(o['rss_mib'] for o in rs):,.0f}) "
            f"| {m(lambda o: statistics.fmean(o['losses'][-5:])):.3f} | {ratio} | {across} |"
        )
    print()
    for w in prec:
        print(f"  {w}: {res[w][0]['versions']}")
    for w in [w for w in prec if split_way(w)[0] == "ours"]:
        est = our_estimate(res[w][0]["model_dir"], prec[w])
        peak = statistics.median(o["rss_mib"] for o in res[w])
        print(
            f"  {w}: estimate (engine/hardware/estimate.py) {est:,.0f} MiB vs measured peak RSS {peak:,.0f} MiB "
            f"({est / peak:.2f}x)"
        )
    print()


def our_estimate(mdir: str, precision: str) -> float:
    """What `sage-ft-tui estimate` says this run needs on this machine, MiB."""
    sys.path.insert(0, str(REPO))
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.hardware.estimate import estimate_for_config

    cfg = RunConfig.from_dict(our_config(Path(mdir), Path("rows.jsonl"), 1, precision), source="bench")
    from sage_ft_tui.engine.fsutil import MiB

    return estimate_for_config(cfg).total / MiB


if __name__ == "__main__":
    main()
