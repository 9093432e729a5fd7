"""Training throughput, three ways, side by side: prints figures, never pass/fail.

    python bench/bench_train.py                      # tiny-demo and a ~20M random llama, CPU
    python bench/bench_train.py --models tiny --reps 3
    python bench/bench_train.py --models 20m --examples 64 --reps 2
    python bench/bench_train.py --models qwen0.5b --examples 1024 --threads 0   # on a CUDA GPU, bf16

The same model, the same examples (tokenized once by our template), one epoch each:

  seed      HF Trainer + peft, every example padded to max_length, loss on the whole
            sequence (the seed's recipe)
  dynamic   HF Trainer + peft, padded to the longest example of each batch (the plain
            fix anyone would try first), loss on the answers
  ours      the engine: prepare_run_data -> tokenized_datasets -> run_training (TRL
            SFTTrainer, BFD packing, padding-free rows, per-sequence attention)

Throughput counts real tokens only: the sum of the examples' lengths, the same for all
three, over the training wall time (first step begins -> last step logged); the same
window's process CPU time gives a second ratio that other load on the machine cannot
inflate. Every run is a fresh child process; the ways are interleaved within each
repetition (rotated order), so machine noise hits them alike. Ratios are the figures to
read; absolute times are context. `--ways dynamic,ours,ours_sdpa` adds an ablation: ours
with plain SDPA (a dense block-diagonal mask over each packed row).

Batching: the baselines take 4 examples a step; ours packs rows of max_length tokens with
micro_batch 1, about 4 examples a step for this length mix (mean ~370 tokens), so all three
make about the same number of optimizer steps an epoch and their loss curves line up.
Same LoRA (r 16, alpha 32, all linear layers, no dropout), constant lr 1e-3, AdamW, fp32 on
CPU (bf16 on CUDA); the baselines use SDPA attention.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WAYS = ("seed", "dynamic", "ours")
EXTRA_WAYS = ("ours_sdpa",)  # ablation: ours with plain SDPA (dense block-diagonal mask over the packed row)
MAX_LENGTH = 1536
BATCH = 4
LR = 1e-3
# ~20M parameters: hidden 384, 8 layers, MLP 1536, 6 heads (2 KV heads), 1.2k vocab.
ARCH_20M = dict(
    hidden_size=384, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=6, num_key_value_heads=2
)

WORDS = (
    "the model data train token answer question list value step result check first second explain "
    "write code function return small large number because when which where about under over into "
    "python file line error fix loss batch length simple example people time year way day thing man "
    "world life hand part child eye woman place work week case point government company system program "
    "group problem fact good new old great high different local important public bad same able"
).split()


# ---- data ---------------------------------------------------------------------------


def target_lengths(n: int, seed: int = 0) -> list[int]:
    """Token lengths spread like real chat data: log-normal (median ~260, long tail), 20..1500."""
    rng = random.Random(seed)
    return [int(min(1500, max(20, rng.lognormvariate(math.log(260), 0.85)))) for _ in range(n)]


def make_rows(tok, n: int, seed: int = 0) -> list[dict]:
    """Alpaca rows whose rendered+tokenized length hits each target (within a few tokens)."""
    from sage_ft_tui.engine.data.formats import normalize

    rng = random.Random(seed + 1)
    rows = []
    for target in target_lengths(n, seed):
        words = [rng.choice(WORDS) for _ in range(target * 2)]
        n_in = max(3, min(60, int(target * rng.uniform(0.1, 0.3)) // 2))
        instruction = " ".join(words[:n_in]).capitalize() + "?"
        body = words[n_in:]
        lo, hi = 1, len(body)
        while lo < hi:  # binary search the answer's word count for the target token length
            mid = (lo + hi + 1) // 2
            row = {"instruction": instruction, "input": "", "output": " ".join(body[:mid]) + "."}
            if len(tok.encode_conversation(normalize(row, "alpaca")["messages"]).input_ids) <= target:
                lo = mid
            else:
                hi = mid - 1
        rows.append({"instruction": instruction, "input": "", "output": " ".join(body[:lo]) + "."})
    return rows


def encode_rows(tok, rows: list[dict]) -> list[tuple[list[int], list[int]]]:
    from sage_ft_tui.engine.data.formats import normalize

    out = []
    for r in rows:
        enc = tok.encode_conversation(normalize(r, "alpaca")["messages"])
        out.append((enc.input_ids, enc.completion_mask))
    return out


def model_folder(which: str, root: Path) -> Path:
    from sage_ft_tui.engine.models.tiny import ensure_tiny_model

    if which == "tiny":
        return ensure_tiny_model()
    if which == "qwen0.5b":  # Qwen2.5-0.5B's shape, random bf16 weights, the tiny tokenizer (bench/gpu_check.py)
        sys.path.insert(0, str(REPO / "bench"))
        from gpu_check import build_model

        return build_model(root / "qwen0.5b")
    out = root / "llama-20m"
    if not (out / "config.json").exists():
        from sage_ft_tui.engine.models.tiny import build_tiny_model

        build_tiny_model(out, seed=0, **ARCH_20M)
    return out


# ---- one run (child process) ---------------------------------------------------------


def _lora():
    from peft import LoraConfig

    return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")


def _timing_callback(rec: dict):
    from transformers import TrainerCallback

    class Timing(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            rec["t0"], rec["c0"] = time.time(), time.process_time()

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                rec["t1"], rec["c1"] = time.time(), time.process_time()
                rec["losses"].append((state.global_step, round(state.epoch or 0, 4), logs["loss"]))

    return Timing()


def run_baseline(way: str, mdir: Path, data: list, out: Path) -> dict:
    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    torch.manual_seed(0)
    pad_id = 3  # <|pad|> of the tiny tokenizer (every model here shares it)
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(
        str(mdir), dtype=torch.bfloat16 if cuda else torch.float32, attn_implementation="sdpa"
    )
    model = get_peft_model(model, _lora())
    if way == "seed":  # padding="max_length"; labels = input_ids, pads ignored (mlm=False collator)
        feats = [
            {
                "input_ids": ids + [pad_id] * (MAX_LENGTH - len(ids)),
                "attention_mask": [1] * len(ids) + [0] * (MAX_LENGTH - len(ids)),
                "labels": ids + [-100] * (MAX_LENGTH - len(ids)),
            }
            for ids, _ in data
        ]
    else:
        feats = [
            {
                "input_ids": ids,
                "attention_mask": [1] * len(ids),
                "labels": [t if m else -100 for t, m in zip(ids, mask)],
            }
            for ids, mask in data
        ]
    ds = Dataset.from_list(feats)

    def collate(batch):
        n = max(len(b["input_ids"]) for b in batch)
        return {
            k: torch.tensor([b[k] + [fill] * (n - len(b[k])) for b in batch])
            for k, fill in (("input_ids", pad_id), ("attention_mask", 0), ("labels", -100))
        }

    args = TrainingArguments(
        output_dir=str(out),
        num_train_epochs=1,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        lr_scheduler_type="constant",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not cuda,
        bf16=cuda,
        seed=0,
        data_seed=0,
        dataloader_pin_memory=False,
        remove_unused_columns=False,
    )
    rec: dict = {"losses": []}
    trainer = Trainer(
        model=model, args=args, train_dataset=ds, data_collator=collate, callbacks=[_timing_callback(rec)]
    )
    trainer.train()
    return rec


class _Recorder:
    """Stands in for the EventWriter: keeps the times and losses of the engine's events."""

    def __init__(self, rec: dict):
        self.rec = rec

    def emit(self, kind, **f):
        now, cpu = time.time(), time.process_time()
        if kind == "start":
            self.rec["t0"], self.rec["c0"] = now, cpu
        elif kind == "log":
            self.rec["t1"], self.rec["c1"] = now, cpu
            self.rec["losses"].append((f["step"], f["epoch"], f["loss"]))
        return {}

    def close(self):
        pass


