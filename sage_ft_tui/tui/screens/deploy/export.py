"""Export: the merged model as GGUF (+ Ollama Modelfile) or an HF folder, the GGUF checked
by llama.cpp itself. Runs `sage-ft-tui export RUN --json` in a subprocess, through the job
screens' shared plumbing (deploy/job.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Select, Static

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.export.formats import EXPORT_FORMATS
from sage_ft_tui.engine.export.report import STAGES, summary
from sage_ft_tui.tui.screens.base import TopBar
from sage_ft_tui.tui.screens.deploy.job import JobFinished, JobProgress, JobScreen
from sage_ft_tui.tui.screens.deploy.pick import no_run_error, pick_run

# the formats' choices, from the engine's list (export/formats.py): (label, "format:quant")
CHOICES = [(c.label, f"{f.name}:{c.quant}") for f in EXPORT_FORMATS.values() for c in f.choices]
# what each choice writes, shown under Progress until an export says what it wrote
NOTES = {f"{f.name}:{c.quant}": c.note for f in EXPORT_FORMATS.values() for c in f.choices}


# the job's records as the screen receives them (deploy/job.py)
ExportProgress, ExportFinished = JobProgress, JobFinished


def export_command(run: str, choice: str, force: bool) -> list[str]:
    fmt, quant = choice.split(":", 1)
    cmd = [sys.executable, "-m", "sage_ft_tui", "export", run, "--json", "--format", fmt]
    return cmd + (["--quant", quant] if quant else []) + (["--force"] if force else [])


def entry_text(e: dict) -> Text:
    from sage_ft_tui.engine.fsutil import fmt_bytes

    t = Text()
    t.append("Exported: ", style="bold")
    t.append(f"{e.get('path')} ({fmt_bytes(e.get('bytes') or 0)})\n")
    for line in summary(e):
        t.append(line + "\n", style="dim" if line.startswith(("Ollama", "Modelfile")) else "")
    return t


class ExportScreen(JobScreen):
    WHERE = "Export"
    JOB, START, CANCEL = "export", "export", "cancel_export"
    DEFAULT_CSS = """
    ExportScreen #exp-body { height: 1fr; }
    ExportScreen #exp-form { width: 44; height: 1fr; }
    ExportScreen #exp-out { width: 1fr; height: 1fr; }
    ExportScreen .field-label { margin-top: 1; color: $text-muted; }
    ExportScreen #exp-buttons { height: 3; margin-top: 1; }
    ExportScreen #exp-buttons Button { margin-right: 1; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back", id="nav.back"),
        Binding("x", "export", "Export", id="export.start"),
        Binding("ctrl+c", "cancel_export", "Cancel", id="export.cancel", priority=True),  # shown while it runs
    ]

    def __init__(self, run_dir: Optional[str] = None, **kw):
        super().__init__(Path(run_dir) if run_dir else (Path(p) if (p := pick_run("merged")) else None), **kw)

    def compose(self) -> ComposeResult:
        name = self.run_dir.name if self.run_dir else "no run"
        yield TopBar(f"Export · {name}", note="GGUF for llama.cpp / Ollama, or HF", id="topbar")
        with Horizontal(id="exp-body"):
            with Vertical(id="exp-form", classes="panel") as v:
                v.border_title = "What to write"
                yield Static("Format", classes="field-label")
                yield Select(CHOICES, value=CHOICES[0][1], id="exp-choice", allow_blank=False)
                yield Checkbox("Replace an earlier export of ours", id="exp-force")
                with Horizontal(id="exp-buttons"):
                    yield Button("Export", id="exp-go", variant="primary")
                    yield Button("Cancel", id="exp-cancel", disabled=True)
            with Vertical(id="exp-out", classes="panel") as v:
                v.border_title = "Progress"
                yield Static("", id="exp-stage")
                yield Static(Text(NOTES[CHOICES[0][1]], style="dim"), id="exp-result")
                yield Static("", id="error", classes="error")
        yield from self.footer()

    def on_mount(self) -> None:
        if self.run_dir is None:
            self.say_error(no_run_error("export"))
            self.query_one("#exp-go", Button).disabled = True

    def on_select_changed(self, event: Select.Changed) -> None:
        """The note follows the choice (q8_0 chosen: q8_0's note, not q4_k_m's)."""
        if event.select.id == "exp-choice" and not self.running:
            self.query_one("#exp-result", Static).update(Text(NOTES.get(str(event.value), ""), style="dim"))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "exp-go":
            self.action_export()
        elif event.button.id == "exp-cancel":
            self.action_cancel_export()

    def action_export(self) -> None:
        if self.running or self.run_dir is None:
            return
        cmd = export_command(
            str(self.run_dir),
            str(self.query_one("#exp-choice", Select).value),
            self.query_one("#exp-force", Checkbox).value,
        )
        self.say_error(None)
        self.start_job(cmd)

    def action_cancel_export(self) -> None:
        self.cancel_job()

    def cancelling(self) -> None:
        self.query_one("#exp-stage", Static).update("cancelling…")

    def job_progress(self, stage: str, info: dict) -> None:
        if stage == "done":  # written; "done" is said with its details, once the job has ended
            text = f"written {Path(str(info.get('path', ''))).name}; finishing…"
        else:
            text = STAGES[stage](info) if stage in STAGES else stage
        self.query_one("#exp-stage", Static).update(text)

    def job_finished(self, result: Optional[dict], error: Optional[SageError]) -> None:
        if error is not None:
            self.query_one("#exp-stage", Static).update("")
            self.say_error(error)
            return
        entry = (result or {}).get("export")
        if not entry:  # nothing to show: say so rather than "done"
            self.query_one("#exp-stage", Static).update("ended without a report (see the export folder)")
            return
        self.query_one("#exp-stage", Static).update("done")
        self.query_one("#exp-result", Static).update(entry_text(entry))

    def set_busy(self, busy: bool) -> None:
        self.query_one("#exp-go", Button).disabled = busy
        self.query_one("#exp-cancel", Button).disabled = not busy
        self.query_one("#exp-choice", Select).disabled = busy
        self.query_one("#exp-force", Checkbox).disabled = busy
