"""Merge: pick the adapter (final or a checkpoint), merge, watch progress, read the self-check.

The merge itself runs as `sage-ft-tui merge RUN --json` in a subprocess (this process
never imports torch), through the job screens' shared plumbing (deploy/job.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, ProgressBar, Select, Static

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.tui.screens.base import TopBar
from sage_ft_tui.tui.screens.deploy.job import JobScreen
from sage_ft_tui.tui.screens.deploy.pick import no_run_error, pick_run

STAGES = ("resolve", "import", "load", "adapter", "merge", "save", "check", "report", "install", "done")
STAGE_TEXT = {
    "resolve": "finding the adapter",
    "import": "importing torch + transformers",
    "report": "writing the report",
    "load": "loading the base model",
    "adapter": "loading the adapter",
    "merge": "merging (merge_and_unload)",
    "save": "saving safetensors + tokenizer",
    "check": "self-check: merged vs base+adapter",
    "install": "moving into place",
    "done": "done",
}


class MergeScreen(JobScreen):
    WHERE = "Merge"
    JOB, START, CANCEL = "merge", "merge", "cancel_merge"
    DEFAULT_CSS = """
    MergeScreen #merge-body { height: 1fr; }
    MergeScreen #merge-form { width: 44; height: 1fr; }
    MergeScreen #merge-out { width: 1fr; height: 1fr; }
    MergeScreen .field-label { margin-top: 1; color: $text-muted; }
    MergeScreen #merge-buttons { height: 3; margin-top: 1; }
    MergeScreen #merge-buttons Button { margin-right: 1; }
    MergeScreen #merge-stage { margin-top: 1; height: 1; }
    MergeScreen #merge-result { height: auto; margin-top: 1; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back", id="nav.back"),
        # priority: a focused Select would take the letter as type-to-search (no text field here)
        Binding("m", "merge", "Merge", id="merge.start", priority=True),
        Binding("ctrl+c", "cancel_merge", "Cancel merge", id="merge.cancel", priority=True),  # shown while it runs
        Binding("v", "serve", "Serve it", id="merge.serve", priority=True),  # v: Serve, as on Runs and Monitor
        Binding("x", "export", "Export it", id="merge.export", priority=True),
    ]

    def __init__(self, run_dir: Optional[str] = None, **kw):
        super().__init__(Path(run_dir) if run_dir else (Path(p) if (p := pick_run("adapter")) else None), **kw)
        self.report: Optional[dict] = None

    # ---- layout --------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        name = self.run_dir.name if self.run_dir else "no run"
        yield TopBar(f"Merge · {name}", note="adapter → standalone model", id="topbar")
        with Horizontal(id="merge-body"):
            with Vertical(id="merge-form", classes="panel") as v:
                v.border_title = "What to merge"
                yield Static("Adapter", classes="field-label")
                yield Select(self._sources(), id="merge-source", allow_blank=False)
                yield Static("Precision", classes="field-label")
                yield Select(
                    [(d, d) for d in ("auto", "float32", "bfloat16", "float16")],
                    value="auto",
                    id="merge-dtype",
                    allow_blank=False,
                )
                yield Checkbox("Replace an existing merged model", id="merge-force")
                with Horizontal(id="merge-buttons"):
                    yield Button("Merge", id="merge-go", variant="primary")
                    yield Button("Cancel", id="merge-cancel", disabled=True)
            with Vertical(id="merge-out", classes="panel") as v:
                v.border_title = "Progress"
                yield ProgressBar(total=len(STAGES), show_eta=False, id="merge-progress")
                yield Static("", id="merge-stage")
                yield Static(self._existing(), id="merge-result")
                yield Static("", id="error", classes="error")
        yield from self.footer()

    def on_mount(self) -> None:
        if self.run_dir is None:
            self.say_error(no_run_error("merge"))
            self.query_one("#merge-go", Button).disabled = True

    def _sources(self) -> list[tuple[str, str]]:
        if self.run_dir is None:
            return [("no run", "")]
        from sage_ft_tui.engine.runs.state import checkpoints

        out = []
        if (RunLayout(self.run_dir).adapter / "adapter_config.json").exists():
            out.append(("final adapter", ""))
        cks = checkpoints(self.run_dir)
        if cks:
            out.append((f"latest checkpoint ({cks[-1].name})", "latest"))
            out += [(p.name, p.name.rsplit("-", 1)[1]) for p in reversed(cks)]
        return out or [("nothing to merge yet", "")]

    def _existing(self) -> Text:
        from sage_ft_tui.engine.deploy.artifacts import read_report

        if self.run_dir is None:
            return Text("")
        rep = read_report(self.run_dir)
        if rep and (RunLayout(self.run_dir).merged).is_dir():
            return self._report_text(rep, title="Already merged")
        return Text(
            "Not merged yet. The merge checks itself: the merged model must give the same logits as "
            "base+adapter before it replaces anything.",
            style="dim",
        )

    # ---- actions ---------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        # an action that does not apply now is hidden (False), not dimmed: the footer shows what works
        if action in ("serve", "export"):
            return self.run_dir is not None and RunLayout(self.run_dir).merged.is_dir() and not self.running
        return super().check_action(action, parameters)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "merge-go":
            self.action_merge()
        elif event.button.id == "merge-cancel":
            self.action_cancel_merge()

    def action_merge(self) -> None:
        if self.running or self.run_dir is None:
            return
        from sage_ft_tui.engine.deploy.artifacts import merge_cli_command

        src = self.query_one("#merge-source", Select).value
        cmd = merge_cli_command(
            str(self.run_dir),
            checkpoint=src or None,
            dtype=str(self.query_one("#merge-dtype", Select).value),
            force=self.query_one("#merge-force", Checkbox).value,
        )
        self.say_error(None)
        self.query_one("#merge-progress", ProgressBar).update(progress=0)
        self.query_one("#merge-result", Static).update("")
        self.start_job(cmd)

    def action_cancel_merge(self) -> None:
        self.cancel_job()  # the merge removes its temporary folder and exits 130

    def cancelling(self) -> None:
        self.query_one("#merge-stage", Static).update("cancelling…")

    def action_serve(self) -> None:
        if self.run_dir is not None:
            self.app.open("serve", str(self.run_dir))

    def action_export(self) -> None:
        if self.run_dir is not None:
            self.app.open("export", str(self.run_dir))

    # ---- messages from the worker ---------------------------------------------------
    def job_progress(self, stage: str, info: dict) -> None:
        if stage in STAGES:
            self.query_one("#merge-progress", ProgressBar).update(progress=STAGES.index(stage) + 1)
        extra = ""
        if stage == "load":
            extra = f" — {info.get('dtype')} on {info.get('device')}"
        elif stage == "resolve":
            extra = f" — {info.get('label')}"
        self.query_one("#merge-stage", Static).update(STAGE_TEXT.get(stage, stage) + extra)

    def job_finished(self, result: Optional[dict], error: Optional[SageError]) -> None:
        if error is not None:
            self.query_one("#merge-stage", Static).update("")
            self.say_error(error)
            from sage_ft_tui.engine.deploy.artifacts import read_report

            rep = read_report(self.run_dir) if self.run_dir else {}
            if rep and not rep.get("self_check", {}).get("passed", True):
                self.query_one("#merge-result", Static).update(self._report_text(rep, title="Failed self-check"))
            return
        self.report = (result or {}).get("report")
        self.query_one("#merge-progress", ProgressBar).update(progress=len(STAGES))
        self.query_one("#merge-stage", Static).update("done — v: serve it · x: export (GGUF / HF)")
        self.query_one("#merge-result", Static).update(self._report_text(self.report or {}))
        self.refresh_bindings()

    def set_busy(self, busy: bool) -> None:
        self.query_one("#merge-go", Button).disabled = busy
        self.query_one("#merge-cancel", Button).disabled = not busy
        for sel in ("#merge-source", "#merge-dtype", "#merge-force"):
            self.query_one(sel).disabled = busy

    @staticmethod
    def _report_text(rep: dict, title: str = "Merged") -> Text:
        from sage_ft_tui.engine.fsutil import fmt_bytes

        sc = rep.get("self_check", {})
        t = Text()
        t.append(f"{title}: ", style="bold")
        t.append(f"{rep.get('source', '?')} → {rep.get('output', '?')}\n")
        if rep.get("bytes") is not None:
            t.append(
                f"weights   {len(rep.get('shards', []))} safetensors shard(s), {fmt_bytes(rep['bytes'])}, {rep.get('dtype')}\n"
            )
        if rep.get("eos_tokens"):
            t.append(
                f"eos       {', '.join(rep['eos_tokens'])}   chat template: {'yes' if rep.get('chat_template') else 'no'}\n"
            )
        if sc:
            ok = sc.get("passed")
            t.append("self-check ", style="bold")
            t.append("passed" if ok else "FAILED", style="bold green" if ok else "bold red")
            t.append(
                f"  max relative logit difference {sc.get('max_rel_diff', 0):.1e} (tolerance {sc.get('tolerance', 0):.0e}), "
                f"top-1 agreement {sc.get('top1_agreement', 0):.0%}\n"
            )
        if rep.get("seconds") is not None:
            t.append(
                f"took      {rep['seconds']:.1f}s, peak memory {fmt_bytes(rep.get('peak_rss_bytes', 0))}\n", style="dim"
            )
        return t
