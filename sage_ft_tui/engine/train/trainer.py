"""LoRATrainer: TRL's SFTTrainer with peft, plus the callback that writes the event stream,
honours SIGTERM and "save now", and marks complete checkpoints.

The data arrives tokenized (input_ids + completion_mask, see engine/data/prepare.py), so TRL only
builds labels (-100 outside answers), truncates or packs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.config.seed import TrainingConfig
from sage_ft_tui.engine.errors import SageError, clip
from sage_ft_tui.engine.fsutil import MiB, atomic_write_json, read_json
from sage_ft_tui.engine.models.build_lock import MODEL_BUILD
from sage_ft_tui.engine.runs.events import EventWriter
from sage_ft_tui.engine.runs.layout import RunLayout, checkpoint_complete, checkpoint_dir
from sage_ft_tui.engine.train.attention import AttentionChoice, choose_attention
from sage_ft_tui.engine.train.attention import register as register_attention
from sage_ft_tui.engine.train.distributed import fsdp_on_cpu, full_state_dict, placement, sharded, trainer_args
from sage_ft_tui.engine.train.metrics import method_fields


class StopFlags:
    """Set from signal handlers / trigger files; read by the callback at each step."""

    def __init__(self, run_dir: Optional[Path] = None):
        self.cancel = False
        self.run_dir = Path(run_dir) if run_dir else None

    def save_requested(self) -> bool:
        if self.run_dir is None:
            return False
        trig = RunLayout(self.run_dir).save_trigger
        if trig.exists():
            try:
                trig.unlink()
            except OSError:
                pass
            return True
        return False


def _cuda():
    import torch

    return torch.cuda.is_available()


# A fault the tests inject (tests/reliability/test_guardrails.py): the step whose loss is made NaN, through the
# real forward and backward. Never set outside tests.
NAN_STEP_ENV = "SAGE_FT_TEST_NAN_STEP"


def _inject_nan(model, callback) -> None:
    step = int(os.environ.get(NAN_STEP_ENV, "0") or 0)
    emb = model.get_input_embeddings() if step > 0 else None
    if emb is None:
        return

    def poison(module, args, output):
        state = getattr(callback, "state", None)
        return output * float("nan") if state is not None and state.global_step + 1 == step else output

    emb.register_forward_hook(poison)


def _follow_config_lr(args, optimizer, scheduler) -> Optional[float]:
    """A resumed run takes training.learning_rate from its config, not from the checkpoint's
    scheduler (the spike rollback halves it): every group's rate is scaled by the ratio.
    Returns the ratio when it was not 1."""
    base = list(getattr(scheduler, "base_lrs", None) or [])
    if not base or not base[0] or optimizer is None:
        return None
    ratio = args.learning_rate / base[0]
    if abs(ratio - 1) < 1e-9:
        return None
    scheduler.base_lrs = [b * ratio for b in base]
    for group in optimizer.param_groups:
        group["lr"] *= ratio
        if "initial_lr" in group:
            group["initial_lr"] *= ratio
    if hasattr(scheduler, "_last_lr"):  # what the log reports for this step
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
    return ratio


def _all_finite(model) -> bool:
    import torch

    grads = []
    for p in model.parameters():
        if p.requires_grad and p.grad is not None:
            g = p.grad
            grads.append(torch.isfinite(g.to_local() if hasattr(g, "to_local") else g).all())
    return bool(torch.stack(grads).all()) if grads else True


def event_callback(
    cfg: RunConfig, events: Optional[EventWriter], flags: StopFlags, status_cb=None, extra_start=None, basis=None
):
    """The callback that writes the run's events; `basis` (flops.MfuBasis, GPU runs): MFU in each log."""
    from collections import deque
    from statistics import median

    from transformers import TrainerCallback

    guard_cfg = cfg.training.guard

    class EventCallback(TrainerCallback):
        def __init__(self):
            self.t0 = None
            self.step0 = 0
            self.last_t = None
            self.last_tokens = 0
            self.last_step = 0
            # Tokens: TRL counts from 0 in each process (GRPO in the restored trainer state), so a
            # resumed run adds what its checkpoint recorded (sage_complete.json "tokens").
            self.tokens0 = 0
            self.trainer = None  # set by run_training: its session count is read at each save
            self.state = None
            # What a guardrail did in this session: {"rule": nonfinite | spike, "step": ..., ...}
            self.guard: Optional[dict] = None
            self.recent: deque = deque(maxlen=guard_cfg.spike_window)
            self.lr_checked = False
            self.basis = basis  # what MFU is measured against (None on CPU)

        def _emit(self, kind, **fields):
            if events is not None:
                events.emit(kind, **fields)

        def on_train_begin(self, args, state, control, **kw):
            self.state = state
            self.t0 = self.last_t = time.time()
            self.step0 = self.last_step = state.global_step
            if state.global_step:
                done = read_json(checkpoint_complete(checkpoint_dir(args.output_dir, state.global_step)), {}) or {}
                self.tokens0 = max(0, int(done.get("tokens") or 0) - int(state.num_input_tokens_seen or 0))
                self.last_tokens = self.tokens0
            if self.basis is not None and args.world_size != self.basis.gpus:
                self.basis = replace(self.basis, gpus=args.world_size)  # tokens/s counts every rank
            spread = placement(kw.get("model"))  # every rank (a collective): how the model really lies
            used = extra_start or {}
            self._emit(
                "start",
                # the precision the run computes in is folded in: SAGE_FT_CPU_BF16=0 is another run
                config_hash=cfg.hash(precision=used.get("precision")),
                total_steps=state.max_steps,
                num_epochs=args.num_train_epochs,
                world_size=args.world_size,
                model=cfg.model.name,
                task=cfg.task,
                resumed_from_step=state.global_step,
                **spread,
                **(extra_start or {}),
                **({"mfu_basis": self.basis.to_event()} if self.basis is not None else {}),
            )
            self._emit("status", state="running")
            if status_cb:
                paths = {k: used[k] for k in RECORDED_PATHS if k in used}
                status_cb(state="running", total_steps=state.max_steps, step=state.global_step, **paths)

        def on_step_begin(self, args, state, control, **kw):
            if not self.lr_checked:  # the checkpoint's optimizer and scheduler are loaded by now
                self.lr_checked = True
                ratio = _follow_config_lr(args, kw.get("optimizer"), kw.get("lr_scheduler"))
                if ratio is not None and state.is_world_process_zero:
                    print(
                        f"[sage-ft-tui] learning rate × {ratio:g} from the config: {args.learning_rate:g}", flush=True
                    )

        def on_pre_optimizer_step(self, args, state, control, **kw):
            model = kw.get("model")
            if not guard_cfg.stop_on_nonfinite or args.fp16 or self.guard or model is None or _all_finite(model):
                return
            # NaN/inf gradients: none of them reaches the weights (the optimizer skips a parameter
            # without a gradient), and the state after the previous step is saved as it is.
            for p in model.parameters():
                if p.requires_grad:
                    p.grad = None
            ckpt = None
            if state.global_step > 0:
                ckpt = checkpoint_dir(args.output_dir, state.global_step)
                if not checkpoint_complete(ckpt).exists() and self.trainer is not None:
                    self.trainer._save_checkpoint(self.trainer.model_wrapped, None)
                    self.on_save(args, state, control)
            self.guard = {"rule": "nonfinite", "step": state.global_step + 1, "checkpoint": str(ckpt) if ckpt else None}
            control.should_training_stop = True

        def on_step_end(self, args, state, control, **kw):
            if self.guard:  # nothing more from this session: no save, no eval of a stopped run
                control.should_save = control.should_evaluate = False
                control.should_training_stop = True
                return control
            if flags.cancel:
                control.should_save = True
                control.should_training_stop = True
            elif flags.save_requested():
                control.should_save = True
            return control

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            now = time.time()
            if "eval_loss" in logs:
                self._emit("eval", step=state.global_step, eval_loss=logs["eval_loss"])
                if status_cb:
                    status_cb(eval_loss=logs["eval_loss"])
                return
            if "loss" not in logs:
                return
            if guard_cfg.spike_factor and not self.guard:
                loss = float(logs["loss"])
                if len(self.recent) >= 3 and loss > guard_cfg.spike_factor * median(self.recent):
                    self.guard = {
                        "rule": "spike",
                        "step": state.global_step,
                        "loss": loss,
                        "median": median(self.recent),
                    }
                    control.should_save = control.should_evaluate = False  # the spiked state is not kept
                    control.should_training_stop = True
                self.recent.append(loss)
            tokens = self.tokens0 + int(logs.get("num_tokens", 0) or 0)
            dt = max(now - (self.last_t or now), 1e-6)
            dsteps = state.global_step - self.last_step
            done = state.global_step - self.step0
            elapsed = now - (self.t0 or now)
            eta = (state.max_steps - state.global_step) * elapsed / done if done > 0 else None
            eff_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
            vram = {}
            if _cuda():
                import torch

                vram = {"vram_allocated": torch.cuda.memory_allocated(), "vram_peak": torch.cuda.max_memory_allocated()}
            tps = round((tokens - self.last_tokens) / dt, 1) if self.last_tokens or dsteps else None
            util = self.basis.mfu(tps) if self.basis is not None else None
            self._emit(
                "log",
                step=state.global_step,
                epoch=round(state.epoch or 0.0, 4),
                loss=logs["loss"],
                learning_rate=logs.get("learning_rate"),
                grad_norm=logs.get("grad_norm"),
                tokens=tokens,
                tokens_per_s=tps,
                **({"mfu": float(f"{util:.4g}")} if util is not None else {}),  # 4 digits, not places
                samples_per_s=round(dsteps * eff_batch / dt, 2),
                eta_s=round(eta, 1) if eta is not None else None,
                **vram,
                **method_fields(logs),
            )
            if status_cb:
                status_cb(
                    step=state.global_step,
                    epoch=round(state.epoch or 0.0, 4),
                    loss=logs["loss"],
                    total_steps=state.max_steps,
                    tokens=tokens,
                )
            self.last_t, self.last_tokens, self.last_step = now, tokens, state.global_step

        def on_save(self, args, state, control, **kw):
            ckpt = checkpoint_dir(args.output_dir, state.global_step)
            if ckpt.is_dir() and state.is_world_process_zero:
                session = max(
                    int(state.num_input_tokens_seen or 0), int(getattr(self.trainer, "_total_train_tokens", 0))
                )
                mark = {"step": state.global_step, "t": time.time(), "tokens": self.tokens0 + session}
                atomic_write_json(checkpoint_complete(ckpt), mark)
                self._emit("checkpoint", step=state.global_step, path=str(ckpt))

    return EventCallback()


