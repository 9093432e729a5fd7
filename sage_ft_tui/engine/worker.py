"""The detached training process: `python -m sage_ft_tui.engine.worker <run> [--resume]`.

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

from .errors import SageError
from .events import EventWriter
from .fsutil import fmt_bytes, free_bytes, is_disk_full
from .runs import checkpoints, load_config, run_lock, write_status
from .trainer import StopFlags, run_training

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
        from .hardware import get_backend, snapshot_to_event
    except ImportError:
        return
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
        return SageError("CUDA out of memory", kind="oom",
                         hint="lower training.micro_batch_size or training.max_length, enable gradient_checkpointing, or use 4-bit quantization")
    if is_disk_full(exc):
        return SageError(f"disk full while writing to {run} ({fmt_bytes(free_bytes(run))} free)", kind="disk",
                         hint="free space (a checkpoint needs about the adapter's size plus optimizer state) and `sage-ft-tui resume` the run")
    return SageError(f"{name}: {text.splitlines()[0][:300] if text else 'internal error'}", kind="internal",
                     hint="see train.log for the traceback")


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m sage_ft_tui.engine.worker RUN_DIR [--resume]", file=sys.stderr)
        return 2
    run = Path(argv[0]).resolve()
    resume = "--resume" in argv
    rank0 = _rank() == 0
    flags = StopFlags(run)

    def on_term(signum, frame):
        if not flags.cancel:
            log("SIGTERM: saving a checkpoint, then stopping")
        flags.cancel = True
        if rank0 and not started.is_set():
            raise KeyboardInterrupt  # still preparing: nothing to save, stop now

    started = threading.Event()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a dropped SSH session must not kill training

    try:
        lock = run_lock(run) if rank0 else nullcontext()
        lock.__enter__()
    except SageError as e:
        log(e.oneline())
        return 3
    events = EventWriter(run / "events.jsonl") if rank0 else _NullWriter()
    status = (lambda **kw: write_status(run, **kw)) if rank0 else (lambda **kw: None)
    stop_hw = threading.Event()
    code = 0
    try:
        status(state="preparing", pid=os.getpgrp() if rank0 else os.getpid(), host=socket.gethostname(),
               started=time.time(), ended=None, exit_reason="")
        events.emit("status", state="preparing", resume=resume)
        log(f"run {run.name}: preparing ({'resume' if resume else 'fresh start'})")
        cfg = load_config(run)
        from .data import tokenized_datasets
        from .modelref import model_dir

        mdir = str(model_dir(cfg.model.name, revision=cfg.model.revision, metadata_only=False))
        train_ds, eval_ds = tokenized_datasets(cfg, run, mdir)
        if train_ds is None or len(train_ds) == 0:
            raise SageError("no training samples after tokenization", kind="data",
                            hint="check data/data_report.json; every row may be longer than max_length")
        ckpt = None
        if resume:
            done = checkpoints(run)
            ckpt = done[-1] if done else None
            log(f"resuming from {ckpt.name}" if ckpt else "no complete checkpoint: starting from step 0")
        if rank0:
            threading.Thread(target=_hw_sampler, args=(events, stop_hw, run), daemon=True).start()
        started.set()
        result = run_training(cfg, run, train_ds, eval_ds, events=events, flags=flags, resume_from=ckpt,
                              status_cb=status)
        status(state=result.state, ended=time.time(), step=result.global_step, total_steps=result.total_steps,
               exit_reason="cancelled by user" if result.state == "cancelled" else "")
        events.emit("status", state=result.state, step=result.global_step)
        log(f"{result.state} at step {result.global_step}/{result.total_steps}"
            + (f"; adapter in {result.adapter_dir}" if result.adapter_dir else ""))
    except KeyboardInterrupt:
        status(state="cancelled", ended=time.time(), exit_reason="cancelled while preparing")
        _safe_emit(events, "status", state="cancelled")
        log("cancelled while preparing")
        code = 0
    except BaseException as exc:  # every failure becomes an honest status
        err = classify(exc, run)
        if err.kind == "internal":
            traceback.print_exc()
        log(err.oneline())
        _safe_emit(events, "error", **err.as_event())
        try:
            status(state="failed", ended=time.time(), exit_reason=f"{err.kind}: {err.message}", error=err.as_event())
        except OSError:
            pass
        _safe_emit(events, "status", state="failed")
        code = 1
    finally:
        stop_hw.set()
        events.close()
        lock.__exit__(None, None, None)
    return code


def _safe_emit(events, kind, **fields):
    try:
        events.emit(kind, **fields)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
