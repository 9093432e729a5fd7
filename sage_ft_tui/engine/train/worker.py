"""The detached training process: `python -m sage_ft_tui.engine.worker <run> [--resume]` (a shim that calls `main` here).

Holds the run's lock, writes status.json and events.jsonl (rank 0 only), turns every
failure into a `failed` status with an `error` event (kind, message, hint) and one clear
line in train.log, and SIGTERM into a checkpoint and `cancelled`.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import traceback
from contextlib import nullcontext
from pathlib import Path

from sage_ft_tui.engine.data.trainer_data import tokenized_datasets
from sage_ft_tui.engine.errors import SageError, clip
from sage_ft_tui.engine.fsutil import GiB, MiB, fmt_bytes, free_bytes, is_disk_full
from sage_ft_tui.engine.hardware.estimate import estimate_for_config
from sage_ft_tui.engine.hardware.probe import get_backend, snapshot_to_event
from sage_ft_tui.engine.models.resolve import model_dir
from sage_ft_tui.engine.runs.events import EventWriter
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.runs.notify import MISSING, have_apprise, run_urls, send
from sage_ft_tui.engine.runs.state import checkpoints, load_config, run_lock, write_status
from sage_ft_tui.engine.train.callback import StopFlags
from sage_ft_tui.engine.train.trainer import run_training

HW_INTERVAL_S = 2.0


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def log(msg: str) -> None:
    print(f"[sage-ft-tui {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class _NullWriter:
    def emit(self, kind, **fields):
        return {}

    def close(self):
        pass


def _hw_sampler(events, stop: threading.Event, run: Path) -> None:
    """Hardware readings as `hw` events every few seconds (rank 0), through the one interface."""
    try:
        backend = get_backend()
    except Exception as e:  # NVML trouble must never stop training
        log(f"hardware readings off: {e}")
        return
    while not stop.is_set():
        try:
            events.emit("hw", **snapshot_to_event(backend.snapshot(disk_path=run)))
        except Exception as e:
            log(f"hardware reading failed: {e}")
            return
        stop.wait(HW_INTERVAL_S)


def classify(exc: BaseException, run: Path) -> SageError:
    if isinstance(exc, SageError):
        return exc
    name = type(exc).__name__
    text = str(exc)
    if name == "OutOfMemoryError" or "CUDA out of memory" in text:
        return SageError(
            "CUDA out of memory",
            kind="oom",
            hint="lower training.micro_batch_size or training.max_length, enable gradient_checkpointing, or use 4-bit quantization",
        )
    known = _model_or_config_error(exc, run)
    if known is not None:
        return known
    reason = _disk_reason(exc, run)
    if reason:
        need = _checkpoint_bytes(run)
        needs = f", a checkpoint needs about {fmt_bytes(need)}" if need else ""
        return SageError(
            f"cannot write to {run}: {reason} ({fmt_bytes(free_bytes(run))} free{needs})",
            kind="disk",
            hint=f"free at least {fmt_bytes(need * 2) if need else 'the size of a checkpoint'}, then "
            f"`sage-ft-tui resume {run.name}`: it continues from the newest complete checkpoint",
        )
    return SageError(
        f"{name}: {clip(text, 300) if text.strip() else 'internal error'}",
        kind="internal",
        hint="see train.log for the traceback",
    )


def _model_or_config_error(exc: BaseException, run: Path):
    """Model, LoRA-target and permission failures, with the hint that fixes each (None: not one)."""
    try:
        cfg = load_config(run)
    except Exception:
        return None
    name, text = type(exc).__name__, str(exc)
    if name == "NoMatchingPeftModuleError" or "not found in the base model" in text:
        from sage_ft_tui.engine.models.modules import check_target_modules, local_model_dir

        mdir = local_model_dir(cfg.model.name, cfg.model.revision)
        try:
            if mdir is not None:
                check_target_modules(mdir, cfg.lora.target_modules, cfg.model.trust_remote_code, cfg.model.name)
        except SageError as e:
            return e
        return SageError(f"lora.target_modules: {clip(text)}", kind="config", hint="use all-linear or fix the names")
    if isinstance(exc, PermissionError):
        from sage_ft_tui.engine.paths import permission_error

        return permission_error(exc.filename or run, "the path")
    from sage_ft_tui.engine.models.failures import model_load_error

    cur: BaseException | None = exc
    while cur is not None:  # the loader's error may be wrapped
        found = model_load_error(f"{type(cur).__name__}: {cur}", cfg.model.name)
        if found is not None:
            return found
        cur = cur.__cause__ or cur.__context__
    return None


# What torch.save's zip writer and safetensors raise when a write fails (no errno kept).
_WRITE_FAILED = (
    "inline_container.cc",
    "PytorchStreamWriter failed",
    "file write failed",
    "File too large",
    "No space left",
    "Disk quota exceeded",
)


def _disk_reason(exc: BaseException, run: Path) -> str:
    """Why a write failed, in words ('' when the failure is not about writing)."""
    import errno
    import resource

    e: BaseException | None = exc
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            break
        e = e.__cause__ or e.__context__
    code = getattr(e, "errno", None)
    if code is None and not (is_disk_full(exc) or any(s in str(exc) for s in _WRITE_FAILED)):
        return ""
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    limit = (
        f"a file reached the file size limit (ulimit -f: {fmt_bytes(soft)})" if soft != resource.RLIM_INFINITY else ""
    )
    if code == errno.EFBIG or (code is None and limit and free_bytes(run) > 2 * max(_checkpoint_bytes(run), MiB)):
        return limit or "a file grew past what the filesystem allows"
    if code == errno.EDQUOT or "quota" in str(exc).lower():
        return "the disk quota is exceeded"
    return "the disk is full"


def _checkpoint_bytes(run: Path) -> int:
    """About what one checkpoint takes: the newest complete one, else the estimate."""
    try:
        done = checkpoints(run)
        if done:
            return sum(f.stat().st_size for f in done[-1].rglob("*") if f.is_file())
        est = estimate_for_config(load_config(run))
        return int(est.lora_params + est.optimizer_states)
    except Exception:
        return 0


def _launch_token() -> str:
    """The same for every rank of one launch (their common parent: torchrun / accelerate)."""
    return f"{socket.gethostname()}:{os.getppid()}"


def _wait_for_rank0_data(run: Path, timeout: float = 3600.0) -> None:
    marker = RunLayout(run).data_ready
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if marker.read_text() == _launch_token():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SageError("rank 0 did not finish preparing the data", kind="internal", hint="see train.log of rank 0")


def _free_accelerator_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    except Exception:
        pass


def _oom_estimate(cfg) -> str:
    """' (estimated X GiB, Y GiB free)' for the failure message, or '' when unknown."""
    try:
        est = estimate_for_config(cfg)
        free = f", {est.free / GiB:.1f} GiB free" if est.free is not None else ""
        return (
            f" (the estimate for micro-batch {est.micro_batch} × {est.max_length} was {est.total / GiB:.1f} GiB{free})"
        )
    except Exception:
        return ""


def _train_with_oom_retries(cfg, run: Path, train_ds, eval_ds, *, events, flags, resume_from, status_cb):
    """run_training; on CUDA OOM halve the micro-batch, double accumulation (same effective
    batch), resume from the newest complete checkpoint, up to training.oom_retries times."""
    tries = 0
    spikes = 0
    while True:
        try:
            result = run_training(
                cfg, run, train_ds, eval_ds, events=events, flags=flags, resume_from=resume_from, status_cb=status_cb
            )
            if getattr(result, "state", None) != "spike":
                return result
            cfg, resume_from = _spike_rollback(cfg, run, result.guard or {}, events, spikes)
            spikes += 1
            _free_accelerator_memory()
            continue
        except BaseException as exc:
            err = classify(exc, run)
            if err.kind != "oom":
                raise
            t = cfg.training
            single = int(os.environ.get("WORLD_SIZE", "1")) <= 1
            if tries >= t.oom_retries or t.micro_batch_size <= 1 or not single or flags.cancel:
                why = (
                    "micro-batch is already 1"
                    if t.micro_batch_size <= 1
                    else "several processes (DDP)"
                    if not single
                    else f"{tries} retries used"
                )
                raise SageError(
                    f"CUDA out of memory at micro-batch {t.micro_batch_size} × {t.max_length} tokens; "
                    f"giving up: {why}{_oom_estimate(cfg)}",
                    kind="oom",
                    hint="use model.quantization 4bit, training.gradient_checkpointing true, a shorter "
                    "training.max_length, or a GPU with more free memory",
                ) from None
            exc.__traceback__ = None  # drop the frames that hold the model and its activations
            del exc
        _free_accelerator_memory()
        tries += 1
        old_mb, old_acc = t.micro_batch_size, t.grad_accumulation
        raw = cfg.model_dump(mode="json")
        raw["training"]["micro_batch_size"] = max(1, old_mb // 2)
        raw["training"]["grad_accumulation"] = old_acc * 2
        cfg = type(cfg).from_dict(raw, source="OOM retry")
        cfg.save(RunLayout(run).config)  # a later `resume` uses what worked
        done = checkpoints(run)
        resume_from = done[-1] if done else None
        msg = (
            f"CUDA out of memory at micro-batch {old_mb}; retry {tries}/{t.oom_retries} with micro-batch "
            f"{cfg.training.micro_batch_size} × {cfg.training.grad_accumulation} accumulation (same effective batch), "
            + (f"from {resume_from.name}" if resume_from else "from step 0")
        )
        log(msg)
        events.emit(
            "error",
            error_kind="oom",
            message=msg,
            hint="recovering automatically",
            recovering=True,
            retry=tries,
            micro_batch_size=cfg.training.micro_batch_size,
            grad_accumulation=cfg.training.grad_accumulation,
        )
        status_cb(oom_retries=tries, micro_batch_size=cfg.training.micro_batch_size)


def _spike_rollback(cfg, run: Path, guard: dict, events, spikes: int):
    """The loss-spike rule: the first spike rolls back to the newest complete checkpoint before
    it with half the learning rate (saved in config.yaml, so a later resume keeps it); a second
    one stops the run. Returns (config, checkpoint to resume from)."""
    step, loss, med = guard.get("step"), guard.get("loss") or 0.0, guard.get("median") or 0.0
    what = f"the loss spiked at step {step}: {loss:.4g}, over {cfg.training.guard.spike_factor:g} × the recent median {med:.4g}"
    if spikes >= 1:
        err = SageError(
            f"{what}, again after a rollback with a lower learning rate",
            kind="diverged",
            hint=f"lower training.learning_rate further (now {cfg.training.learning_rate:g}), raise warmup_ratio, "
            f"or check the data around step {step}",
        )
        events.emit("guard", action="stopped", message=err.message, hint=err.hint, **guard)
        raise err
    before = [c for c in checkpoints(run) if int(c.name.rsplit("-", 1)[1]) < int(step or 0)]
    resume_from = before[-1] if before else None
    raw = cfg.model_dump(mode="json")
    raw["training"]["learning_rate"] = cfg.training.learning_rate / 2
    new = type(cfg).from_dict(raw, source="loss-spike rollback")
    new.save(RunLayout(run).config)
    msg = (
        f"{what}; rolling back to {resume_from.name if resume_from else 'step 0'} with learning rate "
        f"{new.training.learning_rate:g} (was {cfg.training.learning_rate:g}); a second spike stops the run"
    )
    log(msg)
    events.emit(
        "guard",
        action="rollback",
        message=msg,
        checkpoint=str(resume_from) if resume_from else None,
        learning_rate=new.training.learning_rate,
        **guard,
    )
    return new, resume_from


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m sage_ft_tui.engine.worker RUN_DIR [--resume]", file=sys.stderr)
        return 2
    run = Path(argv[0]).resolve()
    resume = "--resume" in argv
    rank0 = _rank() == 0
    flags = StopFlags(run)
    started = _install_signals(flags, rank0)
    try:
        lock = run_lock(run) if rank0 else nullcontext()
        lock.__enter__()
    except SageError as e:
        log(e.oneline())
        return 3
    events = EventWriter(RunLayout(run).events) if rank0 else _NullWriter()
    status = (lambda **kw: write_status(run, **kw)) if rank0 else (lambda **kw: None)
    stop_hw = threading.Event()
    code = 0
    urls = run_urls() if rank0 else []  # the config's are added once it is read
    try:
        status(
            state="preparing",
            pid=os.getpgrp() if rank0 else os.getpid(),
            host=socket.gethostname(),
            started=time.time(),
            ended=None,
            exit_reason="",
        )
        events.emit("status", state="preparing", resume=resume)
        log(f"run {run.name}: preparing ({'resume' if resume else 'fresh start'})")
        cfg = load_config(run)
        if rank0:
            urls = run_urls(cfg)
            if urls and not have_apprise():
                log(MISSING)
        from sage_ft_tui.engine.offline import apply_offline_env

        apply_offline_env(cfg)  # before the hub, datasets and transformers are imported here
        train_ds, eval_ds, ckpt = _prepare(cfg, run, rank0, resume)
        if rank0:
            threading.Thread(target=_hw_sampler, args=(events, stop_hw, run), daemon=True).start()
        started.set()
        result = _train_with_oom_retries(
            cfg, run, train_ds, eval_ds, events=events, flags=flags, resume_from=ckpt, status_cb=status
        )
        _finished(result, events, status)
        if result.state != "cancelled":
            send(run, urls, log)
    except KeyboardInterrupt:
        status(state="cancelled", ended=time.time(), exit_reason="cancelled while preparing")
        _safe_emit(events, "status", state="cancelled")
        log("cancelled while preparing")
        code = 0
    except BaseException as exc:  # every failure becomes an honest status
        _failed(exc, run, events, status)
        code = 1
        send(run, urls, log)
    finally:
        stop_hw.set()
        events.close()
        lock.__exit__(None, None, None)
    return code


def _install_signals(flags: StopFlags, rank0: bool) -> threading.Event:
    """SIGTERM: checkpoint and stop (or stop at once while still preparing); SIGHUP ignored.
    Returns the event to set once training has started."""
    started = threading.Event()

    def on_term(signum, frame):
        if not flags.cancel:
            log("SIGTERM: saving a checkpoint, then stopping")
        flags.cancel = True
        if rank0 and not started.is_set():
            raise KeyboardInterrupt  # still preparing: nothing to save, stop now

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a dropped SSH session must not kill training
    return started


def _prepare(cfg, run: Path, rank0: bool, resume: bool):
    """Tokenized (train, eval) datasets and the checkpoint to resume from (or None)."""
    mdir = str(model_dir(cfg.model.name, revision=cfg.model.revision, metadata_only=False))
    if not rank0:
        _wait_for_rank0_data(run)  # rank 0 tokenizes into the shared cache; the others then load it
    train_ds, eval_ds = tokenized_datasets(cfg, run, mdir)
    if rank0:
        (RunLayout(run).data_ready).write_text(_launch_token())
    if train_ds is None or len(train_ds) == 0:
        raise SageError(
            "no training samples after tokenization",
            kind="data",
            hint="check data/data_report.json; every row may be longer than max_length",
        )
    ckpt = None
    if resume:
        done = checkpoints(run)
        ckpt = done[-1] if done else None
        log(f"resuming from {ckpt.name}" if ckpt else "no complete checkpoint: starting from step 0")
    return train_ds, eval_ds, ckpt


def _finished(result, events, status) -> None:
    # status.json, then the final event, then train.log's line: the order tui/follow.py relies on
    status(
        state=result.state,
        ended=time.time(),
        step=result.global_step,
        total_steps=result.total_steps,
        exit_reason="cancelled by user"
        if result.state == "cancelled"
        else f"early stop at step {result.global_step}"
        if result.guard and result.guard.get("rule") == "early_stop"
        else "",
    )
    events.emit("status", state=result.state, step=result.global_step)
    if result.guard and result.guard.get("rule") == "early_stop":
        g = result.guard
        log(
            f"early stop: the eval loss has not improved for {g['patience']} evaluations (best {g['best_eval_loss']:.4g} at step {g['best_step']})"
        )
    log(
        f"{result.state} at step {result.global_step}/{result.total_steps}"
        + (f"; adapter in {result.adapter_dir}" if result.adapter_dir else "")
    )


def _failed(exc: BaseException, run: Path, events, status) -> None:
    err = classify(exc, run)
    # the run folder first, train.log last (as in _finished): a reader that sees the log line
    # already finds the final event (tui/follow.py reads them the other way round)
    _safe_emit(events, "error", **err.as_event())
    try:
        status(state="failed", ended=time.time(), exit_reason=f"{err.kind}: {err.message}", error=err.as_event())
    except OSError:
        pass
    _safe_emit(events, "status", state="failed")
    if err.kind == "internal":
        traceback.print_exc()
    log(err.oneline())


def _safe_emit(events, kind, **fields):
    try:
        events.emit(kind, **fields)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
