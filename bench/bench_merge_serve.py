"""Figures for merge / serve / chat (prints them; never pass/fail).

    python bench/bench_merge_serve.py [--big-layers 14] [--rounds 20] [--skip-big]

1. merge time and peak memory (a fresh `sage-ft-tui merge RUN --json` process each, so
   the peak RSS is the merge's own): the tiny demo model, and a ~100M-parameter random
   llama (hidden 768, 14 layers) with an r=16 adapter with non-zero B.
2. server start-up: `transformers serve` on the merged tiny model, until /health and
   /v1/models answer (what `sage-ft-tui serve` waits for), and the CLI's wall time.
3. first-token latency through our chat path (ChatSession.stream) vs the same openai
   client called directly with the same request; medians over alternating rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from sage_ft_tui.engine.fsutil import MiB  # noqa: E402 (this checkout, on the path above)


def make_run(home: Path, name: str, model: str, r: int = 16) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.models.resolve import model_dir
    from sage_ft_tui.engine.runs.create import create_run

    run = create_run(
        RunConfig.from_dict({"name": name, "task": "chat", "model": {"name": model}, "data": {"paths": ["x"]}}),
        home=home,
        prepare=False,
    )
    base = model_dir(model, metadata_only=False)
    pm = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(base)), LoraConfig(r=r, lora_alpha=2 * r, target_modules="all-linear")
    )
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    pm.save_pretrained(str(run / "adapter"))
    return run


def merge_figures(run: Path, env: dict) -> dict:
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "sage_ft_tui", "merge", str(run), "--json", "--force"],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    rep = json.loads(p.stdout.strip().splitlines()[-1])["report"]
    t = rep.get("timings_s", {})
    work = sum(v for k, v in t.items() if k not in ("start", "resolve", "import"))
    return {
        "params": rep["params"],
        "dtype": rep["dtype"],
        "merge_s": round(work, 2),
        "import_s": t.get("import", 0.0),
        "stages": t,
        "cli_wall_s": round(wall, 2),
        "peak_rss_mib": round(rep["peak_rss_bytes"] / MiB, 1),
        "weights_mib": round(rep["bytes"] / MiB, 1),
        "self_check_rel": rep["self_check"]["max_rel_diff"],
        "passed": rep["self_check"]["passed"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-layers", type=int, default=14)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--skip-big", action="store_true")
    a = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-merge-serve-"))
    os.environ["SAGE_FT_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    env = {**os.environ}
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; runs in {home}")

    # 1. merge
    tiny = make_run(home, "bench-tiny", "tiny-demo")
    rows = [("tiny-demo", merge_figures(tiny, env))]
    if not a.skip_big:
        from sage_ft_tui.engine.models.tiny import build_tiny_model

        big = home / "random-llama-100m"
        build_tiny_model(
            big,
            seed=1,
            hidden_size=768,
            intermediate_size=2048,
            num_hidden_layers=a.big_layers,
            num_attention_heads=12,
            num_key_value_heads=12,
        )
        rows.append(("random llama", merge_figures(make_run(home, "bench-big", str(big)), env)))
    print("\nmerge (fresh process each; merge_s = load+adapter+merge+save+self-check+install, without imports)")
    print(
        f"  {'model':14} {'params':>12} {'dtype':>8} {'merge_s':>8} {'import_s':>8} {'cli_wall_s':>10} {'peak_rss':>10} {'weights':>9}  self-check"
    )
    for name, r in rows:
        print(
            f"  {name:14} {r['params']:>12,} {r['dtype']:>8} {r['merge_s']:>8.2f} {r['import_s']:>8.2f} {r['cli_wall_s']:>10.2f} "
            f"{r['peak_rss_mib']:>7.1f}MiB {r['weights_mib']:>6.1f}MiB  {'passed' if r['passed'] else 'FAILED'} ({r['self_check_rel']:.1e})"
        )
        print(
            "  " + " " * 14 + " stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in r["stages"].items() if k != "start")
        )

    # 2. server start-up
    from sage_ft_tui.engine.deploy import serve as sv

    starts, walls = [], []
    for i in range(a.starts):
        t0 = time.perf_counter()
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "sage_ft_tui",
                "serve",
                str(tiny),
                "--port",
                "0",
                "--backend",
                "transformers",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        walls.append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise SystemExit(p.stderr)
        info = json.loads(p.stdout.strip().splitlines()[-1])
        starts.append(info["startup_s"])
        if i < a.starts - 1:
            sv.stop(tiny)
    print(f"\nserver start-up (transformers serve, tiny merged model, {a.starts} starts)")
    print(
        f"  spawn → /health + /v1/models ready: median {statistics.median(starts):.2f}s "
        f"(min {min(starts):.2f}, max {max(starts):.2f}); `sage-ft-tui serve` wall: median {statistics.median(walls):.2f}s"
    )

    # 3. first-token latency: our chat path vs the client directly
    from sage_ft_tui.engine.deploy.chat import ChatSession, ChatSettings, endpoint_for_run

    ep = endpoint_for_run(tiny)
    session = ChatSession(ep, ChatSettings(temperature=0, max_tokens=16))
    client = session.client
    question = "Tell me something about LoRA."

    def direct() -> float:
        t0 = time.perf_counter()
        s = client.chat.completions.create(
            model=ep.model, messages=[{"role": "user", "content": question}], temperature=0, max_tokens=16, stream=True
        )
        first = None
        try:
            for ch in s:
                if ch.choices and ch.choices[0].delta and ch.choices[0].delta.content:
                    first = first or (time.perf_counter() - t0)
        finally:
            s.close()
        return first

    def ours() -> float:
        session.reset()
        t0 = time.perf_counter()
        first = None
        for _ in session.stream(question):
            first = first or (time.perf_counter() - t0)
        return first

    for _ in range(3):  # warm-up (first request compiles/caches on the server)
        direct(), ours()
    d, o = [], []
    for i in range(a.rounds):
        if i % 2:
            d.append(direct())
            o.append(ours())
        else:
            o.append(ours())
            d.append(direct())
    md, mo = statistics.median(d) * 1000, statistics.median(o) * 1000
    print(f"\nfirst-token latency, {a.rounds} alternating rounds, same openai client, same request")
    pairs = [b - a_ for a_, b in zip(d, o)]
    print(
        f"  direct client: median {md:.1f} ms   our chat path: median {mo:.1f} ms   overhead {100 * (mo - md) / md:+.1f}% (target < 5%)"
    )
    print(
        f"  paired difference (ours - direct): median {statistics.median(pairs) * 1000:+.1f} ms; "
        f"spread of direct: {min(d) * 1000:.0f}-{max(d) * 1000:.0f} ms"
    )
    sv.stop(tiny)

    # 4. our layer alone, without server noise: the same chunks through ChatSession vs a bare loop
    from types import SimpleNamespace as NS

    chunks = [NS(choices=[NS(delta=NS(content=f"t{i} "), finish_reason=None)]) for i in range(16)]
    chunks.append(NS(choices=[NS(delta=NS(content=None), finish_reason="length")]))

    class FakeStream(list):
        def close(self):
            pass

    fake = NS(chat=NS(completions=NS(create=lambda **kw: FakeStream(chunks))))
    fs = ChatSession(ep, ChatSettings(temperature=0, max_tokens=16), client=fake)
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        for ch in fake.chat.completions.create(model="m", messages=[], stream=True):
            if ch.choices and ch.choices[0].delta.content:
                pass
    bare = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(n):
        fs.reset()
        for _ in fs.stream(question):
            pass
    layer = (time.perf_counter() - t0) / n
    print(
        f"  our layer alone (17 chunks, no network): {layer * 1e6:.0f} µs per reply vs {bare * 1e6:.0f} µs bare "
        f"→ {(layer - bare) * 1e6:.0f} µs added, {100 * (layer - bare) / (md / 1000):.3f}% of the direct first-token time"
    )


if __name__ == "__main__":
    main()
