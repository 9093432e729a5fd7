"""TUI benchmarks: print figures, never pass/fail.

    python bench/bench_tui.py            # all four
    python bench/bench_tui.py attach     # one of: launch, cpu, attach, rss

- launch: process start → first painted frame (headless driver; a fresh interpreter).
- cpu:    CPU used by the app while following a run that logs 10 events/s (30 s window).
- attach: time to attach to a 100,000-line events.jsonl (replayed, folded, drawn).
- rss:    resident memory after following 1,000,000 events, next to 100,000 (bounded?).
Each figure comes from its own child process so they do not disturb each other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from sage_ft_tui.engine.fsutil import MiB  # noqa: E402 (this checkout, on the path above)


def make_run(home: Path, name: str, n_events: int, *, state: str = "completed") -> Path:
    run = home / name
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(f"version: 1\nname: {name}\ntask: instruction\nmodel:\n  name: tiny-demo\n")
    (run / "status.json").write_text(json.dumps({"state": state, "created": time.time(), "host": "bench"}))
    t0 = time.time() - n_events
    with open(run / "events.jsonl", "w") as fh:
        fh.write(json.dumps({"v": 1, "t": t0, "kind": "start", "total_steps": n_events, "model": "tiny-demo"}) + "\n")
        for i in range(1, n_events - 1):
            if i % 20 == 0:
                ev = {
                    "v": 1,
                    "t": t0 + i,
                    "kind": "hw",
                    "gpus": [
                        {
                            "index": 0,
                            "name": "GPU",
                            "util": 80.0 + i % 20,
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
                    "epoch": i / n_events,
                    "loss": 2.0 / (1 + i / 1000),
                    "learning_rate": 2e-4,
                    "grad_norm": 0.5,
                    "tokens": i * 1000,
                    "tokens_per_s": 24000.0,
                    "eta_s": 10.0,
                }
            fh.write(json.dumps(ev, separators=(",", ":")) + "\n")
        if state == "completed":
            fh.write(json.dumps({"v": 1, "t": t0 + n_events, "kind": "status", "state": "completed"}) + "\n")
    return run


CHILD = textwrap.dedent("""
    import asyncio, os, sys, time, resource
    sys.path.insert(0, {repo!r})
    from sage_ft_tui.tui.app import SageApp
    mode, run, expect = sys.argv[1], sys.argv[2], int(sys.argv[3])

    async def main():
        t0 = time.perf_counter()
        app = SageApp(attach=run)
        async with app.run_test(size=(100, 32)) as pilot:
            while not (hasattr(app.screen, "model") and app.screen.model.events >= expect
                       and app.screen.drawn == app.screen.model.version):
                await pilot.pause(0.01)
            t1 = time.perf_counter()
            if mode == "attach":
                print(f"RESULT {{t1 - t0:.3f}}")
            elif mode == "rss":
                import psutil
                print(f"RESULT {{psutil.Process().memory_info().rss / MiB:.1f}}")
    asyncio.run(main())
""")


def child(mode: str, run: Path, expect: int) -> str:
    code = CHILD.format(repo=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", code, mode, str(run), str(expect)],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "SAGE_FT_HOME": str(run.parent)},
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return line.split()[1]
    raise RuntimeError(out.stderr[-2000:])


def bench_launch() -> None:
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from sage_ft_tui.tui.app import SageApp
        class First(SageApp):
            def on_mount(self):
                super().on_mount()
                self.call_after_refresh(self._first)
            def _first(self):
                print(f"FIRST {{time.time():.6f}}", flush=True)
                self.exit()
        First().run(headless=True, size=(100, 32))
    """)
    times = []
    with tempfile.TemporaryDirectory() as home:
        for _ in range(5):
            t0 = time.time()
            out = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "SAGE_FT_HOME": home},
            )
            line = [x for x in out.stdout.split("\n") if "FIRST" in x]
            if not line:
                raise RuntimeError(out.stderr[-2000:])
            times.append(float(line[0].split("FIRST")[1]) - t0)
    times.sort()
    print(f"launch → first frame (Home, headless driver, 5 runs): median {times[2]:.2f} s, best {times[0]:.2f} s")


def bench_cpu(seconds: float = 30.0) -> None:
    import psutil

    with tempfile.TemporaryDirectory() as home:
        run = make_run(Path(home), "cpu-bench", 100, state="running")
        code = textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {str(REPO)!r})
            from sage_ft_tui.tui.app import SageApp
            SageApp(attach={str(run)!r}).run(headless=True, size=(100, 32))
        """)
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env={**os.environ, "SAGE_FT_HOME": home},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        p = psutil.Process(proc.pid)
        step = 100
        try:
            with open(run / "events.jsonl", "a") as fh:
                deadline = time.time() + 5  # let it start
                while time.time() < deadline:
                    time.sleep(0.1)
                c0, w0 = sum(p.cpu_times()[:2]), time.time()
                while time.time() - w0 < seconds:
                    step += 1
                    kind = "hw" if step % 10 == 0 else "log"
                    ev = {
                        "v": 1,
                        "t": time.time(),
                        "kind": kind,
                        "step": step,
                        "loss": 1.0 / step**0.3,
                        "learning_rate": 1e-4,
                        "tokens_per_s": 20000.0,
                        "cpu_percent": 10.0,
                        "ram_used": 1,
                        "ram_total": 2,
                        "gpus": [{"index": 0, "util": 90.0, "mem_used": 1, "mem_total": 2}],
                    }
                    fh.write(json.dumps(ev) + "\n")
                    fh.flush()
                    time.sleep(0.1)
                c1, w1 = sum(p.cpu_times()[:2]), time.time()
        finally:
            proc.terminate()
            proc.wait(10)
    print(
        f"CPU while following 10 events/s for {seconds:.0f} s: {100 * (c1 - c0) / (w1 - w0):.1f}% of one core "
        f"(headless driver, run marked running: hardware polling on)"
    )


def bench_attach() -> None:
    with tempfile.TemporaryDirectory() as home:
        run = make_run(Path(home), "attach-bench", 100_000)
        size = (run / "events.jsonl").stat().st_size
        secs = child("attach", run, 100_000)
    print(f"attach to a 100,000-line events.jsonl ({size / MiB:.1f} MiB): {secs} s to replayed + drawn")


def bench_rss() -> None:
    with tempfile.TemporaryDirectory() as home:
        small = make_run(Path(home), "rss-100k", 100_000)
        big = make_run(Path(home), "rss-1m", 1_000_000)
        size = (big / "events.jsonl").stat().st_size
        r_small = child("rss", small, 100_000)
        r_big = child("rss", big, 1_000_000)
    print(
        f"RSS after following 100,000 events: {r_small} MiB; after 1,000,000 events ({size / MiB:.0f} MiB file): {r_big} MiB"
    )


if __name__ == "__main__":
    which = sys.argv[1:] or ["launch", "cpu", "attach", "rss"]
    for name in which:
        globals()[f"bench_{name}"]()