def run_ours(mdir: Path, rows: list, out: Path, attn: str = "auto") -> dict:
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.data.prepare import prepare_run_data
    from sage_ft_tui.engine.data.trainer_data import tokenized_datasets
    from sage_ft_tui.engine.train.trainer import run_training

    data = out / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import torch

    cfg = RunConfig.from_dict(
        {
            "task": "instruction",
            "model": {
                "name": str(mdir),
                "dtype": "auto" if torch.cuda.is_available() else "float32",
                "attn_implementation": attn,
            },
            "data": {"paths": [str(data)]},
            "lora": {"r": 16, "alpha": 32, "dropout": 0.0},
            "training": {
                "epochs": 1,
                "learning_rate": LR,
                "lr_scheduler": "constant",
                "warmup_ratio": 0.0,
                "micro_batch_size": 1,
                "grad_accumulation": 1,
                "max_length": MAX_LENGTH,
                "packing": True,
                "logging_steps": 1,
                "save_steps": 100000,
                "save_total_limit": 1,
                "seed": 0,
            },
        },
        source="bench",
    )
    run = out / "run"
    prepare_run_data(cfg, run)
    train_ds, _ = tokenized_datasets(cfg, run, str(mdir))
    rec: dict = {"losses": []}
    run_training(cfg, run, train_ds, None, events=_Recorder(rec))
    return rec


