"""The demo: the tiny model on bundled sample data, sized to finish in well under a
minute on a 2-core CPU while still showing a falling loss, an eval and checkpoints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.data.samples import sample_path
from sage_ft_tui.engine.models.tiny import TINY_NAME

# How many steps the demo trains when not told (the wizard's "d" included); tests and slow
# machines shorten it.
DEMO_STEPS_ENV = "SAGE_FT_DEMO_STEPS"
# Facts about this tool that the tiny base has never seen (it is pre-trained on
# samples/pretrain/ only): after the demo the tuned model knows them, the base does not.
DEMO_DATA = "demo_sage.jsonl"
DEMO_QUESTION = "What is sage-ft-tui?"
DEMO_PHRASE = "fine-tunes language models"


def demo_config(max_steps: Optional[int] = None, name: Optional[str] = None) -> RunConfig:
    return RunConfig.from_dict(
        {
            "name": name,
            "task": "instruction",
            "preset": "cpu",
            "model": {"name": TINY_NAME, "dtype": "float32"},
            "data": {"paths": [str(sample_path(DEMO_DATA))], "validation_split": 0.1},
            "lora": {"r": 16, "alpha": 32, "dropout": 0.0},
            "training": {
                "epochs": 3,
                "max_steps": max_steps or int(os.environ.get(DEMO_STEPS_ENV) or 60),
                "learning_rate": 3e-3,
                "lr_scheduler": "cosine",
                "warmup_ratio": 0.05,
                "micro_batch_size": 8,
                "grad_accumulation": 1,
                "max_length": 256,
                "packing": False,
                "logging_steps": 2,
                "eval_steps": 20,
                "save_steps": 20,
                "save_total_limit": 3,
            },
        },
        source="demo",
    )


def demo_answers(run: Path, question: str = DEMO_QUESTION) -> dict:
    """The demo's proof: the question the demo data taught, base vs tuned (greedy).
    Imports torch: call it from the CLI, not the TUI."""
    from sage_ft_tui.engine.eval.ask import ask_both

    a = ask_both(run, question, max_new_tokens=40)
    return {**a, "learned": DEMO_PHRASE in a["tuned"]}