def cpu_bf16_fast() -> bool:
    """Native bf16 matmuls on this CPU (AMX or AVX512-BF16, through oneDNN); SAGE_FT_CPU_BF16=0
    turns the auto choice off."""
    from sage_ft_tui.engine.hardware.estimate import cpu_native_bf16

    if not cpu_native_bf16():
        return False
    import torch

    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_autocast(cfg: RunConfig) -> bool:
    """precision auto on CPU: bf16 autocast for models wide enough, on CPUs with native bf16
    (the rule is estimate.cpu_autocasts, which the memory estimate follows too)."""
    from sage_ft_tui.engine.hardware.estimate import cpu_autocasts, model_shape

    if cfg.model.dtype not in ("auto", "float32"):
        return False
    try:
        hidden = model_shape(cfg.model.name).hidden
    except SageError:
        return False
    return cpu_autocasts("auto", cfg.model.dtype, hidden, cpu_bf16_fast())


def precision_flags(cfg: RunConfig) -> dict:
    p = cfg.training.precision
    if not _cuda():
        if p == "fp16":
            raise SageError("training.precision fp16 needs a CUDA GPU", hint="use auto, bf16 or fp32 on CPU")
        # auto on CPU: bf16 autocast (fp32 weights, bf16 matmuls) where the CPU has AMX or
        # AVX512-BF16, 1.25x the real tokens/s of fp32 on the ~18M bench model, same loss curve
        # (tests/unit/test_cpu_speed.py); fp32 elsewhere, where emulated bf16 is slower.
        return {"bf16": p == "bf16" or (p == "auto" and cpu_autocast(cfg)), "fp16": False, "use_cpu": True}
    import torch

    bf16_ok = torch.cuda.is_bf16_supported()
    if p == "bf16" and not bf16_ok:
        raise SageError("training.precision bf16 is not supported by this GPU", hint="use fp16 or auto")
    if p == "auto":
        return {"bf16": bf16_ok, "fp16": not bf16_ok}
    return {"bf16": p == "bf16", "fp16": p == "fp16"}