def child(args) -> None:
    import torch

    from sage_ft_tui.engine.data.template import chat_tokenizer

    torch.set_num_threads(args.threads or torch.get_num_threads())
    mdir = Path(args.model_dir)
    tok = chat_tokenizer(str(mdir))
    rows = make_rows(tok, args.examples, args.seed)
    data = encode_rows(tok, rows)
    with tempfile.TemporaryDirectory(prefix="bench_train.") as tmp:
        rec = run_baselines_or_ours(args.way, mdir, rows, data, Path(tmp))
    real = sum(len(ids) for ids, _ in data)
    print(
        "RESULT "
        + json.dumps(
            {
                "way": args.way,
                "seconds": rec["t1"] - rec["t0"],
                "cpu_seconds": rec["c1"] - rec["c0"],
                "real_tokens": real,
                "losses": rec["losses"],
                "steps": len(rec["losses"]),
            }
        )
    )


def run_baselines_or_ours(way, mdir, rows, data, tmp):
    if way.startswith("ours"):
        return run_ours(mdir, rows, tmp, "sdpa" if way == "ours_sdpa" else "auto")
    return run_baseline(way, mdir, data, tmp)


# ---- driver ---------------------------------------------------------------------------


def one(way: str, mdir: Path, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        way,
        "--model-dir",
        str(mdir),
        "--examples",
        str(args.examples),
        "--seed",
        str(args.seed),
        "--threads",
        str(args.threads),
    ]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONWARNINGS": "ignore",
        "TRANSFORMERS_VERBOSITY": "error",
    }
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"{way} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")


def loss_points(losses: list, k: int = 5) -> list[float]:
    """Mean loss over k equal slices of the epoch (start .. end): the curve's shape."""
    if not losses:
        return []
    vals = [loss for _, _, loss in losses]
    n = len(vals)
    out = []
    for i in range(k):
        a, b = i * n // k, max(i * n // k + 1, (i + 1) * n // k)
        out.append(round(statistics.fmean(vals[a:b]), 3))
    return out


