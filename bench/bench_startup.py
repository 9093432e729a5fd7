"""Start-up costs: prints figures, never pass/fail.

    python bench/bench_startup.py             # all three
    python bench/bench_startup.py help worker --reps 3

help     `sage-ft-tui --help` wall time (the console script, a fresh process each time), next
         to `python -c pass`; and whether the CLI imported torch/transformers/textual for it.
wizard   the wizard's first frame: runs `bench/bench_tui.py launch` (owned by the TUI work)
         and prints its line.
worker   the tiny demo run by the real detached worker: launch -> first training step, cut
         into its phases from the run folder's own timestamps:
           launch -> `preparing`       interpreter start, worker imports, lock, status
           `preparing` -> data ready   datasets import + tokenizing into the run's cache
                                       (mtime of data/.tokenized_ready)
           data ready -> `start`       torch/transformers/peft/trl imports, model load,
                                       LoRA, SFTTrainer set-up (labels, packing)
           `start` -> first `log`      the first optimizer step (logging_first_step)
         and the same again for a re-run on the same data (`resume`): the tokenized cache
         is reused, so its data phase shrinks to a load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _exe() -> list[str]:
    exe = shutil.which("sage-ft-tui")
    return [exe] if exe else [sys.executable, "-m", "sage_ft_tui"]


def bench_help(reps: int) -> None:
    def timed(cmd) -> float:
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - t

    helps, pys = [], []
    for _ in range(reps):  # interleaved
        helps.append(timed(_exe() + ["--help"]))
        pys.append(timed([sys.executable, "-c", "pass"]))
    probe = (
        "import sys, runpy; sys.argv=['sage-ft-tui','--help']\n"
        "try:\n    runpy.run_module('sage_ft_tui', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(','.join(m for m in ('torch','transformers','textual','datasets') if m in sys.modules), file=sys.stderr)"
    )
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    heavy = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    print(f"\n## `sage-ft-tui --help` ({reps} runs, interleaved with `python -c pass`)\n")
    print("| command | median s | best s |")
    print("|---|---:|---:|")
    print(f"| `sage-ft-tui --help` | {statistics.median(helps):.3f} | {min(helps):.3f} |")
    print(f"| `python -c pass` | {statistics.median(pys):.3f} | {min(pys):.3f} |")
    print(f"\nheavy modules imported by --help: {heavy or 'none (no torch, transformers, textual, datasets)'}")


def bench_wizard() -> None:
    print("\n## wizard first frame (bench/bench_tui.py launch)\n")
    p = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_tui.py"), "launch"], capture_output=True, text=True, cwd=REPO
    )
    lines = [x for x in p.stdout.splitlines() if x.strip()]
    print(lines[-1] if lines else f"bench_tui.py launch printed nothing (rc {p.returncode}): {p.stderr[-500:]}")


def _phases(run: Path, t_launch: float) -> dict:
    from sage_ft_tui.engine.runs.events import read_events

    evs = read_events(run / "events.jsonl").events
    prep = [e["t"] for e in evs if e["kind"] == "status" and e.get("state") == "preparing"][-1]
    start = [e["t"] for e in evs if e["kind"] == "start"][-1]
    first = next(e["t"] for e in evs if e["kind"] == "log" and e["t"] >= start)
    ready = (run / "data" / ".tokenized_ready").stat().st_mtime
    return {
        "imports": prep - t_launch,
        "data": ready - prep,
        "model": start - ready,
        "first_step": first - start,
        "total": first - t_launch,
    }


def bench_worker(reps: int) -> None:
    from sage_ft_tui.engine.models.tiny import ensure_tiny_model
    from sage_ft_tui.engine.recipes.demo import demo_config
    from sage_ft_tui.engine.runs.control import launch
    from sage_ft_tui.engine.runs.create import create_run
    from sage_ft_tui.engine.runs.state import wait_for_end

    ensure_tiny_model()
    rows: dict[str, list[dict]] = {"fresh": [], "re-run (cached data)": []}
    with tempfile.TemporaryDirectory(prefix="bench_startup.") as tmp:
        home = Path(tmp)
        os.environ["SAGE_FT_HOME"] = str(home)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        for _ in range(reps):
            run = create_run(demo_config(max_steps=2), home)
            t = time.time()
            launch(run)
            wait_for_end(run, timeout=600)
            rows["fresh"].append(_phases(run, t))
            # The same run again: `sage-ft-tui resume` of a finished run re-enters with its cache.
            (run / "events.jsonl").unlink()
            for ck in (run / "checkpoints").glob("checkpoint-*"):
                shutil.rmtree(ck)
            t = time.time()
            launch(run, resume=True)
            wait_for_end(run, timeout=600)
            rows["re-run (cached data)"].append(_phases(run, t))
    print(f"\n## worker: launch -> first training step, tiny demo ({reps} runs each, median seconds)\n")
    print(
        "| start | total | interpreter + worker imports | data (tokenize or load cache) | "
        "torch/transformers + model + trainer set-up | first step |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, rs in rows.items():
        m = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(
            f"| {name} | {m['total']:.2f} | {m['imports']:.2f} | {m['data']:.2f} | {m['model']:.2f} | "
            f"{m['first_step']:.2f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parts", nargs="*", default=["help", "wizard", "worker"])
    ap.add_argument("--reps", type=int, default=0, help="default: help 7, worker 2")
    args = ap.parse_args()
    import platform

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    if "help" in args.parts:
        bench_help(args.reps or 7)
    if "wizard" in args.parts:
        bench_wizard()
    if "worker" in args.parts:
        bench_worker(args.reps or 2)


if __name__ == "__main__":
    main()
