"""Headless output for the CLI: Rich on a terminal, JSON lines otherwise. No Textual."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.runs.state import RunInfo


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _wide_when_piped():
    """A terminal's width on a terminal; piped, as wide as the table (nothing cut or wrapped)."""
    from rich.console import Console

    return Console(highlight=False) if sys.stdout.isatty() else Console(highlight=False, width=100_000)


# `list`'s columns, and the order they are dropped in when the terminal is too narrow for all
# of them beside the full run names (a name is what every other command needs: never cut)
LIST_COLUMNS = ("name", "state", "step", "loss", "task", "model", "age")
LIST_DROP = ("task", "age", "model", "loss")


def _age(t) -> str:
    if not t:
        return "-"
    s = max(0, time.time() - float(t))
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n:
            return f"{int(s // n)}{unit} ago"
    return f"{int(s)}s ago"


def runs_table(runs: list[RunInfo]) -> None:
    from rich.table import Table

    from sage_ft_tui.engine.paths import runs_home

    con = _wide_when_piped()
    if not runs:
        con.print(f"no runs yet in {runs_home()} — try `sage-ft-tui demo`")
        return
    rows = []
    for r in runs:
        color = {"completed": "green", "failed": "red", "running": "cyan", "cancelled": "yellow"}.get(r.state, "")
        rows.append(
            {
                "name": r.name,
                "state": f"[{color}]{r.label}[/]" if color else r.label,
                "step": f"{r.step}/{r.total_steps}" if r.total_steps else str(r.step or "-"),
                "loss": f"{r.last_loss:.4f}" if isinstance(r.last_loss, (int, float)) else "-",
                "task": r.task,
                "model": r.model,
                "age": _age(r.created),
            }
        )
    cols = list(LIST_COLUMNS)
    name_w = max(len(r.name) for r in runs)

    def need(cols: list[str]) -> int:  # the narrowest the table gets with these columns (3 per column: borders)
        fixed = {"name": name_w, "state": 9, "step": 7, "loss": 6, "task": 5, "model": 8, "age": 7}
        return sum(fixed[c] + 3 for c in cols) + 1

    for col in LIST_DROP:
        if need(cols) <= con.width:
            break
        cols.remove(col)
    t = Table(title=f"runs in {runs_home()}", title_justify="left")
    for col in cols:
        t.add_column(
            col,
            justify="right" if col in ("step", "loss") else "left",
            no_wrap=col == "name",
            min_width=name_w if col == "name" else None,
            overflow="fold",
        )
    for row in rows:
        t.add_row(*(row[c] for c in cols))
    con.print(t)


def queue_table(items, scheduler_pid) -> None:
    """`sage-ft-tui queue`: the entries in order (engine.queue.QueueEntry), and whether a scheduler runs."""
    from rich.table import Table

    from sage_ft_tui.engine.paths import runs_home

    con = _wide_when_piped()
    sched = f"scheduler pid {scheduler_pid}" if scheduler_pid else "no scheduler running (`sage-ft-tui queue start`)"
    if not items:
        con.print(f"the queue of {runs_home()} is empty — add runs with `sage-ft-tui queue add RUN` ({sched})")
        return
    t = Table(title=f"queue of {runs_home()} — {sched}", title_justify="left")
    for col in ("#", "name", "state", "tag", "gpus", "note"):
        t.add_column(col, no_wrap=col in ("#", "name"), justify="right" if col == "#" else "left")
    n = 0
    for e in items:
        color = {"done": "green", "failed": "red", "started": "cyan", "removed": "dim"}.get(e.state, "")
        n += e.state == "queued"
        state = e.state + (f" ({e.result})" if e.result and e.result != "completed" else "")
        t.add_row(
            str(n) if e.state == "queued" else "",
            e.name,
            f"[{color}]{state}[/]" if color else state,
            e.tag or "",
            ",".join(map(str, e.gpus)) if e.gpus else "",
            e.note,
        )
    con.print(t)