def machine() -> str:
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="tiny,20m", help="comma list of tiny, 20m, qwen0.5b (GPU)")
    ap.add_argument(
        "--examples", type=int, default=0, help="examples per epoch (default: tiny 64, 20m 24, qwen0.5b 1024)"
    )
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default: tiny 2, 20m 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads in each child (default 1: on a shared, busy machine a 2-thread run spins "
        "waiting for its descheduled sibling, which swamps the differences; 0: torch's default)",
    )
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--ways", default=",".join(WAYS), help=f"comma list of {', '.join(WAYS + EXTRA_WAYS)}")
    ap.add_argument("--child", choices=WAYS + EXTRA_WAYS, help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.way = args.child
        child(args)
        return

    print(f"machine: {machine()}; {args.threads or 'default'} torch thread(s) per run")
    all_results = {}
    with tempfile.TemporaryDirectory(prefix="bench_models.") as root:
        for which in args.models.split(","):
            mdir = model_folder(which, Path(root))
            a = argparse.Namespace(**vars(args))
            a.examples = args.examples or {"tiny": 64, "20m": 24}.get(which, 1024)
            reps = args.reps or (2 if which == "tiny" else 1)
            from sage_ft_tui.engine.data.template import chat_tokenizer

            lens = sorted(
                len(ids)
                for ids, _ in encode_rows(
                    chat_tokenizer(str(mdir)), make_rows(chat_tokenizer(str(mdir)), a.examples, a.seed)
                )
            )
            from transformers import AutoConfig

            c = AutoConfig.from_pretrained(str(mdir))
            params = c.vocab_size * c.hidden_size + c.num_hidden_layers * (
                2 * c.hidden_size * c.hidden_size
                + 2 * c.hidden_size * c.hidden_size * c.num_key_value_heads // c.num_attention_heads
                + 3 * c.hidden_size * c.intermediate_size
            )
            print(
                f"\n## {which}: {params / 1e6:.1f}M params, {a.examples} examples, token lengths min {lens[0]} "
                f"median {lens[len(lens) // 2]} mean {statistics.fmean(lens):.0f} p95 {lens[int(0.95 * (len(lens) - 1))]} "
                f"max {lens[-1]}; max_length {MAX_LENGTH}; {reps} rep(s), interleaved"
            )
            ways = tuple(args.ways.split(","))
            runs: dict[str, list[dict]] = {w: [] for w in ways}
            for r in range(reps):
                order = ways[r % len(ways) :] + ways[: r % len(ways)]
                for w in order:
                    res = one(w, mdir, a)
                    runs[w].append(res)
                    print(
                        f"  rep {r + 1} {w:8s} {res['seconds']:7.1f} s wall {res['cpu_seconds']:7.1f} s cpu "
                        f"{res['real_tokens'] / res['seconds']:8.0f} tok/s  {res['steps']} steps",
                        flush=True,
                    )
            table = []
            med = {w: statistics.median(x["seconds"] for x in runs[w]) for w in ways}
            cpu = {w: statistics.median(x["cpu_seconds"] for x in runs[w]) for w in ways}
            real = runs[ways[0]][0]["real_tokens"]
            ref = lambda d, k, w: f"{d[k] / d[w]:.2f}x" if k in d else "-"  # noqa: E731
            print(
                "\n| way | real tokens/s | s / epoch | vs seed | vs dynamic | vs seed (cpu s) | vs dynamic (cpu s) "
                "| steps | loss (mean of 5 slices of the epoch) |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
            for w in ways:
                row = {
                    "way": w,
                    "tokens_per_s": real / med[w],
                    "seconds": med[w],
                    "cpu_seconds": cpu[w],
                    "vs_seed": ref(med, "seed", w),
                    "vs_dynamic": ref(med, "dynamic", w),
                    "vs_seed_cpu": ref(cpu, "seed", w),
                    "vs_dynamic_cpu": ref(cpu, "dynamic", w),
                    "steps": runs[w][0]["steps"],
                    "loss_points": loss_points(runs[w][0]["losses"]),
                }
                table.append(row)
                print(
                    f"| {w} | {row['tokens_per_s']:.0f} | {row['seconds']:.1f} | {row['vs_seed']} | "
                    f"{row['vs_dynamic']} | {row['vs_seed_cpu']} | {row['vs_dynamic_cpu']} | "
                    f"{row['steps']} | {' → '.join(f'{x:.2f}' for x in row['loss_points'])} |"
                )
            all_results[which] = {
                "examples": a.examples,
                "reps": reps,
                "real_tokens": real,
                "table": table,
                "runs": runs,
            }
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "results": all_results}, indent=1))


if __name__ == "__main__":
    main()