# What status.json keeps of the start event: how the run really computes.
RECORDED_PATHS = ("precision", "attention", "kernels")


def precision_used(args, model, quantization: str) -> str:
    """The precision the run computes in, as the start event, status.json and the config hash
    say it: "fp32", "bf16", "fp16", "bf16 autocast (fp32 weights)", "4-bit nf4, bf16 compute"."""
    amp = "bf16" if getattr(args, "bf16", False) else "fp16" if getattr(args, "fp16", False) else None
    if quantization != "none":
        return f"{'4-bit nf4' if quantization == '4bit' else '8-bit'}, {amp or 'bf16'} compute"
    names = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
    floats = [p for p in model.parameters() if p.is_floating_point()]
    frozen = next((p for p in floats if not p.requires_grad), floats[0] if floats else None)  # the base's
    dtype = frozen.dtype if frozen is not None else None
    weights = names.get(str(dtype).removeprefix("torch."), str(dtype)) if dtype is not None else "fp32"
    if amp and amp != weights:
        return f"{amp} autocast ({weights} weights)"
    return weights


def _from_pretrained(cfg: RunConfig, mdir: Path, kw: dict, choice: AttentionChoice, *, cuda: bool, dtype: str):
    """from_pretrained in `choice`'s attention; when the model refuses that attention, once more
    in one it supports (the auto choice for this model, else eager), with a one-line note in
    train.log. Every other failure is one SageError whose hint matches its cause."""
    from sage_ft_tui.engine.models.failures import attention_refusal, load_error, model_load_error
    from sage_ft_tui.engine.models.vision import auto_class

    auto = auto_class(mdir)  # a vision-language model loads whole: tower, projector, language model

    note = None
    tried: list[str] = []
    while True:
        tried.append(choice.name)
        try:
            with MODEL_BUILD:
                model = auto.from_pretrained(str(mdir), **kw, attn_implementation=register_attention(choice.name))
            return model, choice, note
        except Exception as e:  # noqa: BLE001 - every loader failure becomes one SageError
            reason = attention_refusal(f"{type(e).__name__}: {e}")
            if reason is None or choice.name == "eager":
                known = model_load_error(f"{type(e).__name__}: {e}", cfg.model.name)
                if known is None and not isinstance(e, (OSError, ValueError, ImportError)):
                    raise  # out of memory and the like: the worker's classification
                raise (known or load_error(e, cfg.model.name)) from None
            fallback = choose_attention(cuda=cuda, dtype=dtype, mdir=mdir, honour_env=False)
            if fallback.name in tried:
                fallback = AttentionChoice("eager", "the model's own eager attention")
            note = (
                f"attention: {cfg.model.name} cannot use {choice.name} ({reason.rstrip('.')}); "
                f"using {fallback.name} instead: {fallback.why}"
            )
            if int(os.environ.get("RANK", "0")) == 0:  # one line in train.log, not one per rank
                print(f"[sage-ft-tui {time.strftime('%H:%M:%S')}] note: {note}", flush=True)
            choice = fallback


