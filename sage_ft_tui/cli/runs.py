"""`start`, `run`, `list`, `attach`, `cancel`, `resume`, `clean`: a run's life from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from sage_ft_tui.cli.base import fail, headless, open_tui, out
from sage_ft_tui.cli.options import (
    DataOpt,
    EpochsOpt,
    FromRunOpt,
    GpuOpt,
    GpusOpt,
    LenOpt,
    LrOpt,
    ModelOpt,
    NameOpt,
    NotifyOpt,
    NoTui,
    PrecisionOpt,
    PresetOpt,
    RewardOpt,
    SetOpt,
    StepsOpt,
    TaskOpt,
    VramOpt,
)
from sage_ft_tui.cli.planning import Target
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.layout import RunLayout

ForceOpt = typer.Option(False, "--force", help="Train even though the run's state is unknown (status.json unreadable).")


def build_from_flags(
    config: Optional[Path],
    task: Optional[str],
    model: Optional[str],
    data: Optional[List[str]],
    name: Optional[str],
    preset: Optional[str],
    epochs: Optional[float],
    max_steps: Optional[int],
    max_length: Optional[int],
    lr: Optional[float],
    sets: Optional[List[str]],
    target: Optional[Target] = None,
    from_run: Optional[str] = None,
    rewards: Optional[List[str]] = None,
):
    """The command line's sources → the engine's config builder (engine/config/build.py owns
    the order): the preset < `config` < the target plan < the flags < --set."""
    from sage_ft_tui.engine.config.build import build_config, given

    target = target or Target()
    flags = {
        "task": task,
        "model.name": model,
        "data.paths": [str(Path(d).expanduser().resolve()) for d in data] if data else None,
        "name": None,
        "training.epochs": epochs,
        "training.max_steps": max_steps,
        "training.max_length": max_length,
        "training.learning_rate": lr,
        **target.flags(),
        **chain_flags(from_run, rewards, model),
    }
    if name:
        from sage_ft_tui.engine.paths import validate_run_name

        flags["name"] = validate_run_name(name)
    built = build_config(
        file=config,
        preset=preset,
        target=target.layer(),
        flags=given(flags),
        sets=sets or (),
    )
    if rewards and built.config.task != "grpo":
        raise SageError("--reward is for the grpo task", hint="add --task grpo, or leave --reward out")
    return built


def chain_flags(from_run: Optional[str], rewards: Optional[List[str]], model: Optional[str] = None) -> dict:
    """--from-run (the run's adapter and base model) and --reward, as the builder's flags."""
    out: dict = {}
    if from_run:
        from sage_ft_tui.engine.runs.chain import from_run as adapter_of

        out["model.init_adapter"], out["model.name"] = adapter_of(from_run, model)
    if rewards:
        from sage_ft_tui.engine.methods.grpo_rewards import check_reward

        for spec in rewards:
            check_reward(spec)
        out["grpo.rewards"] = [
            spec
            if ":" not in spec
            else f"{Path(spec.rsplit(':', 1)[0]).expanduser().resolve()}:{spec.rsplit(':', 1)[1]}"
            for spec in rewards
        ]
    return out


def _notify_check(urls: Optional[List[str]]) -> Optional[str]:
    """--notify URLs checked (an unreadable one is a SageError); the warning when apprise is missing."""
    from sage_ft_tui.engine.runs.notify import check_urls

    return check_urls(list(urls or []))


def notify_for_worker(urls: Optional[List[str]]) -> None:
    """run/resume/quickstart --notify: the worker launched next is told the URLs (not written
    to config.yaml: a webhook URL is a secret); a missing apprise is one warning."""
    if not urls:
        return
    from sage_ft_tui.engine.runs.notify import pass_to_worker

    warning = _notify_check(urls)
    if warning:
        typer.echo(warning, err=True)
    pass_to_worker(list(urls))


def origin_lines(built) -> list[str]:
    """Where each non-default setting came from: one line per source, in the builder's order."""
    return [f"  from     {where}: {', '.join(items)}" for where, items in built.origin_groups()]


def start(
    task: Optional[str] = TaskOpt,
    model: Optional[str] = ModelOpt,
    data: Optional[List[str]] = DataOpt,
    name: Optional[str] = NameOpt,
    preset: Optional[str] = PresetOpt,
    epochs: Optional[float] = EpochsOpt,
    max_steps: Optional[int] = StepsOpt,
    max_length: Optional[int] = LenOpt,
    lr: Optional[float] = LrOpt,
    sets: Optional[List[str]] = SetOpt,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Start from this config.yaml."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    from_run: Optional[str] = FromRunOpt,
    rewards: Optional[List[str]] = RewardOpt,
    gpu: Optional[str] = GpuOpt,
    vram: Optional[float] = VramOpt,
    gpus: Optional[int] = GpusOpt,
    precision: Optional[str] = PrecisionOpt,
    notify: Optional[List[str]] = NotifyOpt,
    queue: bool = typer.Option(
        False, "--queue", help="Queue the run (it trains when its turn and GPUs come; see `sage-ft-tui queue`)."
    ),
    no_tui: bool = NoTui,
):
    """Create a run folder: config.yaml and the prepared data (does not train; see `run`, or add --queue)."""
    try:
        from sage_ft_tui.engine.runs.start import start_run

        target = Target(gpu, vram, gpus, precision)
        built = build_from_flags(
            config, task, model, data, name, preset, epochs, max_steps, max_length, lr, sets, target, from_run, rewards
        )
        cfg = built.config
        if queue and target.plans:
            raise SageError(
                "--queue trains the run on this machine, and --gpu/--vram/--gpus plan it for another one",
                hint="leave out --queue and `sage-ft-tui run` it there, or leave out the planning flags",
            )
        if not cfg.data.paths and cfg.task != "code":
            raise SageError("no training data given", hint="pass --data FILE (or a folder of files)")
        notify_warning = _notify_check(notify)
        if notify:  # kept in config.yaml: the run made here is launched later
            cfg.notify.urls = list(dict.fromkeys([*cfg.notify.urls, *notify]))
        started = start_run(cfg, launch=False, here=not target.plans)
    except SageError as e:
        fail(e)
    for warning in [*built.warnings, *started.warnings, *([notify_warning] if notify_warning else [])]:
        typer.echo(warning, err=True)
    _print_created(started.run, json_out, built, queued=queue)
    if queue:
        try:
            from sage_ft_tui.cli.queue import queue_run

            queue_run(started.run, quiet=json_out)
        except SageError as e:
            fail(e)
    if target.plans and not json_out:
        out(f"  planned  for {target.describe()}: copy {started.run} to that machine and `sage-ft-tui run` it there")


def print_data_block(run: Path, file=None, *, warnings_only: bool = False) -> None:
    """The data inspector's short block (data_report.json): length figures on `file`
    (stdout by default), its warnings (and the template's) on stderr."""
    from sage_ft_tui.engine.data.inspect import summary_lines
    from sage_ft_tui.engine.fsutil import read_json

    report = read_json(RunLayout(run).data_report, {}) or {}
    for line in summary_lines(report if isinstance(report, dict) else {}):
        if line.startswith(("warning:", "error:")):
            typer.echo(line, err=True)
        elif warnings_only:
            continue
        elif file is not None:
            print(line, file=file)
        else:
            out(line)


def _print_created(run: Path, json_out: bool, built=None, *, queued: bool = False) -> None:
    from sage_ft_tui.engine.fsutil import read_json
    from sage_ft_tui.engine.runs.plan import plan_run

    report = read_json(RunLayout(run).data_report, {}) or {}
    if json_out:
        print_data_block(run, warnings_only=True)
        out(
            json.dumps(
                {
                    "run": str(run),
                    "name": run.name,
                    "data": report.get("counts", {}),
                    "inspection": report.get("inspection", {}),
                    "plan": plan_run(run).to_dict(),
                    "origins": built.origins if built is not None else {},
                    "queued": queued,
                }
            )
        )
        return
    c = report.get("counts", {})
    out(f"created run {run.name}")
    out(f"  folder   {run}")
    out(
        f"  data     {c.get('train', 0)} train / {c.get('eval', 0)} eval samples, {c.get('skipped', 0)} bad row{'' if c.get('skipped', 0) == 1 else 's'} skipped"
    )
    if report.get("split_note"):
        out(f"  eval     {report['split_note']}")
    print_data_block(run)
    out(f"  plan     {plan_run(run).summary()}")
    for line in origin_lines(built) if built is not None else []:
        out(line)
    if not queued:
        out(f"  train it `sage-ft-tui run {run.name}` (add --detach to run in the background)")


def run(
    target: str = typer.Argument(..., help="A run (name or folder) or a config.yaml."),
    detach: bool = typer.Option(False, "--detach", help="Start in the background and return."),
    json_lines: bool = typer.Option(False, "--json", help="Print events as JSON lines even on a terminal."),
    force: bool = ForceOpt,
    no_tui: bool = NoTui,
    slurm: Optional[int] = typer.Option(
        None,
        "--slurm",
        help="Hand the run to Slurm on this many nodes: write its sbatch script into the run and submit it "
        "with sbatch when installed (else print how).",
    ),
    gpus_per_node: int = typer.Option(8, "--gpus-per-node", help="With --slurm: GPUs on each node."),
    preset: Optional[str] = PresetOpt,
    gpu: Optional[str] = GpuOpt,
    vram: Optional[float] = VramOpt,
    gpus: Optional[int] = GpusOpt,
    precision: Optional[str] = PrecisionOpt,
    notify: Optional[List[str]] = NotifyOpt,
):
    """Train a run (or a config.yaml, which first becomes a run)."""
    try:
        notify_for_worker(notify)
        plan = Target(gpu, vram, gpus, precision)
        run_dir, created = _run_or_config(target, plan, preset)
        if slurm is not None:
            from sage_ft_tui.engine.runs.slurm import submit_slurm

            job = submit_slurm(run_dir, slurm, gpus_per_node)
            shape = f"{slurm} node{'s' if slurm != 1 else ''} × {gpus_per_node} GPUs"
            if job.submitted:
                out(f"submitted {run_dir.name} to Slurm ({shape}): {job.answer}")
                out(
                    f"  script   {job.script}; watch it: squeue -j {job.job_id or '<job>'}, sage-ft-tui attach {run_dir.name}"
                )
            else:
                out(
                    f"wrote {job.script} ({shape}); sbatch is not on PATH here: submit it on the cluster's login node with `sbatch {job.script}`"
                )
            return
        # A run made earlier (by `start`) gets the inspector's warnings again as it starts
        # (a run just created from a config printed its whole block).
        train_run(run_dir, detach=detach, json_lines=json_lines, resume=False, data_warnings=not created, force=force)
    except SageError as e:
        fail(e)


def _run_or_config(target: str, plan: Target, preset: Optional[str]) -> tuple[Path, bool]:
    """The run to train, and whether it was just created from a config.yaml (planned with
    --preset and the target flags; an existing run keeps the config it was made with)."""
    from sage_ft_tui.engine.paths import resolve_run

    p = Path(target).expanduser()
    if p.is_file() and p.suffix in (".yaml", ".yml"):
        from sage_ft_tui.engine.config.build import build_config
        from sage_ft_tui.engine.runs.start import start_run

        built = build_config(file=p, preset=preset, target=plan.layer(), flags=plan.flags())
        for warning in built.warnings:
            typer.echo(warning, err=True)
        run_dir = start_run(built.config, unique=True, launch=False).run  # a config from an old run makes a sibling
        out(f"created run {run_dir.name} from {p}")
        print_data_block(run_dir, file=sys.stderr)  # stdout may be JSON lines
        return run_dir, True
    if preset or plan.plans or plan.precision:
        raise SageError(
            f"{target}: --preset, --gpu, --vram, --gpus and --precision plan a new run; an existing run keeps its config",
            hint="give a config.yaml to `run`, or plan a new run from it: "
            "`sage-ft-tui start --config RUN/config.yaml --gpu NAME` (or --vram GIB)",
        )
    return resolve_run(target, "train it"), False


def train_run(
    run_dir: Path, *, detach: bool, json_lines: bool, resume: bool, data_warnings: bool = False, force: bool = False
) -> None:
    """Launch (or resume) a run's worker; then follow it unless `detach`."""
    from sage_ft_tui.engine.runs.start import launch_run

    started = launch_run(run_dir, resume=resume, force=force)
    for warning in started.warnings:
        typer.echo(warning, err=True)
    if data_warnings:
        print_data_block(run_dir, warnings_only=True)
    pid = started.pid
    if detach:
        out(f"started {run_dir.name} in the background (pid {pid}); log: {RunLayout(run_dir).train_log}")
        out(f"  watch it: sage-ft-tui attach {run_dir.name}")
        return
    state = follow_headless(run_dir, json_lines=json_lines)
    if state != "completed":
        raise typer.Exit(1)


def follow_headless(run_dir: Path, *, json_lines: bool) -> str:
    from sage_ft_tui.cli.output import follow_run

    try:
        return follow_run(run_dir, json_lines=json_lines or not sys.stdout.isatty())
    except KeyboardInterrupt:
        out(f"\ndetached; {run_dir.name} goes on. `sage-ft-tui attach {run_dir.name}` to watch, `cancel` to stop.")
        raise typer.Exit(130) from None


def list_cmd(json_out: bool = typer.Option(False, "--json", help="JSON output."), no_tui: bool = NoTui):
    """Every run with its state, step, last loss and age."""
    print_runs(json_out)


def print_runs(json_out: bool = False) -> None:
    from sage_ft_tui.cli.output import runs_table
    from sage_ft_tui.engine.runs.state import list_runs

    runs = list_runs()
    if json_out:
        out(json.dumps([r.to_dict() for r in runs]))
    else:
        runs_table(runs)


def attach(
    target: str = typer.Argument(..., help="Run name or folder."),
    json_lines: bool = typer.Option(False, "--json", help="Print events as JSON lines."),
    no_tui: bool = NoTui,
):
    """Replay a run's events, then follow it until it ends."""
    try:
        from sage_ft_tui.engine.paths import resolve_run

        run_dir = resolve_run(target)
    except SageError as e:
        fail(e)
    if not headless(no_tui) and sys.stdout.isatty():
        open_tui(attach=str(run_dir))
        return
    state = follow_headless(run_dir, json_lines=json_lines)
    raise typer.Exit(0 if state == "completed" else 1)


def cancel(target: str = typer.Argument(..., help="Run name or folder."), no_tui: bool = NoTui):
    """Stop a run: it saves a checkpoint and ends as cancelled."""
    try:
        from sage_ft_tui.engine.paths import resolve_run
        from sage_ft_tui.engine.runs.control import CANCEL_WAIT_S
        from sage_ft_tui.engine.runs.control import cancel as do_cancel
        from sage_ft_tui.engine.runs.state import derive_state

        run_dir = resolve_run(target)
        do_cancel(run_dir, wait=CANCEL_WAIT_S)
        out(f"{run_dir.name}: {derive_state(run_dir)[0]}")
        from sage_ft_tui.engine.runs.state import read_status

        if str(read_status(run_dir).get("exit_reason", "")).startswith("killed:"):  # the worker was stuck
            typer.echo(f"note: {read_status(run_dir)['exit_reason']}", err=True)
    except SageError as e:
        fail(e)


def resume(
    target: str = typer.Argument(..., help="Run name or folder."),
    detach: bool = typer.Option(False, "--detach", help="Resume in the background."),
    json_lines: bool = typer.Option(False, "--json", help="Print events as JSON lines."),
    force: bool = ForceOpt,
    notify: Optional[List[str]] = NotifyOpt,
    no_tui: bool = NoTui,
):
    """Continue a stopped or failed run from its newest complete checkpoint."""
    try:
        from sage_ft_tui.engine.paths import resolve_run

        notify_for_worker(notify)
        train_run(resolve_run(target, "resume it"), detach=detach, json_lines=json_lines, resume=True, force=force)
    except SageError as e:
        fail(e)


def clean(
    target: str = typer.Argument(..., help="Run name or folder."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
    no_tui: bool = NoTui,
):
    """Delete a run folder (asks first; refuses a running run)."""
    try:
        from sage_ft_tui.engine.paths import resolve_run
        from sage_ft_tui.engine.runs.control import remove_run
        from sage_ft_tui.engine.runs.layout import ACTIVE_STATES
        from sage_ft_tui.engine.runs.state import derive_state

        run_dir = resolve_run(target, "delete it", home_only=True)
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


def register(app: typer.Typer) -> None:
    app.command("start")(start)
    app.command("run")(run)
    app.command("list")(list_cmd)
    app.command("attach")(attach)
    app.command("cancel")(cancel)
    app.command("resume")(resume)
    app.command("clean")(clean)
