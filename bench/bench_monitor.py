"""Monitoring cost: prints figures, never pass/fail.

    python bench/bench_monitor.py               # both parts
    python bench/bench_monitor.py follow --reps 3 --steps 40
    python bench/bench_monitor.py attach --sizes 100000,1000000

follow   The tiny demo trained by the real detached worker, alternately alone and with a
         follower: `sage-ft-tui attach RUN --no-tui --json` (the engine's follow loop,
         polling events.jsonl every 0.25 s, printing every event) running from launch to
         the end. Throughput = real tokens between the first and the last `log` event over
         the time between them (start-up excluded). On a busy shared machine that ratio
         carries everyone else's noise, so the table also gives the bound that does not:
         each CPU second the follower runs can hold the worker back by at most one second
         (it takes a core the worker might have used), so
         followed/alone >= 1 - (follower CPU seconds per second of the followed run).
attach   Replay time of an events.jsonl of N lines through sage_ft_tui.engine.runs.events:
         read_events (one read, one parse), EventFollower.poll in 64 MiB slices, and
         follow_events to the final status (what attach does before it starts tailing).
"""

from __future__ import annotations

import argparse
import json
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


# ---- follow ---------------------------------------------------------------------------


def _throughput(run: Path) -> float:
    from sage_ft_tui.engine.runs.events import read_events

    logs = [e for e in read_events(run / "events.jsonl").events if e["kind"] == "log" and e.get("tokens")]
    a, b = logs[0], logs[-1]
    return (b["tokens"] - a["tokens"]) / max(b["t"] - a["t"], 1e-9)