def skipped_notice(run_dir: Path, skipped) -> str:
    """One line naming the events.jsonl lines that could not be read ('' when none)."""
    if not skipped:
        return ""
    shown = ", ".join(f"line {s.line} ({s.reason})" for s in skipped[:5])
    more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    return (
        f"note: skipped {len(skipped)} unreadable line{'s' if len(skipped) != 1 else ''} of "
        f"{RunLayout(run_dir).events}: {shown}{more}"
    )


def follow_run(run_dir: Path, *, json_lines: bool) -> str:
    """Replay + follow a run's events; returns its final state. What could not be read is
    said on stderr (stdout stays the events)."""
    from sage_ft_tui.engine.runs.events import EventFollower
    from sage_ft_tui.engine.runs.state import derive_state, follow

    follower = EventFollower(RunLayout(run_dir).events)
    if json_lines:
        last = None
        for ev in follow(run_dir, follower=follower):
            last = ev
            sys.stdout.write(json.dumps(ev) + "\n")
            sys.stdout.flush()
        state, detail = derive_state(run_dir)
        note = skipped_notice(run_dir, follower.skipped)
        if note:
            sys.stderr.write(note + "\n")
        if last is None:
            sys.stderr.write(f"note: {RunLayout(run_dir).events} holds no events\n")
        if not (last and last.get("kind") == "status" and last.get("state") == state):
            # The stream does not tell the end (a killed worker, a full disk): status.json does.
            sys.stderr.write(f"note: {run_dir.name} is {state}{f' ({detail})' if detail else ''}\n")
        return state
    return _follow_rich(run_dir, follower)


def _follow_rich(run_dir: Path, follower=None) -> str:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from sage_ft_tui.engine.runs.state import derive_state, follow

    con = _console()
    prog = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=con,
    )
    task = None
    with prog:
        task = prog.add_task(run_dir.name, total=None, info="preparing")
        for ev in follow(run_dir, follower=follower):
            k = ev.get("kind")
            if k == "start":
                prog.update(task, total=ev.get("total_steps"), completed=ev.get("resumed_from_step", 0), info="running")
            elif k == "log":
                tps, mfu = ev.get("tokens_per_s"), ev.get("mfu")  # mfu: GPU runs only
                prog.update(
                    task,
                    completed=ev.get("step", 0),
                    info=f"loss {ev.get('loss', 0):.4f}  lr {ev.get('learning_rate') or 0:.2e}"
                    + (f"  {tps:,.0f} tok/s" if tps else "")
                    + (f" · MFU {mfu:.0%}" if isinstance(mfu, (int, float)) else ""),
                )
            elif k == "eval":
                prog.console.print(f"  step {ev.get('step')}: eval loss {ev.get('eval_loss'):.4f}")
            elif k == "checkpoint":
                prog.console.print(f"  checkpoint at step {ev.get('step')}")
            elif k == "error" and ev.get("recovering"):
                prog.console.print(f"[yellow]{ev.get('error_kind')}: {ev.get('message')} — recovering[/]")
            elif k == "error":
                prog.console.print(f"[red]error ({ev.get('error_kind')}): {ev.get('message')}[/]")
                if ev.get("hint"):
                    prog.console.print(f"  hint: {ev['hint']}")
    note = skipped_notice(run_dir, follower.skipped if follower is not None else [])
    if note:
        con.print(note, markup=False)
    state, detail = derive_state(run_dir)
    color = {"completed": "green", "cancelled": "yellow"}.get(state, "red")
    con.print(f"[{color}]{run_dir.name}: {state}{f' ({detail})' if detail else ''}[/]")
    if state == "completed":
        con.print(f"  adapter: {RunLayout(run_dir).adapter}")
    elif state in ("failed", "cancelled"):
        con.print(f"  log: {RunLayout(run_dir).train_log}; continue with `sage-ft-tui resume {run_dir.name}`")
    return state