def load_model(cfg: RunConfig, mdir: Path, attention: Optional[dict] = None):
    """The base model, in the attention this model supports. `attention` (a dict) receives
    what the start event says of it: the path taken, why, and the note of a fallback."""
    import torch

    kw: dict[str, Any] = {"trust_remote_code": cfg.model.trust_remote_code}
    cuda = _cuda()
    dtype = cfg.model.dtype
    if dtype == "auto":
        dtype = ("bfloat16" if torch.cuda.is_bf16_supported() else "float16") if cuda else "float32"
    kw["dtype"] = getattr(torch, dtype)
    requested: str = cfg.model.attn_implementation
    if requested == "auto":
        choice = choose_attention(cuda=cuda, dtype=dtype, mdir=mdir)
    else:
        choice = AttentionChoice(requested, "model.attn_implementation")
    q = cfg.model.quantization
    if q != "none":
        if not cuda:
            raise SageError(
                f"model.quantization {q} needs an NVIDIA GPU with CUDA",
                kind="config",
                hint="set model.quantization none on CPU (or run on a GPU server)",
            )
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise SageError(
                f"model.quantization {q} needs bitsandbytes",
                kind="config",
                hint="pip install bitsandbytes (on a CUDA machine)",
            ) from None
        from transformers import BitsAndBytesConfig

        compute = kw["dtype"] if kw["dtype"] != torch.float32 else torch.bfloat16
        kw["quantization_config"] = (
            BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=compute,
                # FSDP shards parameters of one dtype: store the 4-bit weights in the compute dtype
                bnb_4bit_quant_storage=compute,
            )
            if q == "4bit"
            else BitsAndBytesConfig(load_in_8bit=True)
        )
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        kw["device_map"] = {"": local_rank}
    model, choice, note = _from_pretrained(cfg, mdir, kw, choice, cuda=cuda, dtype=dtype)
    if attention is not None:
        attention.update(attention=choice.name, attention_why=choice.why, **({"attention_note": note} if note else {}))
    if q != "none":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.training.gradient_checkpointing)
        # prepare_model_for_kbit_training upcasts every non-quantized weight to fp32; the frozen
        # embeddings and lm_head (over 1B parameters for 150k-token vocabularies) go back to the
        # compute dtype, norms stay fp32. engine/hardware/estimate.py estimates exactly this.
        for emb in {
            id(m): m for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None
        }.values():
            emb.to(compute)
    return model


