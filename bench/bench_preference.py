"""DPO throughput and peak memory, side by side in one run: our preference run (auto
preset, our tokenization, reference log-probs precomputed when cheaper) vs TRL's own
example script settings (trl/scripts/dpo.py, LoRA variant: lr 5e-6, micro-batch 2 ×
accumulation 8, LoRA r 32 / alpha 16, max_length 1024, gradient checkpointing on, TRL's
own tokenization of conversational rows) on the same generated pairs. Prints figures;
never pass/fail. Each side runs in its own process, so its peak memory is its own.

    python bench/bench_preference.py [--model tiny-demo] [--pairs 64] [--steps 8]

Timed: the training loop only (TRL's train_runtime), not model loading or tokenization.
Peak memory: CUDA max_memory_allocated on a GPU, else the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sage_ft_tui.engine.fsutil import MiB  # noqa: E402 (this checkout, on the path above)

TOPICS = ["rivers", "planets", "bread", "chess", "volcanoes", "owls", "trains", "tea", "glaciers", "bees"]


def make_pairs(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            t = rng.choice(TOPICS)
            good = " ".join(f"Fact {k} about {t} is clear and correct." for k in range(rng.randint(4, 30)))
            bad = " ".join(f"Maybe {t} are something, I am not sure {k}." for k in range(rng.randint(2, 20)))
            row = {
                "prompt": [{"role": "user", "content": f"Tell me about {t} (question {i})."}],
                "chosen": [{"role": "assistant", "content": good}],
                "rejected": [{"role": "assistant", "content": bad}],
            }
            f.write(json.dumps(row) + "\n")


def _peak() -> int:
    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_ours(data: Path, model: str, steps: int, home: Path) -> dict:
    os.environ["SAGE_FT_HOME"] = str(home)
    from sage_ft_tui.engine.config.build import apply_preset
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.data.trainer_data import tokenized_datasets
    from sage_ft_tui.engine.models.resolve import model_dir
    from sage_ft_tui.engine.runs.start import start_run
    from sage_ft_tui.engine.train import trainer as tr

    cfg = RunConfig.from_dict({"task": "preference", "model": {"name": model}, "data": {"paths": [str(data)]}})
    cfg = apply_preset(cfg, "auto")
    raw = cfg.model_dump(mode="json")
    raw["training"].update(max_steps=steps, logging_steps=steps, save_steps=10**6)
    cfg = RunConfig.from_dict(raw)
    run = start_run(cfg, launch=False).run
    mdir = str(model_dir(cfg.model.name, metadata_only=False))
    train_ds, _ = tokenized_datasets(cfg, run, mdir)
    seen = {}
    real_build = tr.build_trainer

    def build(*a, **kw):  # keep the trainer to read its runtime
        seen["trainer"] = real_build(*a, **kw)
        return seen["trainer"]

    tr.build_trainer = build
    tr.run_training(cfg, run, train_ds, None)
    hist = [h for h in seen["trainer"].state.log_history if "train_runtime" in h][-1]
    t = cfg.training
    return {
        "settings": f"micro-batch {t.micro_batch_size} × {t.grad_accumulation}, max_length {t.max_length}, "
        f"LoRA r {cfg.lora.r}, checkpointing {'on' if t.gradient_checkpointing else 'off'}, "
        f"precompute_ref {seen['trainer'].args.precompute_ref_log_probs}",
        "runtime": hist["train_runtime"],
        "steps": steps,
        "samples": steps * t.micro_batch_size * t.grad_accumulation,
        "peak": _peak(),
    }


def child_trl(data: Path, model: str, steps: int, home: Path) -> dict:
    import datasets
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from sage_ft_tui.engine.models.resolve import model_dir

    mdir = str(model_dir(model, metadata_only=False))
    tok = AutoTokenizer.from_pretrained(mdir)
    tok.pad_token = tok.pad_token or tok.eos_token
    ds = datasets.load_dataset("json", data_files=str(data), split="train")
    args = DPOConfig(
        output_dir=str(home / "trl-out"),
        learning_rate=5e-6,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=8,
        max_steps=steps,
        logging_steps=steps,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        **({} if __import__("torch").cuda.is_available() else {"bf16": False}),
    )
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(mdir),
        args=args,
        train_dataset=ds,
        processing_class=tok,
        peft_config=LoraConfig(r=32, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    out = trainer.train()
    return {
        "settings": "micro-batch 2 × 8, max_length 1024, LoRA r 32, checkpointing on, precompute_ref False",
        "runtime": out.metrics["train_runtime"],
        "steps": steps,
        "samples": steps * 16,
        "peak": _peak(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="tiny-demo")
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--child", choices=("ours", "trl"))
    ap.add_argument("--data")
    ap.add_argument("--home")
    a = ap.parse_args()
    if a.child:
        fn = child_ours if a.child == "ours" else child_trl
        print("RESULT " + json.dumps(fn(Path(a.data), a.model, a.steps, Path(a.home))), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        make_pairs(data, a.pairs)
        rows = {}
        for side in ("ours", "trl"):
            home = Path(tmp) / side
            home.mkdir()
            cmd = [sys.executable, __file__, "--child", side, "--data", str(data), "--home", str(home)]
            cmd += ["--model", a.model, "--steps", str(a.steps)]
            p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                print(f"{side}: failed\n{p.stderr[-3000:]}")
                return
            rows[side] = json.loads(line[len("RESULT ") :])
    print(f"DPO on {a.model}, {a.pairs} generated pairs, {a.steps} optimizer steps each")
    print(f"{'':14}{'steps/s':>9}{'samples/s':>11}{'peak MiB':>10}  settings")
    for side, name in (("ours", "sage-ft-tui"), ("trl", "TRL example")):
        r = rows[side]
        print(
            f"{name:14}{r['steps'] / r['runtime']:>9.3f}{r['samples'] / r['runtime']:>11.2f}"
            f"{r['peak'] / MiB:>10.0f}  {r['settings']}"
        )


if __name__ == "__main__":
    main()