def print_examples() -> None:
    from sage_ft_tui.engine.config.schema import commented_yaml
    from sage_ft_tui.engine.methods.registry import all_tasks

    con = _wide_when_piped()
    con.print("[bold]Data, one example row per task[/]")
    for t in all_tasks().values():
        con.print(f"  [cyan]{t.name:<12}[/] {t.description}")
        # one row on one line at any width (the terminal may fold it, never a newline inside JSON)
        con.print(f"               {json.dumps(t.example, ensure_ascii=False)}", soft_wrap=True, markup=False)
    con.print(
        "\nOther formats are detected too: ShareGPT (conversations/from/value), OpenAI messages,"
        " prompt/completion, plain text (.txt)."
    )
    con.print("\n[bold]Commands[/]")
    for line in (
        "sage-ft-tui demo                                   # tiny model + sample data, on CPU",
        "sage-ft-tui quickstart qa --data qa.jsonl          # settings picked for this machine",
        "sage-ft-tui start --task chat --model Qwen/Qwen2.5-7B-Instruct --data chats.jsonl --preset auto",
        "sage-ft-tui run RUN --detach && sage-ft-tui attach RUN",
        "sage-ft-tui start --data d.jsonl --set training.micro_batch_size=2 --set lora.r=32",
    ):
        con.print(f"  {line}", soft_wrap=True, markup=False)  # a command is copied whole
    con.print("\n[bold]config.yaml with every key (defaults)[/]")
    sys.stdout.write(commented_yaml())


def print_doctor(report: dict) -> None:
    con = _console()
    ok = lambda b: "[green]ok[/]" if b else "[red]missing[/]"  # noqa: E731
    con.print(f"[bold]sage-ft-tui {report['version']}[/] on Python {report['python']} ({report['platform']})")
    con.print("\n[bold]packages[/]")
    for name, ver in report["packages"].items():
        con.print(f"  {name:<16} {ver or '[red]not installed[/]'}")
    con.print("\n[bold]hardware[/]")
    con.print(f"  CUDA (torch)     {report['cuda'] or 'not available'}")
    for g in report["gpus"]:
        con.print(
            f"  GPU {g['index']}            {g['name']}, {g['mem_free_gib']:.1f}/{g['mem_total_gib']:.1f} GiB free, bf16 {'yes' if g['bf16'] else 'no'}"
        )
    if not report["gpus"]:
        con.print(
            f"  GPU              none ({report.get('gpu_note') or 'no NVIDIA GPU'}): training runs on CPU, slowly"
        )
    con.print(f"  CPU              {report['cpu']}")
    con.print(f"  RAM              {report['ram_gib']:.1f} GiB")
    con.print(f"  disk (runs)      {report['disk_free_gib']:.1f} GiB free in {report['runs_home']}")
    con.print("\n[bold]backends[/]")
    for name, present in report["backends"].items():
        con.print(f"  {name:<16} {ok(present)}")
    if report.get("training_paths"):
        con.print("\n[bold]a run here will take[/]")
        for name, line in report["training_paths"].items():
            con.print(f"  {name:<16} {line}")
    m = report.get("model")
    if m and m.get("path"):
        from rich.markup import escape

        con.print(f"\n[bold]model[/] {escape(m['ref'])}")
        con.print(f"  family           {escape(m['family'] or 'unknown (no model_type in config.json)')}")
        if m.get("template"):
            con.print(f"  end of turn      {escape(m['end_of_turn'] or 'none')}")
            con.print(f"  stops on         {escape(', '.join(m['stop_tokens']) or 'none')}")
            fold = " (by sage-ft-tui: the template has no system role)" if m.get("system_fold") else ""
            con.print(f"  system prompt    {escape(m['system'])}{fold}")
            if m.get("history"):
                con.print(f"  history          {escape(m['history'])}")
        else:
            con.print(f"  chat template    unknown ({escape(m.get('template_problem') or 'no tokenizer')})")
        con.print(f"  attention        {escape(m['attention'])}")
    if report["problems"]:
        con.print("\n[bold]what to do[/]")
        for p in report["problems"]:
            con.print(f"  - {p}")
    else:
        con.print("\n[green]everything needed is here[/]")