def peft_config(cfg: RunConfig, model=None):
    """`model`: a vision-language model, whose adapters go where lora.vision says (train/vision.py)."""
    from peft import LoraConfig

    lc = cfg.lora
    extra: dict[str, Any] = {"target_modules": lc.target_modules}
    if model is not None:
        from sage_ft_tui.engine.train.vision import vision_targets

        extra = vision_targets(model, lc.target_modules, lc.vision)
    return LoraConfig(
        r=lc.r,
        lora_alpha=lc.alpha,
        lora_dropout=lc.dropout,
        **extra,
        use_dora=lc.use_dora,
        bias=lc.bias,
        task_type="CAUSAL_LM",
    )


def _checkpointing_arg(cls, on: bool) -> dict:
    # transformers 5.x renamed gradient_checkpointing to activation_checkpointing.
    name = (
        "activation_checkpointing"
        if "activation_checkpointing" in cls.__dataclass_fields__
        else "gradient_checkpointing"
    )
    return {name: on}


def use_liger() -> bool:
    """Liger's fused layer kernels (RMSNorm, RoPE, SwiGLU) on a CUDA GPU when the package is
    installed (pip install liger-kernel); SAGE_FT_LIGER=0 turns them off. TRL keeps its own
    fused LM-head loss, so only the layer kernels are applied."""
    if os.environ.get("SAGE_FT_LIGER", "1") == "0" or not _cuda():
        return False
    import importlib.util

    return importlib.util.find_spec("liger_kernel") is not None


# Answer positions x vocabulary entries up to which the CPU loss builds the logits at once
# (fp32: 256 MiB); beyond it TRL's chunked head keeps memory bounded.
COMPACT_HEAD_MAX = 64 * MiB


def compact_lm_head(model) -> bool:
    """On CPU, score only the answer positions with one plain LM-head matmul instead of TRL's
    chunked head, which scores every position there (it compacts only on Triton devices) in
    Python-level tiles. Same loss and metrics (tests/unit/test_cpu_speed.py); ~10% of a step
    on the bench models. Wraps the forward TRL installed; anything else goes through it."""
    import types

    import torch
    from trl.trainer.utils import FusedCausalLMOutput

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    fused = base.forward
    if (
        os.environ.get("SAGE_FT_COMPACT_HEAD", "1") == "0"
        or getattr(getattr(fused, "__func__", None), "__code__", None) is None
        or fused.__func__.__code__.co_name != "_fused_forward"
    ):
        return False

    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kw):
        head = self.get_output_embeddings()
        vocab = head.weight.shape[0]
        tokens = (shift_labels if shift_labels is not None else labels).ne(-100).sum() if fused_lm_head else 0
        c = self.config.get_text_config() if hasattr(self.config, "get_text_config") else self.config
        special = getattr(c, "final_logit_softcapping", None) or getattr(c, "logit_scale", None)
        special = special or kw.get("output_router_logits") or getattr(c, "output_router_logits", False)
        if not fused_lm_head or special or head.weight.is_cuda or int(tokens) * vocab > COMPACT_HEAD_MAX:
            return fused(
                *args,
                fused_lm_head=fused_lm_head,
                labels=labels,
                shift_labels=shift_labels,
                num_items_in_batch=num_items_in_batch,
                **kw,
            )
        kw["use_cache"] = False
        hidden = self.base_model(*args, **kw).last_hidden_state
        if shift_labels is None:
            hidden, target = hidden[:, :-1], labels[:, 1:]
        else:
            target = shift_labels
        mask = target != -100
        logits = head(hidden[mask]).float()
        logp = torch.log_softmax(logits, dim=-1)
        picked = target[mask]
        log_probs = logp.gather(1, picked[:, None]).squeeze(1)
        with torch.no_grad():
            entropy = -(logp.exp() * logp).sum(-1)
            top1 = (logits.argmax(-1) == picked).to(log_probs.dtype)
        full = [x.new_zeros(mask.shape).masked_scatter(mask, x) for x in (log_probs, entropy, top1)]
        return FusedCausalLMOutput(
            loss=-full[0].sum() / (mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch),
            log_probs=full[0],
            entropy=full[1],
            is_top1=full[2],
            label_mask=mask,
        )

    base.forward = types.MethodType(forward, base)
    return True


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
        **_checkpointing_arg(cls, t.gradient_checkpointing),
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
        dataloader_pin_memory=_cuda(),
        **({"dataset_num_proc": None} if "dataset_num_proc" in cls.__dataclass_fields__ else {}),
        **precision_flags(cfg),
        **trainer_args(cfg),
    )


