"""The TrainingArguments every trainer (SFT, DPO, KTO, ORPO, GRPO, ...) shares; each method's
trainer factory adds its own (engine/methods)."""

from __future__ import annotations

from pathlib import Path

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.train.distributed import trainer_args
from sage_ft_tui.engine.train.model import on_cuda, precision_flags


def checkpointing_arg(cls, on: bool) -> dict:
    # transformers 5.x renamed gradient_checkpointing to activation_checkpointing.
    name = (
        "activation_checkpointing"
        if "activation_checkpointing" in cls.__dataclass_fields__
        else "gradient_checkpointing"
    )
    return {name: on}


def base_args(cfg: RunConfig, out_dir: Path, has_eval: bool, cls) -> dict:
    """The TrainingArguments every trainer (SFT, DPO, KTO, ORPO, GRPO) shares."""
    t = cfg.training
    return dict(
        output_dir=str(out_dir),
        num_train_epochs=t.epochs if t.epochs > 0 else 1,
        max_steps=t.max_steps,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,
        per_device_train_batch_size=t.micro_batch_size,
        per_device_eval_batch_size=t.micro_batch_size,
        gradient_accumulation_steps=t.grad_accumulation,
        optim=t.optimizer,
        **checkpointing_arg(cls, t.gradient_checkpointing),
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        seed=t.seed,
        data_seed=t.seed,
        logging_steps=t.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=(t.eval_steps or t.save_steps) if has_eval else None,
        # early stopping (transformers' EarlyStoppingCallback) reads the best eval loss from the state
        **({"metric_for_best_model": "eval_loss", "greater_is_better": False} if t.guard.early_stop_patience else {}),
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        report_to=list(t.report_to) or "none",
        disable_tqdm=True,
        dataloader_pin_memory=on_cuda(),
        **({"dataset_num_proc": None} if "dataset_num_proc" in cls.__dataclass_fields__ else {}),
        **precision_flags(cfg),
        **trainer_args(cfg),
    )
