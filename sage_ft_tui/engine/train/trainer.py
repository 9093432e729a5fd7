"""A run's training: the model and data to the trainer its task names (engine/methods), the
guardrails' outcome, the adapter saved; and the seed's `LoRATrainer` API.

The data arrives tokenized (engine/data/trainer_data.py), so TRL only builds labels, truncates or packs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from sage_ft_tui.engine.config.legacy import TrainingConfig
from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.registry import task_spec
from sage_ft_tui.engine.runs.events import EventWriter
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.train.args import base_args
from sage_ft_tui.engine.train.callback import StopFlags, event_callback, inject_nan
from sage_ft_tui.engine.train.distributed import fsdp_on_cpu, full_state_dict, sharded
from sage_ft_tui.engine.train.model import compact_lm_head, on_cuda, policy_model, precision_used


def build_trainer(cfg: RunConfig, run_dir: Path, train_ds, eval_ds, *, model, tokenizer, peft_cfg, callbacks):
    """The trainer the run's task names (engine/methods: its descriptor's trainer factory)."""
    out = RunLayout(run_dir).checkpoints
    # what every TRL trainer takes the same way
    kw = dict(
        model=model,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_cfg,
        callbacks=callbacks,
    )
    return task_spec(cfg.task).trainer(cfg, lambda cls: base_args(cfg, out, eval_ds is not None, cls), kw)


@dataclass
class TrainResult:
    state: str  # completed | cancelled | spike (the worker rolls back once, then stops)
    global_step: int
    total_steps: int
    train_loss: Optional[float]
    adapter_dir: Optional[Path]
    guard: Optional[dict] = None  # what a guardrail did: rule (nonfinite, spike, early_stop), step, ...


def nonfinite_error(cfg: RunConfig, guard: dict) -> SageError:
    """The one line for a run stopped at a NaN/inf step."""
    step, ckpt = guard["step"], guard.get("checkpoint")
    kept = f"stopped with {Path(ckpt).name}, the state before it" if ckpt else "stopped before any step was kept"
    t = cfg.training
    precision = (
        "training.precision bf16 or fp32 instead of fp16"
        if t.precision == "fp16"
        else "training.precision fp32"
        if t.precision != "fp32"
        else "a smaller training.max_grad_norm"
    )
    return SageError(
        f"the loss became NaN/inf at step {step}; {kept} (no NaN weights saved)",
        kind="diverged",
        hint=f"lower training.learning_rate (now {t.learning_rate:g}), check the data of step {step} "
        f"(batches of {t.micro_batch_size} × {t.grad_accumulation}), or try {precision}; then `sage-ft-tui resume`"
        + (f" continues from {Path(ckpt).name}" if ckpt else ""),
    )


def save_adapter(trainer, tok_dir: Path, out: Path, chat_template: Optional[str], state_dict=None) -> None:
    """The adapter plus the tokenizer (with the template that trained it) for merge/serve.
    `state_dict`: the gathered full one when the model is sharded (FSDP/ZeRO-3)."""
    import shutil

    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    # DPO from a previous adapter keeps a frozen copy ("ref") beside it: save the trained one only.
    several = len(getattr(trainer.model, "peft_config", None) or {}) > 1
    extra: dict[str, Any] = {"selected_adapters": ["default"]} if several else {}
    if state_dict is not None:
        extra["state_dict"] = state_dict
    trainer.accelerator.unwrap_model(trainer.model).save_pretrained(str(tmp), **extra)
    from sage_ft_tui.engine.models.resolve import TOKENIZER_FILES

    for name in (*TOKENIZER_FILES, "generation_config.json"):
        src = tok_dir / name
        if src.exists():
            shutil.copy2(src, tmp / name)
    if chat_template:  # the template training rendered (a fallback, or the model's with the system fold)
        (tmp / "chat_template.jinja").write_text(chat_template, encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def _mfu_basis(cfg: RunConfig):
    """What MFU is measured against on this machine's GPUs (through the hardware probe, the one
    interface to NVML); None on CPU. A probe failure only costs the MFU figure."""
    from sage_ft_tui.engine.hardware.flops import mfu_basis
    from sage_ft_tui.engine.hardware.probe import snapshot

    try:
        return mfu_basis(cfg, snapshot())
    except Exception as e:  # never stops training
        print(f"[sage-ft-tui] MFU off: {e}", flush=True)
        return None


def run_training(
    cfg: RunConfig,
    run_dir: Path,
    train_ds,
    eval_ds,
    *,
    events: Optional[EventWriter] = None,
    flags: Optional[StopFlags] = None,
    resume_from: Optional[Path] = None,
    status_cb=None,
) -> TrainResult:
    from sage_ft_tui.engine.data.template import chat_tokenizer
    from sage_ft_tui.engine.models.resolve import model_dir

    flags = flags or StopFlags(run_dir)
    mdir = model_dir(cfg.model.name, revision=cfg.model.revision, metadata_only=False)
    ctok = chat_tokenizer(str(mdir))
    from sage_ft_tui.engine.models.vision import is_vision

    vision = is_vision(mdir) and not task_spec(cfg.task).trainer_rows  # SFT tasks: the processor
    if vision:  # the processor: TRL's vision collator renders, tokenizes and reads the images
        from sage_ft_tui.engine.train.vision import load_processor

        tokenizer = load_processor(cfg, mdir)
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(mdir), trust_remote_code=cfg.model.trust_remote_code)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    attention: dict[str, Any] = {}
    model, peft_cfg = policy_model(cfg, mdir, attention)
    extra: dict[str, Any] = {"train_samples": len(train_ds), "eval_samples": len(eval_ds) if eval_ds else 0}
    cb = event_callback(cfg, events, flags, status_cb, extra_start=extra, basis=_mfu_basis(cfg))
    callbacks: list[Any] = [cb]
    g = cfg.training.guard
    early = None
    if g.early_stop_patience and eval_ds is not None:
        from transformers import EarlyStoppingCallback

        early = EarlyStoppingCallback(g.early_stop_patience, g.early_stop_threshold)
        callbacks.append(early)
    trainer = build_trainer(
        cfg, run_dir, train_ds, eval_ds, model=model, tokenizer=tokenizer, peft_cfg=peft_cfg, callbacks=callbacks
    )
    cb.trainer = trainer  # the callback reads the session's token count at each save
    fsdp_on_cpu(trainer)  # a several-process CPU run shards as a GPU run does
    # The start event names the attention and kernels the run took (bench/gpu_check.py reports them),
    # why that attention, and the note when the model refused the one asked for.
    extra.update(attention)
    extra["attention"] = getattr(getattr(model, "config", None), "_attn_implementation", None)
    extra["liger"] = bool(getattr(trainer.args, "use_liger_kernel", False))
    extra["precision"] = precision_used(trainer.args, trainer.model, cfg.model.quantization)
    kernels = ["liger"] if extra["liger"] else []
    # the other trainers ask the head for more; a VLM's forward is its own
    if not on_cuda() and type(trainer).__name__ == "SFTTrainer" and not vision:
        if compact_lm_head(trainer.model):
            kernels.append("compact_lm_head")
    from sage_ft_tui.engine.train import fast_lora

    # CPU: the fused LoRA linear (engine/train/fast_lora.py); sharded parameters keep peft's forward.
    fused = not on_cuda() and not sharded(trainer) and fast_lora.enabled() and not vision
    extra["fused_lora_layers"] = fast_lora.apply(trainer.model) if fused else 0
    if extra["fused_lora_layers"]:
        kernels.append("fused_lora")
    extra["kernels"] = kernels
    inject_nan(trainer.model, cb)
    out = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    state = trainer.state
    adapter = None
    guard = cb.guard
    if guard and guard["rule"] == "nonfinite":
        err = nonfinite_error(cfg, guard)
        if events is not None:
            events.emit("guard", action="stopped", message=err.message, hint=err.hint, **guard)
        raise err
    if guard and guard["rule"] == "spike" and not flags.cancel:
        return TrainResult("spike", state.global_step, state.max_steps, None, None, guard)
    if early is not None and early.early_stopping_patience_counter >= (g.early_stop_patience or 0):
        if state.global_step < state.max_steps:
            guard = {
                "rule": "early_stop",
                "step": state.global_step,
                "best_eval_loss": state.best_metric,
                "best_step": getattr(state, "best_global_step", None),
                "patience": g.early_stop_patience,
            }
            if events is not None:
                msg = (
                    f"early stop at step {state.global_step}: the eval loss has not improved for "
                    f"{g.early_stop_patience} evaluations"
                    + (f" by more than {g.early_stop_threshold:g}" if g.early_stop_threshold else "")
                    + f" (best {state.best_metric:.4g} at step {guard['best_step']})"
                )
                events.emit("guard", action="stopped", message=msg, **guard)
    if flags.cancel:
        result_state = "cancelled"
    else:
        result_state = "completed"
        full = full_state_dict(trainer)  # every rank: a collective when sharded
        if trainer.is_world_process_zero():
            adapter = RunLayout(run_dir).adapter
            save_adapter(trainer, mdir, adapter, ctok.serving_template, full)
    return TrainResult(
        result_state, state.global_step, state.max_steps, getattr(out, "training_loss", None), adapter, guard
    )


class LoRATrainer:
    """The seed's API: `LoRATrainer(config).train(dataset)`.

    `config` is a RunConfig or the seed's TrainingConfig; `dataset` a path, a list of
    rows, or a datasets.Dataset (raw rows or already tokenized by `prepare_dataset`).
    Output goes to `output_dir` (TrainingConfig) or a new run folder."""

    def __init__(self, config: RunConfig | TrainingConfig, output_dir: Optional[str | Path] = None):
        if isinstance(config, TrainingConfig):
            output_dir = output_dir or config.output_dir
            config = config.to_run_config()
        self.config: RunConfig = config
        self.output_dir = Path(output_dir) if output_dir else None
        self.result: Optional[TrainResult] = None

    def train(self, dataset=None, eval_dataset=None) -> TrainResult:
        from sage_ft_tui.engine.data.trainer_data import prepare_dataset, tokenized_datasets
        from sage_ft_tui.engine.models.resolve import model_dir

        cfg = self.config
        if self.output_dir is None:
            from sage_ft_tui.engine.runs.create import new_run_dir

            self.output_dir = new_run_dir(cfg)
        run = self.output_dir
        run.mkdir(parents=True, exist_ok=True)
        mdir = str(model_dir(cfg.model.name, metadata_only=False))

        def tok(ds):
            if ds is None:
                return None
            if hasattr(ds, "column_names") and "input_ids" in ds.column_names:
                return ds
            return prepare_dataset(ds, mdir, task=cfg.task, max_length=cfg.training.max_length, fmt=cfg.data.format)

        if dataset is None:
            from sage_ft_tui.engine.data.prepare import prepare_run_data

            if not (RunLayout(run).train_data).exists():
                prepare_run_data(cfg, run)
            train_ds, eval_ds = tokenized_datasets(cfg, run, mdir)
        else:
            train_ds, eval_ds = tok(dataset), tok(eval_dataset)
        cfg.save(RunLayout(run).config)
        events = EventWriter(RunLayout(run).events)
        try:
            self.result = run_training(cfg, run, train_ds, eval_ds, events=events)
            if self.result.state == "spike":
                raise SageError(
                    f"the loss spiked at step {self.result.guard and self.result.guard['step']}",
                    kind="diverged",
                    hint="lower training.learning_rate, or run it through `sage-ft-tui run`, which rolls back once",
                )
            events.emit("status", state=self.result.state)
        finally:
            events.close()
        return self.result