def sft_args(cfg: RunConfig, out_dir: Path, has_eval: bool, vision: bool = False):
    """`vision`: image rows, which TRL neither packs nor pads free; its collator keeps the
    dataset's prompt/completion/images columns and processes each batch."""
    from trl import SFTConfig

    t = cfg.training
    return SFTConfig(
        **base_args(cfg, out_dir, has_eval, SFTConfig),
        max_length=t.max_length,
        packing=t.packing and not vision,
        packing_strategy="bfd",
        completion_only_loss=True,
        use_liger_kernel=use_liger() and not vision,
        **({"remove_unused_columns": False} if vision else {}),
    )


def policy_model(cfg: RunConfig, mdir: Path, attention: Optional[dict] = None):
    """(model, peft_config): the base with a new LoRA config, or the base with the adapter
    of model.init_adapter loaded trainable (peft_config None: the trainer keeps it)."""
    model = load_model(cfg, mdir, attention)
    if not cfg.model.init_adapter:
        from sage_ft_tui.engine.models.vision import is_vision

        return model, peft_config(cfg, model if is_vision(mdir) else None)
    from peft import PeftModel

    from sage_ft_tui.engine.runs.chain import adapter_dir

    adapter = adapter_dir(cfg.model.init_adapter)
    try:
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=True), None
    except (OSError, ValueError, RuntimeError) as e:
        raise SageError(
            f"cannot load the adapter {adapter} onto {cfg.model.name}: {clip(str(e))}",
            hint="start from a run trained on the same base model",
            kind="model",
        ) from None


def build_trainer(cfg: RunConfig, run_dir: Path, train_ds, eval_ds, *, model, tokenizer, peft_cfg, callbacks):
    """The trainer the task needs: SFT, preference (DPO/ORPO/SimPO/KTO) or GRPO."""
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
    if cfg.task == "preference":
        from trl import DPOConfig

        from sage_ft_tui.engine.train.preference import trainer_for

        return trainer_for(cfg, base_args(cfg, out, eval_ds is not None, DPOConfig), kw)
    if cfg.task == "grpo":
        from trl import GRPOConfig

        from sage_ft_tui.engine.train.grpo import grpo_trainer

        return grpo_trainer(cfg, base_args(cfg, out, eval_ds is not None, GRPOConfig), kw)
    from trl import SFTTrainer

    vision = "images" in (train_ds.column_names or [])
    return SFTTrainer(args=sft_args(cfg, out, eval_ds is not None, vision), **kw)


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

    vision = is_vision(mdir) and cfg.task not in ("preference", "grpo")
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
    if not _cuda() and type(trainer).__name__ == "SFTTrainer" and not vision:
        if compact_lm_head(trainer.model):
            kernels.append("compact_lm_head")
    from sage_ft_tui.engine.train import fast_lora

    # CPU: the fused LoRA linear (engine/train/fast_lora.py); sharded parameters keep peft's forward.
    fused = not _cuda() and not sharded(trainer) and fast_lora.enabled() and not vision
    extra["fused_lora_layers"] = fast_lora.apply(trainer.model) if fused else 0
    if extra["fused_lora_layers"]:
        kernels.append("fused_lora")
    extra["kernels"] = kernels
    _inject_nan(trainer.model, cb)
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
        from sage_ft_tui.engine.data.prepare import prepare_dataset, tokenized_datasets
        from sage_ft_tui.engine.models.resolve import model_dir

        cfg = self.config
        if self.output_dir is None:
            from sage_ft_tui.engine.runs.manage import new_run_dir

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
