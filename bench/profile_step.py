"""Where one training step's time goes: cProfile (or torch.profiler) over a short real run (ours).

    python bench/profile_step.py --model tiny --steps 20
    python bench/profile_step.py --model 20m --steps 6 --sort tottime
    OMP_NUM_THREADS=1 python bench/profile_step.py --model 20m --steps 4 --torch   # aten ops, with shapes

Same workload as bench/bench_vs_llamafactory.py (alpaca rows, max length 512, micro-batch 8,
LoRA r 8 on all linear layers, our CPU defaults); prints the per-step wall time without and with
the profiler and the functions that take the most cumulative time. Prints, never fails.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_llamafactory import WORKLOAD, build_models, our_config, write_rows  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", choices=("tiny", "20m"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sort", default="cumulative")
    ap.add_argument("--top", type=int, default=45)
    ap.add_argument("--set", action="append", default=[], help="extra config override, dotted.key=value")
    ap.add_argument("--torch", action="store_true", help="torch.profiler (ops with shapes) instead of cProfile")
    args = ap.parse_args()
    import yaml

    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.data.prepare import prepare_run_data
    from sage_ft_tui.engine.data.trainer_data import tokenized_datasets
    from sage_ft_tui.engine.train.trainer import run_training

    with tempfile.TemporaryDirectory(prefix="profile_step.") as tmp:
        root = Path(tmp)
        mdir = build_models(root / "models")[args.model]
        data = write_rows(root / "rows.jsonl", WORKLOAD["rows"])
        raw = our_config(mdir, data, args.steps)
        for kv in args.set:
            k, v = kv.split("=", 1)
            d = raw
            *path, last = k.split(".")
            for p in path:
                d = d.setdefault(p, {})
            d[last] = yaml.safe_load(v)
        cfg = RunConfig.from_dict(raw, source="profile")
        run = root / "run"
        prepare_run_data(cfg, run)
        train_ds, _ = tokenized_datasets(cfg, run, str(mdir))
        if args.torch:
            from torch.profiler import ProfilerActivity, profile

            t0 = time.perf_counter()
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as tprof:
                run_training(cfg, run, train_ds, None)
            dt = time.perf_counter() - t0
        else:
            prof = cProfile.Profile()
            t0 = time.perf_counter()
            prof.enable()
            run_training(cfg, run, train_ds, None)
            prof.disable()
            dt = time.perf_counter() - t0
    if args.torch:
        avg = tprof.key_averages(group_by_input_shape=True)
        print(avg.table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=40))
        print(tprof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
    else:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats(args.sort).print_stats(args.top)
        print(s.getvalue())
    print(f"{args.steps} steps in {dt:.2f} s (incl. set-up) = {dt / args.steps:.3f} s/step under the profiler")


if __name__ == "__main__":
    main()
