"""One training phase: a run started the one way runs start (start_run → the detached
worker), waited for within its time budget while NVML is sampled, cut short (SIGTERM:
checkpoint, `cancelled`) when the budget ends, then read back from its event stream."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.runs.layout import ACTIVE_STATES, FINAL_STATES, RunLayout


@dataclass
class Spec:
    """What one phase trains."""

    name: str
    model_dir: Path
    data: Path
    steps: int
    micro_batch: int
    length: int
    checkpointing: bool = False
    quantization: str = "none"
    optimizer: str = "adamw_torch_fused"
    precision: str = "bf16"
    oom_retries: int = 0
    logging_steps: int = 5
    env: dict = field(default_factory=dict)  # the engine's switches for this run only (SAGE_FT_LIGER=0, ...)

    def config(self) -> RunConfig:
        return RunConfig.from_dict(
            {
                "name": f"gpu-check-{self.name}",
                "task": "text",
                "model": {"name": str(self.model_dir), "quantization": self.quantization},
                "data": {"paths": [str(self.data)], "format": "text", "validation_split": 0.0},
                "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
                "training": {
                    "max_steps": self.steps,
                    "micro_batch_size": self.micro_batch,
                    "grad_accumulation": 1,
                    "max_length": self.length,
                    "packing": True,
                    "gradient_checkpointing": self.checkpointing,
                    "precision": self.precision,
                    "logging_steps": self.logging_steps,
                    "save_steps": 1_000_000,  # no checkpoint inside the timed window
                    "save_total_limit": 1,
                    "optimizer": self.optimizer,
                    "oom_retries": self.oom_retries,
                },
            },
            source="gpu_check",
        )


@dataclass
class Finished:
    spec: Spec
    run: Path
    cfg: RunConfig  # as launched (an OOM retry rewrites the run's own config.yaml)
    state: str
    wall_s: float
    cut: bool
    events: list[dict]
    nvml_baseline: Optional[int]  # device memory in use before the launch (other processes)
    nvml_device_peak: Optional[int]  # the highest device memory in use while it ran
    nvml_process_peak: Optional[int]  # the worker's own, where the driver names its pid
    log_tail: list[str] = field(default_factory=list)


def _gpu0(backend):
    try:
        snap = backend.snapshot()
    except Exception:
        return None
    return snap.gpus[0] if snap.gpus else None


def train(
    spec: Spec, home: Path, allow_s: float, *, while_running: Optional[Callable[[Path, float], None]] = None
) -> Finished:
    """Start `spec`, wait up to `allow_s` seconds (then cut it short), return what it did.
    `while_running(run, seconds_left)` is called once the worker is launched (the monitor)."""
    from sage_ft_tui.engine.hardware.probe import get_backend
    from sage_ft_tui.engine.proc import kill_group, pid_alive
    from sage_ft_tui.engine.runs.control import cancel
    from sage_ft_tui.engine.runs.events import read_events
    from sage_ft_tui.engine.runs.start import start_run
    from sage_ft_tui.engine.runs.state import derive_state, read_status

    t0 = time.monotonic()
    deadline = t0 + allow_s
    backend = get_backend()
    g = _gpu0(backend)
    baseline = g.mem_used if g else None
    cfg = spec.config()
    saved = {k: os.environ.get(k) for k in spec.env}
    os.environ.update(spec.env)  # the detached worker inherits them at launch
    try:
        started = start_run(cfg, home=home, unique=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    run = started.run
    pid = read_status(run).get("pid")
    dev_peak: Optional[int] = None
    proc_peak: Optional[int] = None
    stop = threading.Event()

    def sample() -> None:  # NVML once a second, in a thread: the monitor may hold this one
        nonlocal dev_peak, proc_peak
        while not stop.is_set():
            g = _gpu0(backend)
            if g is not None:
                dev_peak = max(dev_peak or 0, g.mem_used)
                for p in g.processes:
                    if p.pid == pid and p.used_memory:
                        proc_peak = max(proc_peak or 0, p.used_memory)
            stop.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if while_running is not None:
        try:
            while_running(run, max(0.0, deadline - time.monotonic()))
        except Exception as e:  # the monitor's failure is reported by it; training goes on
            print(f"   monitor: {type(e).__name__}: {e}", flush=True)
    cut = False
    state = derive_state(run)[0]
    while state not in FINAL_STATES:
        if time.monotonic() >= deadline and not cut:
            cut = True
            if state in ACTIVE_STATES:
                try:
                    cancel(run)  # SIGTERM: the worker saves a checkpoint and ends `cancelled`
                except Exception:
                    pass
            deadline = time.monotonic() + 45  # what a checkpoint of a LoRA adapter takes, at most
        elif cut and time.monotonic() >= deadline:
            state = "timeout"  # the worker did not stop: kill it, so it cannot slow the next phase
            if pid:
                kill_group(int(pid), grace=5.0)
            break
        time.sleep(0.5)
        state = derive_state(run)[0]
    # The final status is written before the process lets go of the GPU: wait for it, so the
    # next phase's baseline does not count this worker's memory.
    end = time.monotonic() + 30
    while pid and pid_alive(int(pid)) and time.monotonic() < end:
        time.sleep(0.2)
    stop.set()
    sampler.join(timeout=5)
    events = read_events(RunLayout(run).events).events
    tail: list[str] = []
    if state != "completed":
        try:
            tail = RunLayout(run).train_log.read_text(errors="replace").splitlines()[-20:]
        except OSError:
            pass
    return Finished(
        spec=spec,
        run=run,
        cfg=cfg,
        state=state,
        wall_s=time.monotonic() - t0,
        cut=cut,
        events=events,
        nvml_baseline=baseline,
        nvml_device_peak=dev_peak,
        nvml_process_peak=proc_peak,
        log_tail=tail,
    )
