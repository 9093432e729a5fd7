"""`queue` (list), `queue add/remove/move/start/stop`: runs that start one after another as GPUs free up.

The engine's `engine.queue` owns the queue; these commands only parse, call and print.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from sage_ft_tui.cli.base import fail, out
from sage_ft_tui.cli.options import NoTui
from sage_ft_tui.engine.errors import SageError

queue_app = typer.Typer(
    help="Queue runs: they start one after another (side by side on free GPUs) through a small "
    "detached scheduler that survives SSH drops.",
    no_args_is_help=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

GpusListOpt = typer.Option(
    None, "--gpus", help="GPU indices the run may use, e.g. 0 or 0,1 (default: its config's, else any free one)."
)
TagOpt = typer.Option(None, "--tag", help="A label shown in the list (a sweep names its trials with it).")
ShareOpt = typer.Option(
    False, "--share-gpu", help="May start on a GPU another run of ours trains on (memory permitting)."
)
NoStartOpt = typer.Option(False, "--no-start", help="Only queue; start the scheduler later with `queue start`.")


def parse_gpus(text: Optional[str]) -> Optional[list[int]]:
    if text is None:
        return None
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x != ""] or [-1]
    except ValueError:
        raise SageError(
            f"--gpus {text!r}: give GPU indices such as 0 or 0,1", hint="see `sage-ft-tui doctor`"
        ) from None


def queue_run(
    run: Path,
    *,
    gpus: Optional[list[int]] = None,
    tag: Optional[str] = None,
    share_gpu: bool = False,
    start: bool = True,
    quiet: bool = False,
) -> None:
    """Queue one created run and (unless `start` is False) make sure the scheduler runs;
    prints what happened unless `quiet` (stdout holds JSON)."""
    from sage_ft_tui.engine.queue import enqueue, ensure_scheduler, entries

    enqueue(run, gpus=gpus, tag=tag, share_gpu=share_gpu)
    waiting = [e for e in entries() if e.state == "queued"]
    if not quiet:
        out(f"queued {run.name} (position {len(waiting)} of {len(waiting)})")
    if start:
        pid = ensure_scheduler()
        if not quiet:
            _say_scheduler(pid)


def _say_scheduler(pid: Optional[int]) -> None:
    from sage_ft_tui.engine.queue.state import queue_files

    if pid:
        out(f"scheduler running (pid {pid}); log: {queue_files().scheduler_log}")
    else:
        out("nothing queued; no scheduler started")


def _entry_path(ref: str) -> Path:
    """A queue entry by run name or folder (also one whose folder is gone), else the run itself."""
    from sage_ft_tui.engine.paths import resolve_run
    from sage_ft_tui.engine.queue import entries

    p = Path(ref).expanduser()
    for e in entries():
        if e.name == ref or (p.exists() and e.run.resolve() == p.resolve()):
            return e.run
    return resolve_run(ref, "change its place in the queue")


@queue_app.callback(invoke_without_command=True)
def queue_list(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="JSON output."),
    no_tui: bool = NoTui,
):
    """The queue in order: each run's state, tag, GPUs and what it waits for."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        from sage_ft_tui.engine.queue import entries, scheduler_pid

        items = entries()
        pid = scheduler_pid()
    except SageError as e:
        fail(e)
    if json_out:
        out(json.dumps({"scheduler_pid": pid, "entries": [e.to_dict() for e in items]}))
        return
    from sage_ft_tui.cli.output import queue_table

    queue_table(items, pid)


@queue_app.command("add")
def add(
    runs: List[str] = typer.Argument(..., help="Runs (names or folders) made by `start`."),
    gpus: Optional[str] = GpusListOpt,
    tag: Optional[str] = TagOpt,
    share_gpu: bool = ShareOpt,
    no_start: bool = NoStartOpt,
):
    """Queue created runs at the end, then make sure the scheduler runs."""
    try:
        from sage_ft_tui.engine.paths import resolve_run

        paths = [resolve_run(r, "queue it") for r in runs]  # every name checked before any is queued
        wanted = parse_gpus(gpus)
        for p in paths:
            queue_run(p, gpus=wanted, tag=tag, share_gpu=share_gpu, start=False)
        if not no_start:
            from sage_ft_tui.engine.queue import ensure_scheduler

            _say_scheduler(ensure_scheduler())
    except SageError as e:
        fail(e)


@queue_app.command("remove")
def remove_cmd(run: str = typer.Argument(..., help="A queued run (name or folder).")):
    """Take a run out of the queue (a finished or removed entry leaves the list); the run folder stays."""
    try:
        from sage_ft_tui.engine.queue import remove

        e = remove(_entry_path(run))
        out(f"{e.name}: removed from the queue" if e.state == "removed" else f"{e.name}: taken off the list")
    except SageError as e:
        fail(e)


@queue_app.command("move")
def move_cmd(
    run: str = typer.Argument(..., help="A queued run (name or folder)."),
    position: int = typer.Argument(..., help="Its new place among the queued runs: 1 starts next."),
):
    """Reorder: put a queued run at POSITION."""
    try:
        from sage_ft_tui.engine.queue import move

        e = move(_entry_path(run), position)
        out(f"{e.name}: now at position {position}")
    except SageError as e:
        fail(e)


@queue_app.command("start")
def start_cmd():
    """Start the scheduler unless one runs (it exits by itself once the queue is empty)."""
    try:
        from sage_ft_tui.engine.queue import ensure_scheduler

        _say_scheduler(ensure_scheduler())
    except SageError as e:
        fail(e)


@queue_app.command("stop")
def stop_cmd():
    """Stop the scheduler: it starts nothing more. A run already training goes on (cancel it with
    `cancel`); queued runs stay queued until `queue start`."""
    try:
        from sage_ft_tui.engine.queue import stop_scheduler

        pid = stop_scheduler()
    except SageError as e:
        fail(e)
    out(
        f"scheduler (pid {pid}) stopped; queued runs wait for `sage-ft-tui queue start`"
        if pid
        else "no scheduler was running"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(queue_app, name="queue")
