"""`sweep`: hyperparameter search over runs (engine/sweep): start one, list them, show one
ranked, resume, stop, and write the best trial's config as a full run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer

from sage_ft_tui.cli.base import fail, out
from sage_ft_tui.cli.options import PresetOpt, SetOpt
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.sweep.prune import PRUNE_AFTER

DEFAULT_TRIALS = 12
ParamOpt = typer.Option(
    None,
    "--param",
    "-p",
    help="KEY=DIST:ARGS to search (repeatable): loguniform:LOW,HIGH | uniform:LOW,HIGH | int:LOW,HIGH | "
    "choice:A,B,... e.g. training.learning_rate=loguniform:1e-5,1e-3",
)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else str(v)


def print_sweep(res) -> None:
    """One sweep's trials, ranked by its objective (best first)."""
    spec = res.spec
    out(
        f"sweep {res.name}: {res.done} of {spec.trials} trials done, driver {res.driver}; "
        f"ranked by {res.objective_text} (lower is better)"
    )
    if res.driver_error:
        out(f"  driver stopped: {res.driver_error}")
    keys = [p.key for p in spec.params]
    head = ["rank", "trial", "state", "value", "step", *keys, "run"]
    rows = []
    for i, t in enumerate(res.trials, 1):
        rank = str(i) if t.state == "complete" else ""
        rows.append(
            [
                rank,
                f"#{t.number}",
                t.state,
                _fmt(t.value),
                _fmt(t.step),
                *(_fmt(t.params.get(k)) for k in keys),
                t.run_name,
            ]
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    out("  " + "  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for r in rows:
        out("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    notes = [t for t in res.trials if t.note and t.state in ("pruned", "failed", "interrupted")]
    for t in notes:
        out(f"  #{t.number}: {t.note}")
    if res.best:
        b = res.best
        out(f"best: trial #{b.number} ({b.run_name}), {res.objective_text.split(' (')[0]} {_fmt(b.value)}")
        out(f"  as a full run: sage-ft-tui sweep {res.name} --best")


def sweep(
    target: Optional[str] = typer.Argument(None, help="A config.yaml to search from, or a sweep's name to show."),
    params: Optional[List[str]] = ParamOpt,
    trials: Optional[int] = typer.Option(None, "--trials", "-n", help="How many trials (runs) in all (default 12)."),
    name: Optional[str] = typer.Option(None, "--name", help="The sweep's name (default: config name + a hash)."),
    parallel: int = typer.Option(1, "--parallel", help="Trials in the queue at once (on free GPUs)."),
    seed: int = typer.Option(0, "--seed", help="The TPE sampler's seed."),
    no_prune: bool = typer.Option(False, "--no-prune", help="Run every trial to its end (no median pruning)."),
    prune_after: int = typer.Option(
        PRUNE_AFTER, "--prune-after", help="Completed trials before the median rule may prune others."
    ),
    preset: Optional[str] = PresetOpt,
    sets: Optional[List[str]] = SetOpt,
    list_all: bool = typer.Option(False, "--list", help="List the sweeps."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue this sweep (after a reboot)."),
    best: bool = typer.Option(False, "--best", help="Write the best trial's config as a full run (best.yaml)."),
    start_best: bool = typer.Option(False, "--start", help="With --best: also start that run now."),
    stop: bool = typer.Option(False, "--stop", help="Stop the sweep: its driver, running and queued trials."),
    wait: bool = typer.Option(False, "--wait", help="Stay until the sweep ends, printing each trial as it ends."),
    json_out: bool = typer.Option(False, "--json", help="JSON output."),
):
    """Hyperparameter search: trials are normal runs, in the queue, chosen by Optuna (TPE) and pruned
    by the median rule on their eval loss. Resumable: `sweep --resume NAME` or the same command again."""
    try:
        _sweep(
            target,
            params,
            trials,
            name,
            parallel,
            seed,
            no_prune,
            prune_after,
            preset,
            sets,
            list_all,
            resume,
            best,
            start_best,
            stop,
            wait,
            json_out,
        )
    except SageError as e:
        fail(e)


def _sweep(
    target,
    params,
    trials,
    name,
    parallel,
    seed,
    no_prune,
    prune_after,
    preset,
    sets,
    list_all,
    resume,
    best,
    start_best,
    stop,
    wait,
    json_out,
) -> None:
    from sage_ft_tui.engine.sweep.results import sweep_results
    from sage_ft_tui.engine.sweep.store import find_sweep, list_sweeps

    if list_all:
        found = [sweep_results(s) for s in list_sweeps()]
        if json_out:
            out(json.dumps([r.to_dict() for r in found]))
            return
        if not found:
            out("no sweeps yet: sage-ft-tui sweep CONFIG --param KEY=DIST:ARGS --trials N")
        for r in found:
            b = r.best
            best_s = f"best #{b.number} {_fmt(b.value)} ({b.run_name})" if b else "no trial complete yet"
            out(f"{r.name}  {r.done}/{r.spec.trials} trials  driver {r.driver}  {best_s}")
        return
    if resume:
        from sage_ft_tui.engine.sweep.control import resume_sweep

        lay, pid = resume_sweep(resume, trials=trials)
        out(f"sweep {lay.name} continues (driver pid {pid}); watch it: sage-ft-tui sweep {lay.name}")
        if wait:
            _wait(lay, json_out)
        return
    if target is None:
        raise SageError("sweep: give a config.yaml to search from, or a sweep's name", hint="or `sweep --list`")
    p = Path(target).expanduser()
    if p.is_file() and p.suffix in (".yaml", ".yml"):
        _start(
            p,
            params or [],
            trials or DEFAULT_TRIALS,
            name,
            parallel,
            seed,
            no_prune,
            prune_after,
            preset,
            sets or [],
            wait,
            json_out,
        )
        return
    if params:
        raise SageError(f"{target}: no such config file", hint="give the config.yaml the trials start from")
    lay = find_sweep(target)
    if stop:
        from sage_ft_tui.engine.sweep.control import stop_sweep

        said = stop_sweep(lay)
        out(f"sweep {lay.name}: " + ("; ".join(said) if said else "nothing was running"))
        return
    if best:
        _best(lay, start_best, json_out)
        return
    res = sweep_results(lay)
    out(json.dumps(res.to_dict())) if json_out else print_sweep(res)


def _start(config, params, trials, name, parallel, seed, no_prune, prune_after, preset, sets, wait, json_out) -> None:
    from sage_ft_tui.engine.config.build import build_config
    from sage_ft_tui.engine.sweep.control import start_sweep
    from sage_ft_tui.engine.sweep.params import parse_param

    parsed = [parse_param(item) for item in params]  # each bad one: one line, before anything is made
    built = build_config(file=config, preset=preset, sets=sets)
    for warning in built.warnings:
        typer.echo(warning, err=True)
    lay, pid, new = start_sweep(
        built.config,
        parsed,
        trials=trials,
        name=name,
        parallel=parallel,
        seed=seed,
        prune=not no_prune,
        prune_after=prune_after,
        source=str(config),
    )
    verb = "started" if new else "continues"
    out(f"sweep {lay.name} {verb}: {trials} trials, driver pid {pid} (log {lay.driver_log})")
    out(f"  watch it: sage-ft-tui sweep {lay.name}    stop it: sage-ft-tui sweep {lay.name} --stop")
    if wait:
        _wait(lay, json_out)


def _wait(lay, json_out: bool) -> None:
    """Print each trial as it ends, until the driver ends; then the ranking."""
    from sage_ft_tui.engine.sweep.results import sweep_results

    said: set[int] = set()
    while True:
        res = sweep_results(lay)
        for t in sorted(res.trials, key=lambda t: t.number):
            if t.number not in said and t.state in ("complete", "pruned", "failed", "interrupted"):
                said.add(t.number)
                if not json_out:
                    out(f"trial #{t.number} {t.state}: {_fmt(t.value)} {t.note}".rstrip())
        if res.driver != "running":
            break
        time.sleep(1.0)
    res = sweep_results(lay)
    out(json.dumps(res.to_dict())) if json_out else print_sweep(res)
    if res.driver_error:
        raise SageError(f"sweep {lay.name}: {res.driver_error}", hint=f"see {lay.driver_log}")


def _best(lay, start_best: bool, json_out: bool) -> None:
    from sage_ft_tui.engine.sweep.results import write_best

    b, path = write_best(lay)
    if start_best:
        from sage_ft_tui.engine.config.schema import RunConfig
        from sage_ft_tui.engine.runs.start import start_run

        started = start_run(RunConfig.load(path))
        for warning in started.warnings:
            typer.echo(warning, err=True)
        if json_out:
            out(json.dumps({"trial": b.to_dict(), "config": str(path), "run": str(started.run), "pid": started.pid}))
            return
        out(f"best trial #{b.number}: started {started.run.name} from {path} (pid {started.pid})")
        out(f"  watch it: sage-ft-tui attach {started.run.name}")
        return
    if json_out:
        out(json.dumps({"trial": b.to_dict(), "config": str(path)}))
        return
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in b.params.items())
    out(f"best trial #{b.number} ({b.run_name}, {_fmt(b.value)}): {params}")
    out(f"wrote {path}: the base config with these values, as a full run")
    out(f"  start it: sage-ft-tui run {path}    (or: sage-ft-tui sweep {lay.name} --best --start)")


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
