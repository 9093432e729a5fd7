"""The trainer callback that writes the run's event stream, honours SIGTERM and "save now",
marks complete checkpoints (sage_complete.json) and keeps the guardrails (NaN/inf steps,
loss spikes)."""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from statistics import median
from typing import Any, Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.fsutil import atomic_write_json, read_json
from sage_ft_tui.engine.methods.registry import task_spec
from sage_ft_tui.engine.runs.events import EventWriter
from sage_ft_tui.engine.runs.layout import RunLayout, checkpoint_complete, checkpoint_dir
from sage_ft_tui.engine.train.distributed import placement
from sage_ft_tui.engine.train.metrics import method_fields
from sage_ft_tui.engine.train.model import RECORDED_PATHS, on_cuda


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


# A fault the tests inject (tests/reliability/test_guardrails.py): the step whose loss is made NaN, through the
# real forward and backward. Never set outside tests.
NAN_STEP_ENV = "SAGE_FT_TEST_NAN_STEP"


def inject_nan(model, callback) -> None:
    step = int(os.environ.get(NAN_STEP_ENV, "0") or 0)
    emb = model.get_input_embeddings() if step > 0 else None
    if emb is None:
        return

    def poison(module, args, output):
        state = getattr(callback, "state", None)
        return output * float("nan") if state is not None and state.global_step + 1 == step else output

    emb.register_forward_hook(poison)


def follow_config_lr(args, optimizer, scheduler) -> Optional[float]:
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


def all_finite(model) -> bool:
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
    from transformers import TrainerCallback

    class EventCallback(EventRecorder, TrainerCallback):  # transformers' no-op defaults for the other hooks
        pass

    return EventCallback(cfg, events, flags, status_cb, extra_start, basis)


class EventRecorder:
    """The hooks of the run's callback (event_callback mixes in transformers' TrainerCallback,
    so this module loads without it)."""

    def __init__(self, cfg: RunConfig, events: Optional[EventWriter], flags: StopFlags, status_cb, extra_start, basis):
        self.cfg, self.events, self.flags, self.status_cb = cfg, events, flags, status_cb
        self.extra_start = extra_start or {}
        self.guard_cfg = cfg.training.guard
        self.t0: Optional[float] = None
        self.step0 = 0
        self.last_t: Optional[float] = None
        self.last_tokens = 0
        self.last_step = 0
        # Tokens: TRL counts from 0 in each process (GRPO in the restored trainer state), so a
        # resumed run adds what its checkpoint recorded (sage_complete.json "tokens").
        self.tokens0 = 0
        self.trainer: Any = None  # set by run_training: its session count is read at each save
        self.state: Any = None
        # What a guardrail did in this session: {"rule": nonfinite | spike, "step": ..., ...}
        self.guard: Optional[dict] = None
        self.recent: deque = deque(maxlen=self.guard_cfg.spike_window)
        self.lr_checked = False
        self.basis = basis  # what MFU is measured against (None on CPU)

    def _emit(self, kind, **fields):
        if self.events is not None:
            self.events.emit(kind, **fields)

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
        used = self.extra_start
        cfg = self.cfg
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
            **used,
            **({"mfu_basis": self.basis.to_event()} if self.basis is not None else {}),
        )
        self._emit("status", state="running")
        if self.status_cb:
            paths = {k: used[k] for k in RECORDED_PATHS if k in used}
            self.status_cb(state="running", total_steps=state.max_steps, step=state.global_step, **paths)

    def on_step_begin(self, args, state, control, **kw):
        if not self.lr_checked:  # the checkpoint's optimizer and scheduler are loaded by now
            self.lr_checked = True
            ratio = follow_config_lr(args, kw.get("optimizer"), kw.get("lr_scheduler"))
            if ratio is not None and state.is_world_process_zero:
                print(f"[sage-ft-tui] learning rate × {ratio:g} from the config: {args.learning_rate:g}", flush=True)

    def on_pre_optimizer_step(self, args, state, control, **kw):
        model = kw.get("model")
        if not self.guard_cfg.stop_on_nonfinite or args.fp16 or self.guard or model is None or all_finite(model):
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
        if self.flags.cancel:
            control.should_save = True
            control.should_training_stop = True
        elif self.flags.save_requested():
            control.should_save = True
        return control

    def _watch_spike(self, loss: float, state, control) -> None:
        g = self.guard_cfg
        if not g.spike_factor or self.guard:
            return
        if len(self.recent) >= 3 and loss > g.spike_factor * median(self.recent):
            self.guard = {"rule": "spike", "step": state.global_step, "loss": loss, "median": median(self.recent)}
            control.should_save = control.should_evaluate = False  # the spiked state is not kept
            control.should_training_stop = True
        self.recent.append(loss)

    def on_log(self, args, state, control, logs=None, **kw):
        logs = logs or {}
        now = time.time()
        if "eval_loss" in logs:
            self._emit("eval", step=state.global_step, eval_loss=logs["eval_loss"])
            if self.status_cb:
                self.status_cb(eval_loss=logs["eval_loss"])
            return
        if "loss" not in logs:
            return
        self._watch_spike(float(logs["loss"]), state, control)
        tokens = self.tokens0 + int(logs.get("num_tokens", 0) or 0)
        dt = max(now - (self.last_t or now), 1e-6)
        dsteps = state.global_step - self.last_step
        done = state.global_step - self.step0
        elapsed = now - (self.t0 or now)
        eta = (state.max_steps - state.global_step) * elapsed / done if done > 0 else None
        eff_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
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
            **vram_fields(),
            **method_fields(logs, task_spec(self.cfg.task).metrics),
        )
        if self.status_cb:
            self.status_cb(
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
            session = max(int(state.num_input_tokens_seen or 0), int(getattr(self.trainer, "_total_train_tokens", 0)))
            mark = {"step": state.global_step, "t": time.time(), "tokens": self.tokens0 + session}
            atomic_write_json(checkpoint_complete(ckpt), mark)
            self._emit("checkpoint", step=state.global_step, path=str(ckpt))


def vram_fields() -> dict:
    if not on_cuda():
        return {}
    import torch

    return {"vram_allocated": torch.cuda.memory_allocated(), "vram_peak": torch.cuda.max_memory_allocated()}
