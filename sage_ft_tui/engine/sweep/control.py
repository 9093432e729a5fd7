"""Starting, resuming and stopping a sweep: its folder, its spec, its detached driver."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.paths import HOME_ENV, check_writable_dir, runs_home, safe_name, validate_run_name
from sage_ft_tui.engine.proc import pid_alive, spawn_detached
from sage_ft_tui.engine.queue import entries, remove
from sage_ft_tui.engine.runs.control import cancel
from sage_ft_tui.engine.runs.state import derive_state
from sage_ft_tui.engine.sweep.layout import SweepLayout, sweeps_home
from sage_ft_tui.engine.sweep.params import Param, check_params
from sage_ft_tui.engine.sweep.prune import PRUNE_AFTER
from sage_ft_tui.engine.sweep.results import sweep_results
from sage_ft_tui.engine.sweep.store import (
    SweepSpec,
    driver_pid,
    find_sweep,
    load_spec,
    require_optuna,
    save_spec,
    sweep_dir,
)

DRIVER_MODULE = "sage_ft_tui.engine.sweep.driver"


def ensure_driver(lay: SweepLayout) -> int:
    """Start the sweep's driver unless one runs; its pid. The driver runs in its own session
    (a dropped SSH connection does not end it) with the runs home the sweep lives in."""
    pid = driver_pid(lay)
    if pid:
        return pid
    env = {**os.environ, HOME_ENV: str(lay.runs_home)}
    proc = spawn_detached(
        [sys.executable, "-m", DRIVER_MODULE, str(lay.root)], cwd=lay.root, log=lay.driver_log, env=env
    )
    deadline = time.time() + 10.0  # until it holds the lock, so a second call finds it
    while time.time() < deadline and proc.poll() is None and not driver_pid(lay):
        time.sleep(0.05)
    return proc.pid


def default_name(base: RunConfig, params: list[Param], seed: int, source: str) -> str:
    stem = safe_name(Path(source).stem if source else base.task, 30) or "sweep"
    probe = SweepSpec(name="", base=base.model_dump(mode="json"), params=params, trials=1, seed=seed)
    return f"{stem}-{probe.search_key()}"


def start_sweep(
    base: RunConfig,
    params: list[Param],
    *,
    trials: int,
    name: Optional[str] = None,
    parallel: int = 1,
    seed: int = 0,
    prune: bool = True,
    prune_after: int = PRUNE_AFTER,
    source: str = "",
    home: Optional[Path] = None,
) -> tuple[SweepLayout, int, bool]:
    """Create the sweep (or find the same search made before) and start its driver.
    Returns the sweep, the driver's pid and whether the sweep was new."""
    require_optuna()
    if trials < 1:
        raise SageError(f"--trials {trials}: a sweep runs at least one trial", hint="e.g. --trials 12")
    if parallel < 1:
        raise SageError(f"--parallel {parallel}: at least one trial at a time", hint="e.g. --parallel 2")
    check_params(base, params)
    home = check_writable_dir(Path(home) if home else runs_home(), "the runs home", HOME_ENV)
    base = base.model_copy(update={"name": None})
    spec = SweepSpec(
        name=validate_run_name(name or default_name(base, params, seed, source)),
        base=base.model_dump(mode="json"),
        params=params,
        trials=trials,
        parallel=parallel,
        seed=seed,
        prune=prune,
        prune_after=prune_after,
        source=source,
    )
    lay = sweep_dir(spec.name, home)
    new = not lay.is_ours()
    if lay.root.exists() and new:
        raise SageError(f"{lay.root} exists and is not a sweep of ours", hint="choose another --name")
    if not new:
        old = load_spec(lay)
        if old.search_key() != spec.search_key():
            raise SageError(
                f"sweep {spec.name} exists and searches something else (another config, --param or --seed)",
                hint=f"continue it with `sage-ft-tui sweep --resume {spec.name}`, or give this one another --name",
            )
        # Re-running the same command continues it; more --trials (or another --parallel) extends it.
        spec = SweepSpec.from_dict({**old.to_dict(), "trials": max(trials, old.trials), "parallel": parallel})
    check_writable_dir(sweeps_home(home), "the sweeps folder", HOME_ENV)
    save_spec(lay, spec)
    return lay, ensure_driver(lay), new


def resume_sweep(ref: str, home: Optional[Path] = None, *, trials: Optional[int] = None) -> tuple[SweepLayout, int]:
    require_optuna()
    lay = find_sweep(ref, home)
    if trials is not None:
        spec = load_spec(lay)
        if trials > spec.trials:
            spec.trials = trials
            save_spec(lay, spec)
    return lay, ensure_driver(lay)


def stop_sweep(lay: SweepLayout, *, cancel_trials: bool = True) -> list[str]:
    """Stop the driver (SIGTERM; it ends after its current poll) and, by default, cancel the
    trials it has running and take its queued ones out of the queue. What was stopped, said."""
    said = []
    pid = driver_pid(lay)
    if pid and pid > 0:
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 10
        while time.time() < deadline and driver_pid(lay):
            time.sleep(0.1)
        said.append(f"driver {pid} stopped" if not pid_alive(pid) else f"driver {pid} asked to stop")
    if cancel_trials:
        queued = {Path(e.run).resolve() for e in entries(home=lay.runs_home) if e.state == "queued"}
        for t in sweep_results(lay).trials:
            if not t.run or t.state not in ("running", "queued"):
                continue
            run = Path(t.run)
            state = derive_state(run)[0]
            if state == "created" and run.resolve() in queued:
                remove(run, home=lay.runs_home)
                said.append(f"{run.name} taken out of the queue")
            elif state in ("preparing", "running"):
                cancel(run)
                said.append(f"{run.name} cancelled")
    return said


__all__ = ["start_sweep", "resume_sweep", "stop_sweep", "ensure_driver", "default_name"]
