"""Figures for evaluation and the demo base (prints them; never pass/fail).

    python bench/bench_eval.py [--prompts 32] [--batch 8] [--rounds 3] [--run RUN] [--build]

1. eval generation throughput, prompts/s, one prompt at a time vs batched (left-padded),
   greedy, same prompts, rounds interleaved (unbatched, batched, unbatched, ...) so a
   change in machine load hits both; medians. Without --run: the tiny demo model with a
   random r=16 adapter (bench_merge_serve.make_run).
2. with --build: building the tiny-demo base (tokenizer + pre-training) into a temporary
   folder, with torch at 1 thread (as the build does) and at the default thread count,
   interleaved, plus the machine's load average, since the figure depends on it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def prompts(n: int) -> list[list[dict]]:
    from sage_ft_tui.engine.recipes.demo import DEMO_DATA, sample_path

    rows = [json.loads(x) for x in sample_path(DEMO_DATA).read_text().splitlines() if x.strip()]
    return [[{"role": "user", "content": rows[i % len(rows)]["instruction"]}] for i in range(n)]


def eval_figures(run: Path, n: int, batch: int, rounds: int) -> dict:
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.eval.generate import generate
    from sage_ft_tui.engine.eval.model import load_pair
    from sage_ft_tui.engine.runs.layout import RunLayout

    pair = load_pair(run, RunConfig.load(RunLayout(run).config))
    ps = prompts(n)
    generate(pair, ps[:2], "tuned", batch_size=2, max_new_tokens=8)  # warm-up
    times: dict[int, list[float]] = {1: [], batch: []}
    for _ in range(rounds):
        for bs in (1, batch):
            t = time.perf_counter()
            generate(pair, ps, "tuned", batch_size=bs, max_new_tokens=32)
            times[bs].append(time.perf_counter() - t)
    return {bs: round(n / statistics.median(ts), 2) for bs, ts in times.items()}


def build_figures(rounds: int) -> dict:
    """Seconds: the whole build once, then pre-training alone at 1 thread vs the default, interleaved."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from sage_ft_tui.engine.models import tiny

    default = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        tiny.build_tiny_model(Path(d) / "m")
        out = {"whole build (1 thread)": [time.perf_counter() - t]}
        fast = AutoTokenizer.from_pretrained(Path(d) / "m")
        cfg = LlamaConfig.from_pretrained(Path(d) / "m")
    for _ in range(rounds):
        for threads in (1, default):
            torch.manual_seed(0)
            model = LlamaForCausalLM(cfg)
            t = time.perf_counter()
            tiny.pretrain(model, fast, threads=threads)
            out.setdefault(f"pre-training at {threads} thread(s)", []).append(time.perf_counter() - t)
    return {k: round(statistics.median(v), 1) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--run", help="an existing run (default: tiny-demo + a random adapter)")
    ap.add_argument("--build", action="store_true", help="also time the tiny-demo build")
    a = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as home:
        if a.run:
            run = Path(a.run)
        else:
            from bench_merge_serve import make_run

            run = make_run(Path(home), "bench-eval", "tiny-demo")
        f = eval_figures(run, a.prompts, a.batch, a.rounds)
    print(f"eval generation, {a.prompts} prompts, 32 new tokens, median of {a.rounds} interleaved rounds:")
    print(f"  one at a time   {f[1]:8.2f} prompts/s")
    print(f"  batch of {a.batch:<3}    {f[a.batch]:8.2f} prompts/s   ({f[a.batch] / f[1]:.1f}x)")
    if a.build:
        b = build_figures(max(1, a.rounds // 2))
        print("tiny-demo build (tokenizer + pre-training), seconds:")
        for k, v in b.items():
            print(f"  {k:<28} {v:6.1f} s")
        print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