def one_run(home: Path, steps: int, follow: bool) -> dict:
    from sage_ft_tui.engine.recipes.demo import demo_config
    from sage_ft_tui.engine.runs.control import launch
    from sage_ft_tui.engine.runs.create import create_run
    from sage_ft_tui.engine.runs.state import wait_for_end

    cfg = demo_config(max_steps=steps)
    raw = cfg.model_dump(mode="json")
    raw["training"].update(logging_steps=1, eval_steps=None, save_steps=10_000)
    raw["data"]["validation_split"] = 0.0
    cfg = type(cfg).from_dict(raw, source="bench")
    run = create_run(cfg, home)
    follower = None
    t0 = time.time()
    pid = launch(run)
    if follow:
        follower = subprocess.Popen(
            [sys.executable, "-m", "sage_ft_tui", "attach", str(run), "--no-tui", "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
            env=os.environ.copy(),
        )
    state = wait_for_end(run, timeout=1200)
    wall = time.time() - t0
    fcpu = wcpu = None
    try:  # the worker is our child (launch() started it): its CPU seconds, start-up included
        _, _, ru = os.wait4(pid, 0)
        wcpu = ru.ru_utime + ru.ru_stime
    except ChildProcessError:
        pass
    fixed = None
    if follower is not None:
        try:
            _, _, ru = os.wait4(follower.pid, 0)
            fcpu = ru.ru_utime + ru.ru_stime
        except ChildProcessError:
            pass
        # Its fixed part: the same attach on the finished run (start-up + replay, then it exits).
        again = subprocess.Popen(
            [sys.executable, "-m", "sage_ft_tui", "attach", str(run), "--no-tui", "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
            env=os.environ.copy(),
        )
        _, _, ru = os.wait4(again.pid, 0)
        fixed = ru.ru_utime + ru.ru_stime
    return {
        "state": state,
        "tokens_per_s": _throughput(run),
        "wall": wall,
        "follower_cpu_s": fcpu,
        "worker_cpu_s": wcpu,
        "follower_fixed_cpu_s": fixed,
    }


def bench_follow(reps: int, steps: int) -> None:
    print(f"\n## follow: tiny demo, {steps} steps a run, {reps} rep(s) of (alone, followed), order alternating")
    res: dict[bool, list[dict]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="bench_monitor.") as tmp:
        home = Path(tmp)
        os.environ["SAGE_FT_HOME"] = str(home)
        for r in range(reps):
            for follow in (False, True) if r % 2 == 0 else (True, False):
                x = one_run(home, steps, follow)
                res[follow].append(x)
                extra = f", worker {x['worker_cpu_s']:.1f} cpu s" if x["worker_cpu_s"] is not None else ""
                extra += f", follower {x['follower_cpu_s']:.2f} cpu s" if x["follower_cpu_s"] is not None else ""
                print(
                    f"  rep {r + 1} {'followed' if follow else 'alone   '} {x['state']}: "
                    f"{x['tokens_per_s']:.0f} tok/s, run {x['wall']:.1f} s{extra}",
                    flush=True,
                )
    alone = statistics.median(x["tokens_per_s"] for x in res[False])
    followed = statistics.median(x["tokens_per_s"] for x in res[True])
    share = statistics.median(x["follower_cpu_s"] / x["wall"] for x in res[True] if x["follower_cpu_s"] is not None)
    steady = statistics.median(
        max(0.0, x["follower_cpu_s"] - x["follower_fixed_cpu_s"]) / x["wall"]
        for x in res[True]
        if x["follower_cpu_s"] is not None
    )
    wshare = statistics.median(x["worker_cpu_s"] / x["wall"] for x in res[True] if x["worker_cpu_s"] is not None)
    print(
        "\n| training | tokens/s (median, wall) | followed / alone (wall) | CPU s per s | bound on followed / alone |"
    )
    print("|---|---:|---:|---:|---:|")
    print(f"| alone | {alone:.0f} | 1.00 | worker {wshare:.2f} | |")
    # Each CPU second the follower runs can delay the worker by at most one second.
    print(
        f"| followed by `attach --no-tui` | {followed:.0f} | {followed / alone:.3f} | follower {share:.4f} "
        f"({steady:.4f} after its start-up and replay) | ≥ {1 - share:.3f} (steady: ≥ {1 - steady:.3f}) |"
    )


# ---- attach ---------------------------------------------------------------------------


def write_events(path: Path, n: int) -> None:
    rng = random.Random(0)
    t0 = time.time() - n
    with open(path, "w") as fh:
        fh.write(json.dumps({"v": 1, "t": t0, "kind": "start", "total_steps": n, "model": "tiny-demo"}) + "\n")
        for i in range(1, n - 1):
            if i % 20 == 0:
                ev = {
                    "v": 1,
                    "t": t0 + i,
                    "kind": "hw",
                    "gpus": [
                        {
                            "index": 0,
                            "name": "GPU",
                            "util": 90.0,
                            "mem_used": 50 << 30,
                            "mem_total": 80 << 30,
                            "temp": 60,
                            "power": 400,
                        }
                    ],
                    "cpu_percent": 20.0,
                    "ram_used": 100 << 30,
                    "ram_total": 500 << 30,
                }
            else:
                ev = {
                    "v": 1,
                    "t": t0 + i,
                    "kind": "log",
                    "step": i,
                    "epoch": round(i / n, 4),
                    "loss": round(2 + rng.random(), 4),
                    "learning_rate": 2e-4,
                    "grad_norm": 0.5,
                    "tokens": i * 4096,
                    "tokens_per_s": 4096.0,
                    "samples_per_s": 4.0,
                    "eta_s": float(n - i),
                }
            fh.write(json.dumps(ev, separators=(",", ":")) + "\n")
        fh.write(json.dumps({"v": 1, "t": t0 + n, "kind": "status", "state": "completed"}) + "\n")


def bench_attach(sizes: list[int]) -> None:
    from sage_ft_tui.engine.runs.events import EventFollower, follow_events, read_events

    print("\n## attach: replay an events.jsonl through sage_ft_tui.engine.runs.events")
    print(
        "\n| lines | MB | read_events s | EventFollower.poll s | follow_events to the end s | lines/s (follow_events) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench_attach.") as tmp:
        for n in sizes:
            p = Path(tmp) / f"events_{n}.jsonl"
            write_events(p, n)
            t = time.perf_counter()
            assert len(read_events(p).events) == n
            t_read = time.perf_counter() - t
            t = time.perf_counter()
            f, got = EventFollower(p), 0
            while True:
                evs = f.poll()
                if not evs:
                    break
                got += len(evs)
            t_poll = time.perf_counter() - t
            t = time.perf_counter()
            got2 = sum(1 for _ in follow_events(p, is_alive=lambda: False, poll_s=0.0))
            t_follow = time.perf_counter() - t
            assert got == got2 == n
            print(
                f"| {n:,} | {p.stat().st_size / 1e6:.0f} | {t_read:.2f} | {t_poll:.2f} | {t_follow:.2f} | "
                f"{n / t_follow:,.0f} |",
                flush=True,
            )
            p.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", nargs="?", choices=("follow", "attach", "all"), default="all")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--sizes", default="100000,1000000")
    args = ap.parse_args()
    import platform

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if args.part in ("attach", "all"):
        bench_attach([int(x) for x in args.sizes.split(",")])
    if args.part in ("follow", "all"):
        bench_follow(args.reps, args.steps)


if __name__ == "__main__":
    main()
