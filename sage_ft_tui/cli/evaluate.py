"""`eval` (base vs tuned on held-out answers) and `compare` (runs side by side).

    sage-ft-tui eval RUN [--data FILE] [--max-prompts N] [--batch-size B] [--judge URL] [--json]
    sage-ft-tui compare RUN RUN ... [--json]

`eval` shows a progress bar on a terminal; with --json, or when stdout is not a terminal,
it writes the job protocol's records (engine/jobs.py) instead, which the TUI reads.
"""

from __future__ import annotations

import json
import sys
from typing import List, Optional

import typer

from sage_ft_tui.cli.base import fail
from sage_ft_tui.engine import jobs
from sage_ft_tui.engine.errors import SageError


def eval_cmd(
    run: str = typer.Argument(..., help="Run name or folder."),
    data: Optional[str] = typer.Option(None, "--data", help="Held-out examples (default: the run's eval split)."),
    max_prompts: int = typer.Option(50, "--max-prompts", help="Generate answers for at most N prompts (0: loss only)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Prompts generated together (batching)."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", help="Longest generated answer, in tokens."),
    no_sample: bool = typer.Option(False, "--no-sample", help="Greedy only (skip the seeded sampling pass)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling pass."),
    judge: Optional[str] = typer.Option(
        None, "--judge", help="OpenAI-compatible URL of a judge model (off by default)."
    ),
    judge_model: Optional[str] = typer.Option(None, "--judge-model", help="The judge's model (default: its first)."),
    judge_key_env: str = typer.Option(
        "OPENAI_API_KEY", "--judge-key-env", help="Env variable holding the judge's key."
    ),
    judge_remote: bool = typer.Option(False, "--judge-remote", help="Allow a judge that is not on this machine."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="Evaluate checkpoint N (or 'latest')."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    ask: Optional[str] = typer.Option(None, "--ask", help="Just this question: base and tuned answers side by side."),
    json_out: bool = typer.Option(False, "--json", help="Progress and the report as JSON lines."),
):
    """Base vs tuned: answer loss/perplexity, generation scores (exact match, ROUGE-L, BLEU, chrF), samples."""
    import os

    from sage_ft_tui.engine.eval.report import evaluate_run

    as_json = json_out or not sys.stdout.isatty()
    job = "eval" if as_json else None
    if ask is not None:
        _ask(run, ask, max_new_tokens, device, job)
        return
    bar = None
    try:
        jdg = None
        if judge:
            from sage_ft_tui.engine.eval.judge import Judge

            jdg = Judge(judge, model=judge_model, api_key=os.environ.get(judge_key_env), allow_remote=judge_remote)
        if not as_json:
            bar = _progress_bar()

        def progress(stage: str, info: dict) -> None:
            if as_json:
                if stage != "progress" or info.get("done") == info.get("total") or info.get("done", 0) % 4 == 0:
                    jobs.emit_progress("eval", stage, info)
            elif bar is not None:
                bar(stage, info)

        report = evaluate_run(
            run,
            data=data,
            max_prompts=max_prompts,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            sample=not no_sample,
            seed=seed,
            judge=jdg,
            device=device,
            checkpoint=checkpoint,
            progress=progress,
        )
    except SageError as e:
        if bar is not None:
            bar("close", {})
        fail(e, job)
    if bar is not None:
        bar("close", {})
    from sage_ft_tui.engine.runs.layout import RunLayout

    path = str(RunLayout(report["run_dir"]).eval_report)
    if as_json:
        jobs.emit_result("eval", {"report": report, "path": path})
        return
    _eval_table(report)
    typer.echo(f"report: {path}")


def _ask(run: str, question: str, max_new_tokens: int, device: str, job: Optional[str]) -> None:
    from sage_ft_tui.engine.eval.ask import ask_both

    try:
        a = ask_both(run, question, max_new_tokens=max_new_tokens, device=device)
    except SageError as e:
        fail(e, job)
    if job:
        jobs.emit_result(job, {"answers": a})
        return
    typer.echo(f"you>   {a['question']}")
    typer.echo(f"base>  {a['base']}")
    typer.echo(f"tuned> {a['tuned']}")


def _progress_bar():
    """A Rich progress bar on stderr fed by evaluate_run's stages; call with "close" at the end."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    p = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = {"id": None}

    def feed(stage: str, info: dict) -> None:
        if stage == "close":
            p.stop()
        elif stage == "load":
            p.start()
            task["id"] = p.add_task(f"loading {info.get('run')}", total=info.get("total") or 1)
        elif task["id"] is not None and stage in ("loss", "generate", "judge"):
            label = {"loss": "answer loss", "judge": "judging"}.get(stage, f"generating ({info.get('mode')})")
            p.update(task["id"], description=label)
        elif task["id"] is not None and stage == "progress":
            p.update(task["id"], completed=info.get("done", 0), total=info.get("total"))

    return feed


def _eval_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title=f"eval of {report['run']} on {report['examples']} examples ({report['prompts']} prompts)")
    for col in ("", "base", "tuned", "change"):
        t.add_column(col, justify="right" if col else "left")

    def row(label: str, b, a, lower_better: bool = False) -> None:
        if b is None or a is None:
            t.add_row(label, str(b), str(a), "")
            return
        d = a - b
        good = d < 0 if lower_better else d > 0
        style = "dim" if d == 0 else ("green" if good else "red")
        t.add_row(label, f"{b:.4g}", f"{a:.4g}", f"[{style}]{d:+.3g}[/]")

    loss = report["loss"]
    row("answer loss", loss["base"]["loss"], loss["tuned"]["loss"], lower_better=True)
    row("perplexity", loss["base"]["perplexity"], loss["tuned"]["perplexity"], lower_better=True)
    for mode, sides in report.get("generation", {}).items():
        for k in ("exact_match", "rouge_l", "bleu", "chrf"):
            row(f"{k} ({mode})", sides["base"].get(k), sides["tuned"].get(k))
    if report.get("judge"):
        row("judge 1-10", report["judge"]["base"]["mean"], report["judge"]["tuned"]["mean"])
    con.print(t)
    for s in report.get("samples", [])[:3]:
        con.print(f"[bold]you>[/]   {s['prompt']}")
        con.print(f"[dim]ref>[/]   {s['reference']}")
        con.print(f"base>  {s['base']}")
        con.print(f"tuned> {s['tuned']}")
        con.print("")


def compare_cmd(
    runs: List[str] = typer.Argument(..., help="Two or more run names or folders."),
    json_out: bool = typer.Option(False, "--json", help="The comparison as one JSON object."),
):
    """Runs side by side: config differences, data sizes, final losses, eval metrics, duration."""
    from sage_ft_tui.engine.eval.compare import compare_runs

    try:
        result = compare_runs(list(runs))
    except SageError as e:
        fail(e, None)
    if json_out:
        typer.echo(json.dumps(result, default=str))
        return
    _compare_table(result)


def _compare_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from sage_ft_tui.engine.eval.compare import TABLE_ROWS, table_rows

    t = Table(title="runs compared")
    t.add_column("")
    for r in result["runs"]:
        t.add_column(r["name"], justify="right")
    rows = table_rows(result)
    for i, r in enumerate(rows):
        t.add_row(*r, end_section=i == len(TABLE_ROWS) - 1)
    Console().print(t)
    if not result["config_differences"]:
        typer.echo("(the runs' configs are the same)")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
    app.command("compare")(compare_cmd)
