"""Data preparation cost: prints figures, never pass/fail.

    python bench/bench_data.py                       # 10k and 100k alpaca rows
    python bench/bench_data.py --sizes 10000,100000,1000000
    python bench/bench_data.py --sizes 100000 --validate-only   # the inspector + prepare step alone

For each size, in a fresh child process (so no cache from a previous size helps):
  validate  prepare_run_data: read the file, detect the format, check and normalise every
            row, split, token statistics on a sample, write data/train.jsonl + report
  tokenize  tokenized_datasets: batched datasets.map over all rows (a worker per core above
            20k rows), drop rows with nothing to train, save to <run>/data/tokenized/<key>
  reload    tokenized_datasets again: the cache a resume or re-run uses
"rows per CPU s" counts the child and its map workers, start-up (imports) included: it is
robust to other load on the machine, where the wall-clock rows/s is not.
Rows are alpaca-shaped (instruction, optional input, output), deterministic, with lengths
like the Alpaca set (a few to a few hundred words). Linear cost = flat rows/s across sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORDS = (
    "the model data train token answer question list value step result check first second explain "
    "write code function return small large number because when which where about under over into "
    "python file line error fix loss batch length simple example people time year way day"
).split()


def write_rows(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(n):
            ins = " ".join(rng.choices(WORDS, k=rng.randint(4, 25))).capitalize() + "?"
            inp = " ".join(rng.choices(WORDS, k=rng.randint(5, 40))) if rng.random() < 0.4 else ""
            out = " ".join(rng.choices(WORDS, k=int(min(400, rng.lognormvariate(3.8, 0.8))) + 1)) + "."
            fh.write(json.dumps({"instruction": ins, "input": inp, "output": out}) + "\n")


def child(path: str, n: int, validate_only: bool = False) -> None:
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.data.prepare import prepare_run_data
    from sage_ft_tui.engine.data.trainer_data import tokenized_datasets
    from sage_ft_tui.engine.models.resolve import model_dir

    cfg = RunConfig.from_dict(
        {"model": {"name": "tiny-demo"}, "data": {"paths": [path]}, "training": {"max_length": 1024}}, source="bench"
    )
    mdir = str(model_dir("tiny-demo", metadata_only=False))
    with tempfile.TemporaryDirectory(prefix="bench_data.") as tmp:
        run = Path(tmp) / "run"
        t, c = time.perf_counter(), time.process_time()
        report = prepare_run_data(cfg, run)
        validate, validate_cpu = time.perf_counter() - t, time.process_time() - c
        if validate_only:
            print("RESULT " + json.dumps({"rows": n, "validate_s": validate, "validate_cpu_s": validate_cpu}))
            return
        t = time.perf_counter()
        train, _ = tokenized_datasets(cfg, run, mdir)
        tokenize = time.perf_counter() - t
        t = time.perf_counter()
        tokenized_datasets(cfg, run, mdir)
        reload = time.perf_counter() - t
    print(
        "RESULT "
        + json.dumps(
            {
                "rows": n,
                "usable": report["counts"]["usable"],
                "tokenized": len(train),
                "validate_s": validate,
                "tokenize_s": tokenize,
                "reload_s": reload,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--validate-only", action="store_true", help="time prepare_run_data alone (wall and CPU s)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.validate_only)
        return
    import platform

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    if args.validate_only:
        return validate_only(args.sizes)
    print(
        "\n| rows | validate rows/s | tokenize rows/s | both rows/s | both s | vs smallest (rows/s) | "
        "rows per CPU s (whole child) | vs smallest (CPU) | reload s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    import resource

    base_cpu = None
    base = None
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory(prefix="bench_rows.") as tmp:
        for n in [int(x) for x in args.sizes.split(",")]:
            path = Path(tmp) / f"alpaca_{n}.jsonl"
            write_rows(path, n)
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            p = subprocess.run(
                [sys.executable, __file__, "--child", str(path), str(n)],
                capture_output=True,
                text=True,
                env=env,
                cwd=REPO,
            )
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
            res = next((json.loads(x[7:]) for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
            if res is None:
                raise SystemExit(f"size {n} failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
            both = res["validate_s"] + res["tokenize_s"]
            rate = n / both
            base = base or rate
            base_cpu = base_cpu or n / cpu_s
            print(
                f"| {n:,} | {n / res['validate_s']:,.0f} | {n / res['tokenize_s']:,.0f} | {rate:,.0f} | {both:.1f} | "
                f"{rate / base:.2f} | {n / cpu_s:,.0f} | {n / cpu_s / base_cpu:.2f} | {res['reload_s']:.2f} |",
                flush=True,
            )
            path.unlink()


def validate_only(sizes: str) -> None:
    """prepare_run_data alone (read, inspect, normalise, duplicates, split, statistics, write)."""
    print("\n| rows | validate s (wall) | validate CPU s | rows per CPU s |")
    print("|---:|---:|---:|---:|")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory(prefix="bench_rows.") as tmp:
        for n in [int(x) for x in sizes.split(",")]:
            path = Path(tmp) / f"alpaca_{n}.jsonl"
            write_rows(path, n)
            p = subprocess.run(
                [sys.executable, __file__, "--validate-only", "--child", str(path), str(n)],
                capture_output=True,
                text=True,
                env=env,
                cwd=REPO,
            )
            res = next((json.loads(x[7:]) for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
            if res is None:
                raise SystemExit(f"size {n} failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
            print(
                f"| {n:,} | {res['validate_s']:.2f} | {res['validate_cpu_s']:.2f} | {n / res['validate_cpu_s']:,.0f} |"
            )


if __name__ == "__main__":
    main()
