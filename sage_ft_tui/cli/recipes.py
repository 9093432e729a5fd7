"""`demo` and `quickstart`: ready-made runs that start training at once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from sage_ft_tui.cli import options as opt
from sage_ft_tui.cli.base import fail, headless, open_tui, out
from sage_ft_tui.cli.planning import Target
from sage_ft_tui.cli.runs import chain_flags, notify_for_worker, origin_lines, print_data_block, train_run
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.layout import ACTIVE_STATES, RunLayout


def demo(
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Train this many steps (default: the demo's)."),
    detach: bool = typer.Option(False, "--detach", help="Run in the background."),
    json_lines: bool = opt.JsonEventsOpt,
    no_tui: bool = opt.NoTui,
):
    """The tiny built-in model on bundled sample data: a complete run on CPU in under a minute."""
    try:
        from sage_ft_tui.engine.recipes.demo import demo_config
        from sage_ft_tui.engine.runs.start import start_run

        cfg = demo_config(max_steps=max_steps)
        run_dir = start_run(cfg, launch=False).run
        out(f"created run {run_dir.name} (tiny-demo model, bundled sample data)")
        headless_here = _train_and_watch(run_dir, no_tui=no_tui, detach=detach, json_lines=json_lines)
        if detach:
            return
        if headless_here:
            _show_demo_answers(run_dir, json_lines=json_lines)
        else:  # the Monitor closed (ctrl+q): the answers the README promises, once the run is done
            _answers_after_monitor(run_dir)
    except SageError as e:
        fail(e)


def _show_demo_answers(run_dir: Path, *, json_lines: bool) -> None:
    """End the demo with its proof: the question the demo data taught, base vs tuned."""
    import json

    from sage_ft_tui.engine.recipes.demo import demo_answers

    a = demo_answers(run_dir)
    if json_lines or not sys.stdout.isatty():
        out(json.dumps({"kind": "demo_answers", **a}))
        return
    out("")
    out(f"you>   {a['question']}")
    out(f"base>  {a['base']}")
    out(f"tuned> {a['tuned']}")
    out(f"next: sage-ft-tui eval {run_dir.name}   (base vs tuned on the held-out answers)")


def _answers_after_monitor(run_dir: Path) -> None:
    from sage_ft_tui.cli.runs import follow_headless
    from sage_ft_tui.engine.runs.state import derive_state

    state = derive_state(run_dir)[0]
    if state in ACTIVE_STATES:  # closed early: the demo is short, wait for it here (ctrl+c stops waiting)
        out(f"{run_dir.name} is still training; its answers follow when it ends (ctrl+c: stop waiting, it goes on).")
        state = follow_headless(run_dir, json_lines=False)
    if state == "completed":
        _show_demo_answers(run_dir, json_lines=False)
    else:
        out(f"{run_dir.name} ended {state}: no answers to show (`sage-ft-tui resume {run_dir.name}` continues it).")


def _train_and_watch(run_dir: Path, *, no_tui: bool, detach: bool, json_lines: bool) -> bool:
    """Start training; on a terminal, watch it in the wizard's monitor, else headless.
    True when it ran headless here (and completed, or was detached)."""
    if not headless(no_tui) and sys.stdout.isatty() and not detach and not json_lines:
        from sage_ft_tui.engine.runs.start import launch_run

        for warning in launch_run(run_dir).warnings:
            typer.echo(warning, err=True)
        open_tui(attach=str(run_dir))
        return False
    train_run(run_dir, detach=detach, json_lines=json_lines, resume=False)
    return True


def quickstart(
    task: str = typer.Argument(..., help=opt.TASK_HELP),
    data: Optional[List[str]] = opt.DataOpt,
    model: Optional[str] = opt.ModelOpt,
    name: Optional[str] = opt.NameOpt,
    preset: Optional[str] = opt.PresetOpt,
    epochs: Optional[float] = opt.EpochsOpt,
    max_steps: Optional[int] = opt.StepsOpt,
    max_length: Optional[int] = opt.LenOpt,
    lr: Optional[float] = opt.LrOpt,
    sets: Optional[List[str]] = opt.SetOpt,
    repo: Optional[Path] = typer.Option(None, "--repo", help="code task: the repository (default: this git root)."),
    detach: bool = typer.Option(False, "--detach", help="Train in the background."),
    json_lines: bool = opt.JsonEventsOpt,
    from_run: Optional[str] = opt.FromRunOpt,
    rewards: Optional[List[str]] = opt.RewardOpt,
    gpu: Optional[str] = opt.GpuOpt,
    vram: Optional[float] = opt.VramOpt,
    gpus: Optional[int] = opt.GpusOpt,
    precision: Optional[str] = opt.PrecisionOpt,
    notify: Optional[List[str]] = opt.NotifyOpt,
    no_tui: bool = opt.NoTui,
):
    """Data → settings for this hardware (or the --gpu/--vram target) → a run that starts training at once."""
    try:
        notify_for_worker(notify)
        from sage_ft_tui.engine.config.build import given
        from sage_ft_tui.engine.paths import validate_run_name
        from sage_ft_tui.engine.recipes.quickstart import quickstart_build
        from sage_ft_tui.engine.runs.start import start_run

        if from_run and not model:  # the chained run keeps its base model (and the preset fits it)
            from sage_ft_tui.engine.runs.chain import from_run as adapter_of

            model = adapter_of(from_run)[1]
        target = Target(gpu, vram, gpus, precision).check()
        err = sys.stderr if json_lines else sys.stdout  # keep stdout pure JSON lines
        flags = {
            "name": validate_run_name(name) if name else None,
            "training.epochs": epochs,
            "training.max_steps": max_steps,
            "training.max_length": max_length,
            "training.learning_rate": lr,
            **target.flags(),
            **chain_flags(from_run, rewards, model),
        }
        built = quickstart_build(
            task,
            data=data,
            model=model,
            repo=repo,
            preset=preset,
            target=target.layer(),
            flags=given(flags),
            sets=sets or (),
            say=lambda line: print(line, file=err, flush=True),  # the model chosen, before it is loaded
        )
        if rewards and built.config.task != "grpo":
            raise SageError("--reward is for the grpo task", hint="add --task grpo, or leave --reward out")
        cfg = built.config
        for warning in built.warnings:
            typer.echo(warning, err=True)
        if built.fit is not None:
            for line in built.fit.lines:
                print(f"  {line}", file=err)
        run_dir = start_run(cfg, launch=False).run
        print(f"created run {run_dir.name}", file=err)
        print_data_block(run_dir, file=err)
        for line in origin_lines(built):
            print(line, file=err)
        if task == "code":
            from sage_ft_tui.engine.fsutil import read_json
            from sage_ft_tui.engine.recipes.code import scan_summary_lines

            scan = (read_json(RunLayout(run_dir).data_report, {}) or {}).get("code_scan")
            for line in scan_summary_lines(scan) if scan else []:
                print(f"  {line}", file=err)
        _train_and_watch(run_dir, no_tui=no_tui, detach=detach, json_lines=json_lines)
    except SageError as e:
        fail(e)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("quickstart")(quickstart)
