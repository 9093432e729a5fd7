"""Evaluate: base vs tuned on the run's held-out answers, with the side-by-side texts.

The evaluation runs as `sage-ft-tui eval RUN --json` in a subprocess (this process never
imports torch), through the job screens' shared plumbing (deploy/job.py). A report already
on disk is shown at once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, ProgressBar, Static

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.tui.screens.base import TopBar
from sage_ft_tui.tui.screens.deploy.job import JobScreen
from sage_ft_tui.tui.screens.deploy.pick import no_run_error, pick_run

STAGE_TEXT = {
    "load": "loading base + adapter",
    "loss": "answer loss (base, tuned)",
    "generate": "generating answers",
    "judge": "asking the judge",
    "done": "done",
}


def eval_command(run: str, max_prompts: int) -> list[str]:
    return [sys.executable, "-m", "sage_ft_tui", "eval", run, "--json", "--max-prompts", str(max_prompts)]


def report_table(rep: dict) -> Table:
    t = Table(expand=True, box=None, header_style="bold")
    for col, just in (("", "left"), ("base", "right"), ("tuned", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    loss = rep.get("loss") or {}
    b, a = loss.get("base") or {}, loss.get("tuned") or {}

    def num(v) -> str:
        return "—" if v is None else f"{v:.4g}"

    t.add_row("answer loss", num(b.get("loss")), Text(num(a.get("loss")), style="bold"))
    t.add_row("perplexity", num(b.get("perplexity")), num(a.get("perplexity")))
    greedy = (rep.get("generation") or {}).get("greedy") or {}
    for k, label in (("exact_match", "exact match %"), ("rouge_l", "ROUGE-L"), ("bleu", "BLEU"), ("chrf", "chrF")):
        t.add_row(label, num((greedy.get("base") or {}).get(k)), num((greedy.get("tuned") or {}).get(k)))
    if rep.get("judge"):
        t.add_row("judge 1-10", num(rep["judge"]["base"]["mean"]), num(rep["judge"]["tuned"]["mean"]))
    return t


def samples_text(rep: dict, n: int = 6) -> Text:
    t = Text()
    for s in (rep.get("samples") or [])[:n]:
        t.append("you   ", style="bold")
        t.append(f"{s.get('prompt', '')}\n")
        t.append("ref   ", style="dim")
        t.append(f"{s.get('reference', '')}\n", style="dim")
        t.append("base  ", style="#e5c07b")
        t.append(f"{s.get('base', '')}\n")
        t.append("tuned ", style="bold #98c379")
        t.append(f"{s.get('tuned', '')}\n\n")
    return t


def no_split_error() -> SageError:
    """Nothing held out: said in the app's words (the CLI's hint names its flags)."""
    from sage_ft_tui.engine.eval.data import NO_EVAL_SPLIT

    return SageError(NO_EVAL_SPLIT, kind="data", code="no_eval_split")


class EvaluateScreen(JobScreen):
    WHERE = "Evaluate"
    JOB, START, CANCEL = "eval", "evaluate", "cancel_eval"
    DEFAULT_CSS = """
    EvaluateScreen #eval-body { height: 1fr; }
    EvaluateScreen #eval-left { width: 46; height: 1fr; }
    EvaluateScreen #eval-right { width: 1fr; height: 1fr; }
    EvaluateScreen .field-label { margin-top: 1; color: $text-muted; }
    EvaluateScreen #eval-buttons { height: 3; margin-top: 1; }
    EvaluateScreen #eval-buttons Button { margin-right: 1; }
    EvaluateScreen #eval-stage { margin-top: 1; height: 1; }
    EvaluateScreen #eval-table { height: auto; margin-top: 1; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back", id="nav.back"),
        Binding("e", "evaluate", "Evaluate", id="eval.start"),
        Binding("ctrl+c", "cancel_eval", "Cancel", id="eval.cancel", priority=True),  # shown while it runs
    ]

    def __init__(self, run_dir: Optional[str] = None, **kw):
        super().__init__(Path(run_dir) if run_dir else (Path(p) if (p := pick_run("adapter")) else None), **kw)

    def compose(self) -> ComposeResult:
        name = self.run_dir.name if self.run_dir else "no run"
        yield TopBar(f"Evaluate · {name}", note="base vs tuned on held-out answers", id="topbar")
        with Horizontal(id="eval-body"):
            with Vertical(id="eval-left", classes="panel") as v:
                v.border_title = "Scores"
                yield Static("Prompts to generate for (0: loss only)", classes="field-label")
                yield Input("50", id="eval-prompts", type="integer")
                with Horizontal(id="eval-buttons"):
                    yield Button("Evaluate", id="eval-go", variant="primary")
                    yield Button("Cancel", id="eval-cancel", disabled=True)
                yield ProgressBar(total=100, show_eta=False, id="eval-progress")
                yield Static("", id="eval-stage")
                yield Static("", id="eval-table")
                yield Static("", id="error", classes="error")
            with VerticalScroll(id="eval-right", classes="panel") as v:
                v.border_title = "Side by side (greedy)"
                yield Static("", id="eval-samples")
        yield from self.footer()

    def on_mount(self) -> None:
        if self.run_dir is None:
            self.say_error(no_run_error("evaluate"))
            self.query_one("#eval-go", Button).disabled = True
            return
        # the button, not the prompts field, has the focus: a text field takes "e" as typing,
        # so the footer's "e Evaluate" would neither show nor work
        self.query_one("#eval-go", Button).focus()
        from sage_ft_tui.engine.eval.data import has_eval_split
        from sage_ft_tui.engine.eval.report import read_report

        if not has_eval_split(self.run_dir):
            self.say_error(no_split_error())

        rep = read_report(self.run_dir)
        if rep:
            self._show(rep, note="last report")
        else:
            self.query_one("#eval-samples", Static).update(
                Text("No evaluation yet. e: evaluate base vs tuned (adapter, no merge needed).", style="dim")
            )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "eval-go":
            self.action_evaluate()
        elif event.button.id == "eval-cancel":
            self.action_cancel_eval()

    def action_evaluate(self) -> None:
        if self.running or self.run_dir is None:
            return
        raw = self.query_one("#eval-prompts", Input).value.strip() or "50"
        n = int(raw) if raw.isdigit() else -1
        if n < 0:
            self.say_error(SageError(f"prompts {raw!r} is not a whole number", hint="e.g. 50 (0: loss only)"))
            return
        self.say_error(None)
        self.query_one("#eval-progress", ProgressBar).update(progress=0)
        self.start_job(eval_command(str(self.run_dir), n))

    def action_cancel_eval(self) -> None:
        self.cancel_job()

    def cancelling(self) -> None:
        self.query_one("#eval-stage", Static).update("cancelling…")

    def job_progress(self, stage: str, info: dict) -> None:
        if stage == "progress" and info.get("total"):
            self.query_one("#eval-progress", ProgressBar).update(total=info["total"], progress=info.get("done", 0))
            return
        extra = f" ({info.get('mode')})" if stage == "generate" else ""
        self.query_one("#eval-stage", Static).update(STAGE_TEXT.get(stage, stage) + extra)

    def job_finished(self, result: Optional[dict], error: Optional[SageError]) -> None:
        if error is not None:
            from sage_ft_tui.engine.eval.data import NO_EVAL_SPLIT

            self.query_one("#eval-stage", Static).update("")
            self.say_error(no_split_error() if error.message == NO_EVAL_SPLIT else error)
            return
        self._show((result or {}).get("report") or {}, note="done")

    def _show(self, rep: dict, note: str) -> None:
        self.query_one("#eval-stage", Static).update(
            f"{note}: {rep.get('examples', 0)} examples, {rep.get('prompts', 0)} prompts"
        )
        self.query_one("#eval-table", Static).update(report_table(rep))
        self.query_one("#eval-samples", Static).update(samples_text(rep))

    def set_busy(self, busy: bool) -> None:
        self.query_one("#eval-go", Button).disabled = busy
        self.query_one("#eval-cancel", Button).disabled = not busy
        self.query_one("#eval-prompts", Input).disabled = busy
