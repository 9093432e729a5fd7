"""The `sage-ft-tui` command line (Typer).

No sub-command opens the wizard; `--no-tui` (before or after a sub-command) keeps
everything headless. Imports here stay light so `--help` is fast: the engine's heavy
parts are imported inside the commands that need them.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .engine.errors import SageError

app = typer.Typer(
    name="sage-ft-tui",
    help="Fine-tune a causal LM with LoRA/QLoRA from a terminal wizard, or headless with --no-tui.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Modules that add their own commands: each has `register(app)`.
_COMMAND_MODULES: tuple[str, ...] = ("hardware", "serve")

NoTui = typer.Option(False, "--no-tui", help="Headless: no full-screen app.")


class _State:
    no_tui = False


def headless(flag: bool = False) -> bool:
    return flag or _State.no_tui or os.environ.get("SAGE_FT_NO_TUI") == "1"


def out(msg: str = "") -> None:
    typer.echo(msg)


def fail(e: SageError, code: int = 2) -> None:
    typer.echo(e.oneline(), err=True)
    raise typer.Exit(code)


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    no_tui: bool = typer.Option(False, "--no-tui", help="Headless: no full-screen app; print and exit."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
):
    """With no command, open the wizard."""
    _State.no_tui = no_tui
    if version:
        from . import __version__

        out(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        if headless():
            out(ctx.get_help())
            out("")
            _print_runs()
            raise typer.Exit()
        _open_tui()


def _open_tui(**kw) -> None:
    from .tui.app import run_app

    run_app(**kw)


# ---- start / run ----------------------------------------------------------------


def _build_config(
    config: Optional[Path], task: Optional[str], model: Optional[str], data: Optional[List[str]],
    name: Optional[str], preset: Optional[str], epochs: Optional[float], max_steps: Optional[int],
    max_length: Optional[int], lr: Optional[float], sets: Optional[List[str]],
):
    from .engine.config import RunConfig, apply_preset

    cfg = RunConfig.load(config) if config else RunConfig()
    raw = cfg.model_dump(mode="json")
    if task:
        raw["task"] = task
    if model:
        raw["model"]["name"] = model
    if data:
        raw["data"]["paths"] = [str(Path(d).expanduser().resolve()) for d in data]
    if name:
        from .engine.paths import validate_run_name

        raw["name"] = validate_run_name(name)
    cfg = RunConfig.from_dict(raw, source="flags")
    if preset:
        cfg = apply_preset(cfg, preset)
    raw = cfg.model_dump(mode="json")
    if epochs is not None:
        raw["training"]["epochs"] = epochs
    if max_steps is not None:
        raw["training"]["max_steps"] = max_steps
    if max_length is not None:
        raw["training"]["max_length"] = max_length
    if lr is not None:
        raw["training"]["learning_rate"] = lr
    cfg = RunConfig.from_dict(raw, source="flags")
    if sets:
        cfg = cfg.with_overrides(sets)
    if not cfg.data.paths and cfg.task != "code":
        raise SageError("no training data given", hint="pass --data FILE (or a folder of files)")
    return cfg


TaskOpt = typer.Option(None, "--task", "-t", help="qa | instruction | chat | text | code")
ModelOpt = typer.Option(None, "--model", "-m", help="Hub id, local path, or tiny-demo.")
DataOpt = typer.Option(None, "--data", "-d", help="Data file or folder (repeatable).")
NameOpt = typer.Option(None, "--name", help="Run name (default: task-model-timestamp).")
PresetOpt = typer.Option(None, "--preset", help="rtx_3060 | rtx_4090 | a100 | h100 | minimal | cpu | auto")
EpochsOpt = typer.Option(None, "--epochs", help="Training epochs.")
StepsOpt = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps.")
LenOpt = typer.Option(None, "--max-length", help="Max tokens per sample.")
LrOpt = typer.Option(None, "--lr", help="Learning rate.")
SetOpt = typer.Option(None, "--set", help="Any config field: key=value (dotted, repeatable).")


@app.command()
def start(
    task: Optional[str] = TaskOpt, model: Optional[str] = ModelOpt, data: Optional[List[str]] = DataOpt,
    name: Optional[str] = NameOpt, preset: Optional[str] = PresetOpt, epochs: Optional[float] = EpochsOpt,
    max_steps: Optional[int] = StepsOpt, max_length: Optional[int] = LenOpt, lr: Optional[float] = LrOpt,
    sets: Optional[List[str]] = SetOpt,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Start from this config.yaml."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    no_tui: bool = NoTui,
):
    """Create a run folder: config.yaml and the prepared data (does not train; see `run`)."""
    try:
        from .engine.runs import create_run

        cfg = _build_config(config, task, model, data, name, preset, epochs, max_steps, max_length, lr, sets)
        run = create_run(cfg)
    except SageError as e:
        fail(e)
    _print_created(run, json_out)


def _print_created(run: Path, json_out: bool) -> None:
    from .engine.fsutil import read_json

    report = read_json(run / "data" / "data_report.json", {}) or {}
    if json_out:
        out(json.dumps({"run": str(run), "name": run.name, "data": report.get("counts", {})}))
        return
    c = report.get("counts", {})
    out(f"created run {run.name}")
    out(f"  folder   {run}")
    out(f"  data     {c.get('train', 0)} train / {c.get('eval', 0)} eval samples, {c.get('skipped', 0)} bad rows skipped")
    out(f"  train it `sage-ft-tui run {run.name}` (add --detach to run in the background)")


@app.command()
def run(
    target: str = typer.Argument(..., help="A run (name or folder) or a config.yaml."),
    detach: bool = typer.Option(False, "--detach", help="Start in the background and return."),
    json_lines: bool = typer.Option(False, "--json", help="Print events as JSON lines even on a terminal."),
    no_tui: bool = NoTui,
):
    """Train a run (or a config.yaml, which first becomes a run)."""
    try:
        run_dir = _run_or_config(target)
        _train(run_dir, detach=detach, json_lines=json_lines, resume=False)
    except SageError as e:
        fail(e)


def _run_or_config(target: str) -> Path:
    from .engine.paths import resolve_run

    p = Path(target).expanduser()
    if p.is_file() and p.suffix in (".yaml", ".yml"):
        from .engine.config import RunConfig
        from .engine.runs import create_run

        run_dir = create_run(RunConfig.load(p), unique=True)  # a config from an old run makes a sibling
        out(f"created run {run_dir.name} from {p}")
        return run_dir
    return resolve_run(target)


def _train(run_dir: Path, *, detach: bool, json_lines: bool, resume: bool) -> None:
    from .engine.runs import launch, shared_gpu_warning

    warning = shared_gpu_warning(run_dir)
    if warning:
        typer.echo(warning, err=True)
    pid = launch(run_dir, resume=resume)
    if detach:
        out(f"started {run_dir.name} in the background (pid {pid}); log: {run_dir / 'train.log'}")
        out(f"  watch it: sage-ft-tui attach {run_dir.name}")
        return
    state = _follow(run_dir, json_lines=json_lines)
    if state != "completed":
        raise typer.Exit(1)


def _follow(run_dir: Path, *, json_lines: bool) -> str:
    from .headless import follow_run

    try:
        return follow_run(run_dir, json_lines=json_lines or not sys.stdout.isatty())
    except KeyboardInterrupt:
        out(f"\ndetached; {run_dir.name} goes on. `sage-ft-tui attach {run_dir.name}` to watch, `cancel` to stop.")
        raise typer.Exit(130)


# ---- list / attach / cancel / resume / clean -------------------------------------


@app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json", help="JSON output."), no_tui: bool = NoTui):
    """Every run with its state, step, last loss and age."""
    _print_runs(json_out)


def _print_runs(json_out: bool = False) -> None:
    from .engine.runs import list_runs
    from .headless import runs_table

    runs = list_runs()
    if json_out:
        out(json.dumps([r.to_dict() for r in runs]))
    else:
        runs_table(runs)


@app.command()
def attach(
    target: str = typer.Argument(..., help="Run name or folder."),
    json_lines: bool = typer.Option(False, "--json", help="Print events as JSON lines."),
    no_tui: bool = NoTui,
):
    """Replay a run's events, then follow it until it ends."""
    try:
        from .engine.paths import resolve_run

        run_dir = resolve_run(target)
    except SageError as e:
        fail(e)
    if not headless(no_tui) and sys.stdout.isatty():
        _open_tui(attach=str(run_dir))
        return
    state = _follow(run_dir, json_lines=json_lines)
    raise typer.Exit(0 if state == "completed" else 1)


