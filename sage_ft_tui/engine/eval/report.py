"""`evaluate_run`: base vs tuned on held-out data; writes RUN/eval/report.json.

Stages reported through `progress(stage, info)` — the CLI turns them into a progress bar
on a terminal or JSON-line records otherwise, and the TUI reads those records."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.data.images import placeholder_count
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.eval import generate as gen_mod
from sage_ft_tui.engine.eval.data import load_examples
from sage_ft_tui.engine.eval.loss import answer_loss
from sage_ft_tui.engine.eval.metrics import per_example_rouge_l, score
from sage_ft_tui.engine.eval.model import load_pair
from sage_ft_tui.engine.fsutil import atomic_write_json, read_json
from sage_ft_tui.engine.paths import resolve_run
from sage_ft_tui.engine.runs.layout import RunLayout

Progress = Callable[[str, dict], None]
SIDES = ("base", "tuned")
DEFAULT_MAX_PROMPTS = 50
REPORT_VERSION = 1


def _user_text(prompt: Optional[list[dict]]) -> str:
    users = [m for m in prompt or [] if m.get("role") == "user"]
    return str(users[-1].get("content") or "") if users else ""


def evaluate_run(
    run: Path | str,
    *,
    data: Optional[str] = None,
    max_prompts: int = DEFAULT_MAX_PROMPTS,
    batch_size: int = 8,
    max_new_tokens: Optional[int] = None,
    sample: bool = True,
    seed: int = 0,
    judge=None,
    device: str = "auto",
    checkpoint=None,
    progress: Optional[Progress] = None,
) -> dict:
    """Loss/perplexity on the answers, generation scored against references (greedy, and
    seeded sampling when `sample`), optional judge; returns and writes the report."""
    say = progress or (lambda stage, info: None)
    if max_prompts < 0:
        raise SageError(f"--max-prompts {max_prompts} is negative", hint="give 0 (loss only) or more")
    if batch_size < 1:
        raise SageError(f"--batch-size {batch_size} must be at least 1", hint="e.g. --batch-size 8")
    t0 = time.time()
    run = resolve_run(run)
    lay = RunLayout(run)
    cfg = RunConfig.load(lay.config)
    examples, source = load_examples(run, cfg, data)
    if not examples:
        raise SageError(f"no examples to evaluate in {source}", kind="data", hint="give a file with rows via --data")
    prompted = [e for e in examples if e.prompt is not None][:max_prompts]
    new_tokens = max_new_tokens or gen_mod.DEFAULT_MAX_NEW_TOKENS
    modes = ["greedy"] + (["sampled"] if sample else [])
    total = 2 * len(examples) + 2 * len(modes) * len(prompted)
    done = {"n": 0}

    def tick(n: int) -> None:
        done["n"] += n
        say("progress", {"done": done["n"], "total": total})

    say("load", {"run": run.name, "examples": len(examples), "prompts": len(prompted), "total": total})

    pair = load_pair(run, cfg, device=device, checkpoint=checkpoint)
    report: dict = {
        "v": REPORT_VERSION,
        "run": run.name,
        "run_dir": str(run),
        "task": cfg.task,
        "base_model": cfg.model.name,
        "adapter": str(pair.adapter),
        "adapter_source": pair.adapter_label,
        "data": source,
        "device": pair.device,
        "examples": len(examples),
        "prompts": len(prompted),
        "batch_size": batch_size,
        "max_new_tokens": new_tokens,
        "seed": seed,
        "sampling": dict(gen_mod.SAMPLING) if sample else None,
    }
    say("loss", {})
    records = [e.record for e in examples]
    report["loss"] = {w: _loss(pair, records, w, batch_size, cfg.training.max_length, tick) for w in SIDES}
    refs = [e.reference or "" for e in prompted]
    gens: dict = {}
    report["generation"] = {}
    for mode in modes:
        say("generate", {"mode": mode})
        gens[mode] = {}
        for w in SIDES:
            t = time.perf_counter()
            gens[mode][w] = gen_mod.generate(
                pair,
                [e.prompt or [] for e in prompted],
                w,
                batch_size=batch_size,
                max_new_tokens=new_tokens,
                sample=mode == "sampled",
                seed=seed,
                progress=tick,
                images=[prompt_images(e) for e in prompted],
            )
            dt = time.perf_counter() - t
            m = score(gens[mode][w], refs) if prompted else {}
            m["prompts_per_s"] = round(len(prompted) / dt, 3) if dt > 0 and prompted else None
            report["generation"].setdefault(mode, {})[w] = m
    if judge is not None and prompted:
        say("judge", {"model": judge.endpoint.model})
        report["judge"] = {"url": judge.base_url, "model": judge.endpoint.model}
        for w in SIDES:
            scores = [judge.score(_user_text(e.prompt), r, a) for e, r, a in zip(prompted, refs, gens["greedy"][w])]
            got = [s for s in scores if s is not None]
            report["judge"][w] = {"mean": round(sum(got) / len(got), 3) if got else None, "scored": len(got)}
            gens.setdefault("judge", {})[w] = scores
    rl = {w: per_example_rouge_l(gens["greedy"][w], refs) for w in SIDES} if prompted else {}
    report["samples"] = [
        {
            "prompt": _user_text(e.prompt),
            "reference": r,
            **{w: gens["greedy"][w][i] for w in SIDES},
            **({f"{w}_sampled": gens["sampled"][w][i] for w in SIDES} if "sampled" in gens else {}),
            **{f"{w}_rouge_l": rl[w][i] for w in SIDES},
            **({f"{w}_judge": gens["judge"][w][i] for w in SIDES} if "judge" in gens else {}),
        }
        for i, (e, r) in enumerate(zip(prompted, refs))
    ]
    report["seconds"] = round(time.time() - t0, 3)
    report["created"] = time.time()
    lay.eval_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(lay.eval_report, report)
    say("done", {"report": str(lay.eval_report)})
    return report


def prompt_images(e) -> list[str]:
    """The images an example's prompt shows (its first N, N = the prompt's placeholders)."""
    return list(e.record.get("images") or [])[: placeholder_count(e.prompt or [])]


def _loss(pair, records, which, batch_size, max_length, tick) -> dict:
    return answer_loss(pair, records, which, batch_size=batch_size, max_length=max_length, progress=tick)


def read_report(run: Path | str) -> Optional[dict]:
    """The run's last eval report, or None (no torch: the TUI and `compare` read it)."""
    rep = read_json(RunLayout(run).eval_report, None)
    return rep if isinstance(rep, dict) else None
