"""Where a CPU training step's memory goes: prints figures, never fails.

    python bench/profile_memory.py --model 20m --steps 3
    python bench/profile_memory.py --model 20m --steps 3 --set training.precision=bf16
    SAGE_FT_FUSED_LORA=0 python bench/profile_memory.py --model 20m --steps 3

The bench workload (bench/bench_vs_llamafactory.py: alpaca rows, max length 512,
micro-batch 8, LoRA r 8 all-linear) through the real `run_training`, in this process. For
each step it records, with autograd's saved-tensor hooks, the bytes the forward keeps for
the backward (each storage counted once; by dtype and shape), and the
process's resident set: before the model loads, after set-up, and the peak (ru_maxrss).
Then the estimate (engine/hardware/estimate.py) for the same run beside the measured peak.
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_llamafactory import WORKLOAD, build_models, cache_dir, our_config, write_rows  # noqa: E402

from sage_ft_tui.engine.fsutil import MiB  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / MiB


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="20m", choices=("tiny", "20m"))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--set", action="append", default=[], help="extra config override, dotted.key=value")
    args = ap.parse_args()
    import torch
    import transformers
    import yaml

    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.data.prepare import prepare_run_data
    from sage_ft_tui.engine.data.trainer_data import tokenized_datasets
    from sage_ft_tui.engine.train.trainer import run_training

    steps: list[dict] = []
    T = transformers.Trainer
    step = T.training_step

    def training_step(self, model, inputs, *a, **k):
        seen: dict[int, int] = {}
        by: collections.Counter = collections.Counter()

        def pack(t):
            try:
                key, size = t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()
            except (RuntimeError, NotImplementedError):
                return t
            if key not in seen and size:
                seen[key] = size
                by[(str(t.dtype).removeprefix("torch."), "×".join(map(str, t.shape[-2:])))] += size
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = step(self, model, inputs, *a, **k)
        steps.append(
            {"tokens": int(inputs["input_ids"].numel()), "saved": sum(seen.values()), "by": by, "peak": peak_mib()}
        )
        return out

    T.training_step = training_step
    with tempfile.TemporaryDirectory(prefix="profile_memory.") as tmp:
        root = Path(tmp)
        mdir = build_models(cache_dir() / "models")[args.model]
        data = write_rows(root / "rows.jsonl", WORKLOAD["rows"], 0, mdir)
        raw = our_config(mdir, data, args.steps)
        for kv in args.set:
            key, v = kv.split("=", 1)
            d = raw
            *path, last = key.split(".")
            for p in path:
                d = d.setdefault(p, {})
            d[last] = yaml.safe_load(v)
        cfg = RunConfig.from_dict(raw, source="profile")
        run = root / "run"
        prepare_run_data(cfg, run)
        train_ds, _ = tokenized_datasets(cfg, run, str(mdir))
        before = rss_mib()
        run_training(cfg, run, train_ds, None)
    print(f"resident before the model: {before:,.0f} MiB; peak: {peak_mib():,.0f} MiB")
    for i, s in enumerate(steps, 1):
        print(
            f"step {i}: {s['tokens']:,} tokens, saved for backward {s['saved'] / MiB:,.0f} MiB, peak {s['peak']:,.0f}"
        )
    last = steps[-1]
    print(f"\nsaved for backward in the last step, by dtype and the tensor's last two dims (top {args.top}):")
    for (dtype, shape), n in last["by"].most_common(args.top):
        print(f"  {n / MiB:8.1f} MiB  {dtype:9s} {shape}")
    from sage_ft_tui.engine.hardware.estimate import estimate_for_config

    est = estimate_for_config(cfg)
    for part, n, detail in est.breakdown():
        print(f"  estimate {part}: {n / MiB:,.0f} MiB ({detail})")
    total = est.total / MiB
    print(f"estimate {total:,.0f} MiB vs measured peak {peak_mib():,.0f} MiB ({total / peak_mib():.2f}x)")


if __name__ == "__main__":
    main()