@app.command()
def cancel(target: str = typer.Argument(..., help="Run name or folder."), no_tui: bool = NoTui):
    """Stop a run: it saves a checkpoint and ends as cancelled."""
    try:
        from .engine.paths import resolve_run
        from .engine.runs import cancel as do_cancel
        from .engine.runs import derive_state

        run_dir = resolve_run(target)
        do_cancel(run_dir, wait=60)
        out(f"{run_dir.name}: {derive_state(run_dir)[0]}")
    except SageError as e:
        fail(e)


@app.command()
def resume(
    target: str = typer.Argument(..., help="Run name or folder."),
    detach: bool = typer.Option(False, "--detach", help="Resume in the background."),
    json_lines: bool = typer.Option(False, "--json", help="Print events as JSON lines."),
    no_tui: bool = NoTui,
):
    """Continue a stopped or failed run from its newest complete checkpoint."""
    try:
        from .engine.paths import resolve_run

        _train(resolve_run(target), detach=detach, json_lines=json_lines, resume=True)
    except SageError as e:
        fail(e)


@app.command()
def clean(
    target: str = typer.Argument(..., help="Run name or folder."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
    no_tui: bool = NoTui,
):
    """Delete a run folder (asks first; refuses a running run)."""
    try:
        from .engine.paths import resolve_run
        from .engine.runs import ACTIVE_STATES, derive_state, remove_run

        run_dir = resolve_run(target)
        if derive_state(run_dir)[0] in ACTIVE_STATES:
            raise SageError(f"run {run_dir.name} is running", hint="cancel it first (`sage-ft-tui cancel`)")
        if not yes:
            if not sys.stdin.isatty():
                raise SageError(f"refusing to delete {run_dir} without confirmation", hint="pass --yes")
            typer.confirm(f"delete {run_dir}?", abort=True)
        remove_run(run_dir)
        out(f"deleted {run_dir}")
    except SageError as e:
        fail(e)


# ---- examples / doctor / demo / quickstart ------------------------------------------


@app.command()
def examples(no_tui: bool = NoTui):
    """Example data for each task and a full config.yaml with every key."""
    from .headless import print_examples

    print_examples()


@app.command()
def doctor(json_out: bool = typer.Option(False, "--json", help="JSON output."), no_tui: bool = NoTui):
    """Versions, CUDA, GPUs, disk, and what is missing."""
    from .engine.doctor import run_doctor

    report = run_doctor()
    if json_out:
        out(json.dumps(report, indent=2, default=str))
    else:
        from .headless import print_doctor

        print_doctor(report)


@app.command()
def demo(
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Train this many steps (default: the demo's)."),
    detach: bool = typer.Option(False, "--detach", help="Run in the background."),
    json_lines: bool = typer.Option(False, "--json", help="Print events as JSON lines."),
    no_tui: bool = NoTui,
):
    """The tiny built-in model on bundled sample data: a complete run on CPU in under a minute."""
    try:
        from .engine.demo import demo_config
        from .engine.runs import create_run

        cfg = demo_config(max_steps=max_steps)
        run_dir = create_run(cfg)
        out(f"created run {run_dir.name} (tiny-demo model, bundled sample data)")
        _train_and_watch(run_dir, no_tui=no_tui, detach=detach, json_lines=json_lines)
    except SageError as e:
        fail(e)


def _train_and_watch(run_dir: Path, *, no_tui: bool, detach: bool, json_lines: bool) -> None:
    """Start training; on a terminal, watch it in the wizard's monitor, else headless."""
    if not headless(no_tui) and sys.stdout.isatty() and not detach and not json_lines:
        from .engine.runs import launch

        launch(run_dir)
        _open_tui(attach=str(run_dir))
        return
    _train(run_dir, detach=detach, json_lines=json_lines, resume=False)


@app.command()
def quickstart(
    task: str = typer.Argument(..., help="qa | instruction | chat | text | code"),
    data: Optional[List[str]] = DataOpt, model: Optional[str] = ModelOpt, name: Optional[str] = NameOpt,
    preset: Optional[str] = PresetOpt, epochs: Optional[float] = EpochsOpt, max_steps: Optional[int] = StepsOpt,
    max_length: Optional[int] = LenOpt, lr: Optional[float] = LrOpt, sets: Optional[List[str]] = SetOpt,
    repo: Optional[Path] = typer.Option(None, "--repo", help="code task: the repository (default: this git root)."),
    detach: bool = typer.Option(False, "--detach", help="Train in the background."),
    json_lines: bool = typer.Option(False, "--json", help="Print events as JSON lines."),
    no_tui: bool = NoTui,
):
    """Data → settings for this hardware → a run that starts training at once."""
    try:
        from .engine.quickstart import quickstart_config
        from .engine.runs import create_run

        cfg = quickstart_config(task, data=data, model=model, name=name, preset=preset, repo=repo)
        cfg = _apply_overrides(cfg, epochs, max_steps, max_length, lr, sets)
        err = sys.stderr if json_lines else sys.stdout  # keep stdout pure JSON lines
        if cfg.preset == "auto":
            from .engine.presets import explain_choice

            for line in explain_choice(cfg.model.name, max_length=cfg.training.max_length):
                print(f"  {line}", file=err)
        run_dir = create_run(cfg)
        print(f"created run {run_dir.name}", file=err)
        if task == "code":
            from .engine.fsutil import read_json
            from .engine.quickstart_code import scan_summary_lines

            scan = (read_json(run_dir / "data" / "data_report.json", {}) or {}).get("code_scan")
            for line in scan_summary_lines(scan) if scan else []:
                print(f"  {line}", file=err)
        _train_and_watch(run_dir, no_tui=no_tui, detach=detach, json_lines=json_lines)
    except SageError as e:
        fail(e)


def _apply_overrides(cfg, epochs, max_steps, max_length, lr, sets):
    from .engine.config import RunConfig

    raw = cfg.model_dump(mode="json")
    for key, val in (("epochs", epochs), ("max_steps", max_steps), ("max_length", max_length), ("learning_rate", lr)):
        if val is not None:
            raw["training"][key] = val
    cfg = RunConfig.from_dict(raw, source="flags")
    return cfg.with_overrides(sets) if sets else cfg


for _mod in _COMMAND_MODULES:
    importlib.import_module(f"sage_ft_tui.commands.{_mod}").register(app)


def main() -> None:
    try:
        app()
    except SageError as e:  # anything that escaped a command
        typer.echo(e.oneline(), err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
