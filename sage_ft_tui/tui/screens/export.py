"""Export: the merged model as GGUF (+ Ollama Modelfile) or an HF folder, the GGUF checked
by llama.cpp itself. Runs `sage-ft-tui export RUN --json` in a subprocess; its job records
(engine/jobs.py) come back as messages from a thread worker."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Checkbox, Select, Static

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.export.report import STAGES, summary
from sage_ft_tui.tui.screens.base import BaseScreen, TopBar
from sage_ft_tui.tui.screens.deploy.pick import no_run_error, pick_run

CHOICES = [
    ("GGUF q8_0", "gguf:q8_0"),
    ("GGUF f16", "gguf:f16"),
    ("GGUF q4_k_m (gguf extra)", "gguf:q4_k_m"),
    ("HF folder (safetensors)", "hf:"),
]
# what each choice writes, shown under Progress until an export says what it wrote
NOTES = {
    "gguf:q8_0": "q8_0: 8-bit GGUF (about half the f16 size, near-lossless) + an Ollama Modelfile.",
    "gguf:f16": "f16: the 16-bit GGUF, the largest and exact + an Ollama Modelfile.",
    "gguf:q4_k_m": "q4_k_m needs llama.cpp's llama-quantize (the gguf extra): f16 first, then quantized.",
    "hf:": "HF folder: the merged model as safetensors shards, loadable by transformers and vLLM.",
}


class ExportProgress(Message):
    def __init__(self, stage: str, info: dict):
        super().__init__()
        self.stage = stage
        self.info = info


class ExportFinished(Message):
    def __init__(self, entry: Optional[dict], error: Optional[SageError]):
        super().__init__()
        self.entry = entry
        self.error = error


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


class ExportScreen(BaseScreen):
    WHERE = "Export"
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
        super().__init__(**kw)
        self.run_dir = Path(run_dir) if run_dir else (Path(p) if (p := pick_run("merged")) else None)
        self.proc: Optional[subprocess.Popen] = None
        self.running = False

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

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        # an action that does not apply now is hidden (False), not dimmed: the footer shows what works
        if action == "export":
            return not self.running and self.run_dir is not None
        if action == "cancel_export":
            return self.running
        if action == "back":
            return not self.running
        return True

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
        self.running = True
        self._set_busy(True)
        self.run_worker(lambda: self._run(cmd), thread=True, name="export", exclusive=True, exit_on_error=False)

    def _run(self, cmd: list[str]) -> None:
        from sage_ft_tui.engine.jobs import run_job

        def started(proc: subprocess.Popen) -> None:
            self.proc = proc

        out = run_job(
            cmd,
            job="export",
            on_start=started,
            on_progress=lambda p: self.post_message(ExportProgress(p.stage, p.info)),
        )
        self.post_message(ExportFinished((out.result or {}).get("export"), out.error))

    def action_cancel_export(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.query_one("#exp-stage", Static).update("cancelling…")

    def on_export_progress(self, message: ExportProgress) -> None:
        if message.stage == "done":  # written; "done" is said with its details, once the job has ended
            text = f"written {Path(str(message.info.get('path', ''))).name}; finishing…"
        else:
            text = STAGES[message.stage](message.info) if message.stage in STAGES else message.stage
        self.query_one("#exp-stage", Static).update(text)

    def on_export_finished(self, message: ExportFinished) -> None:
        self.running = False
        self.proc = None
        self._set_busy(False)
        if message.error is not None:
            self.query_one("#exp-stage", Static).update("")
            self.say_error(message.error)
            return
        if not message.entry:  # nothing to show: say so rather than "done"
            self.query_one("#exp-stage", Static).update("ended without a report (see the export folder)")
            return
        self.query_one("#exp-stage", Static).update("done")
        self.query_one("#exp-result", Static).update(entry_text(message.entry))

    def _set_busy(self, busy: bool) -> None:
        self.query_one("#exp-go", Button).disabled = busy
        self.query_one("#exp-cancel", Button).disabled = not busy
        self.query_one("#exp-choice", Select).disabled = busy
        self.query_one("#exp-force", Checkbox).disabled = busy
        self.refresh_bindings()
