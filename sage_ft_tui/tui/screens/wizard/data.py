"""Step 3, Data: pick a file; it is detected and validated in a worker, then shown as
format, rows, bad rows (file:line and why), a token-length histogram with the share cut
at max length, and a preview with the trained part set apart from the masked prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DirectoryTree, Input, Static

from sage_ft_tui.engine.data.readers import is_data_name
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.tui.screens.base import WizardScreen
from sage_ft_tui.tui.widgets.charts import S, histogram
from sage_ft_tui.tui.widgets.pairs import pairs_preview, segments_text
from sage_ft_tui.tui.widgets.plot import Plot

MAX_BAD_SHOWN = 8


class DataTree(DirectoryTree):
    """Folders and data files only; hidden entries left out."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or is_data_name(p.name))]


def ensure_tiny_off_process() -> None:
    """Build tiny-demo if needed (the engine builds it in a child process: torch stays out)."""
    from sage_ft_tui.engine.models.tiny import ensure_tiny_model

    ensure_tiny_model()


def inspect(paths: list[str], task: str, model: str, max_length: int):
    from sage_ft_tui.engine.data.inspect import inspect_data

    if model.strip().lower() == "tiny-demo":
        ensure_tiny_off_process()
    return inspect_data(paths, task=task, model=model, max_length=max_length, preview=4)


class DataScreen(WizardScreen):
    STEP = "Data"
    BINDINGS = WizardScreen.BINDINGS + [
        Binding("ctrl+l", "focus_path", "Type a path", id="data.path"),
        Binding("ctrl+t", "focus_tree", "Files", id="data.tree"),
    ]

    def __init__(self):
        super().__init__()
        self.busy = False

    def compose(self) -> ComposeResult:
        yield from self.compose_head()
        with Horizontal(classes="body"):
            with Vertical(id="data-pick", classes="panel") as v:
                v.border_title = "Training data"
                yield DataTree(str(self.app.cwd), id="data-tree")
                yield Input(placeholder="path to a file, then enter", compact=True, id="data-path")
            with VerticalScroll(id="data-result", classes="panel") as v:
                v.border_title = "What the model will see"
                yield Static("Choose a file on the left (enter), or type its path.", id="data-summary")
                yield Static(id="error", classes="error")
                yield Static(id="data-bad", classes="bad")
                yield Static("Token lengths", classes="subhead", id="hist-head")
                yield Plot(id="data-hist")
                yield Static(id="data-legend", classes="legend")
                yield Static(id="data-preview")
        yield from self.footer()

    def on_mount(self) -> None:
        for wid in ("#error", "#data-bad", "#hist-head", "#data-hist", "#data-legend"):
            self.query_one(wid).display = False
        tree = self.query_one(DataTree)
        tree.root.set_label(f"{self.app.cwd.name or self.app.cwd}/")
        if self.app.state.inspection is not None and self.app.state.data_paths:
            self.query_one("#data-path", Input).value = self._rel(self.app.state.data_paths[0])
            self._show(self.app.state.inspection, None)
        self.query_one(DataTree).focus()

    def _rel(self, p: str) -> str:
        try:
            return str(Path(p).relative_to(self.app.cwd))
        except ValueError:
            return p

    # ---- choosing --------------------------------------------------------------------
    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#data-path", Input).value = self._rel(str(event.path))
        self.choose(str(event.path))

    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        if self.app.state.task == "code":
            self.query_one("#data-path", Input).value = self._rel(str(event.path))
            self.choose(str(event.path))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            p = Path(event.value.strip()).expanduser()
            self.choose(str(p if p.is_absolute() else self.app.cwd / p))

    def action_focus_path(self) -> None:
        self.query_one("#data-path", Input).focus()

    def action_focus_tree(self) -> None:
        self.query_one(DataTree).focus()

    def choose(self, path: str) -> None:
        if self.app.state.task == "code":
            return self.choose_repo(path)
        s = self.app.state
        s.data_paths, s.inspection = [str(Path(path).resolve())], None
        self.busy = True
        self.validity_changed()
        self.query_one("#data-summary", Static).update(Text(f"Checking {self._rel(path)} …", style="italic"))
        self.query_one("#data-result").loading = self.app.live
        task, model, max_len = s.task or "instruction", s.model or "tiny-demo", s.max_length
        self.app.background(self, "data.inspect", lambda: inspect([path], task, model, max_len), self._show)

    # ---- results ---------------------------------------------------------------------
    def _show(self, ins, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        self.busy = False
        self.query_one("#data-result").loading = False
        if err is not None:  # the inspection itself failed (not: the data is bad)
            self.app.state.inspection = None
            self.query_one("#data-summary", Static).update("")
            self.say_error(err)
            self.validity_changed()
            return
        self.app.state.inspection = ins
        self.query_one("#data-summary", Static).update(self._summary(ins))
        self.say_error(ins.error)
        bad = self.query_one("#data-bad", Static)
        bad.display = bool(ins.bad_rows)
        if ins.bad_rows:
            bad.update(self._bad(ins))
        has_len = bool(ins.token_lengths)
        for wid in ("#hist-head", "#data-hist"):
            self.query_one(wid).display = has_len
        if has_len:
            cut = self.app.state.max_length
            self.query_one("#hist-head", Static).update(
                Text.assemble(
                    ("Token lengths", "bold"),
                    (f"  {len(ins.token_lengths)} samples · ", "dim"),
                    (
                        f"{ins.share_truncated:.1%} longer than {cut} and cut",
                        S("hist.cut") if ins.share_truncated else "dim",
                    ),
                )
            )
            lengths = list(ins.token_lengths)
            self.query_one("#data-hist", Plot).paint(lambda w, h: histogram(lengths, w, h, cut=cut))
        self.query_one("#data-legend").display = bool(ins.preview)
        self.query_one("#data-legend", Static).update(
            Text.assemble(
                ("Preview  ", "bold"),
                ("prompt (masked, not trained)", S("masked")),
                ("   ", ""),
                ("answer (trained)", S("trained")),
            )
        )
        self.query_one("#data-preview", Static).update(self._preview(ins))
        self.validity_changed()

    def _summary(self, ins) -> Text:
        t = Text()
        ok = ins.ok
        t.append("✓ " if ok else "✗ ", style="bold #98c379" if ok else "bold #e06c75")
        t.append(f"{ins.format or 'unknown format'}", style="bold")
        t.append(f"  ·  {ins.rows} rows  ·  {ins.usable} usable  ·  ")
        t.append(
            f"{len(ins.bad_rows) if ins.error or not ins.rows else ins.rows - ins.usable} bad",
            style="bold #e06c75" if ins.bad_rows else "",
        )
        if ins.files:
            names = ", ".join(self._rel(f) for f in ins.files[:3]) + (" …" if len(ins.files) > 3 else "")
            t.append(f"\n{names}", style="dim")
        for warning in ins.warnings:  # e.g. tools the chat template cannot render
            t.append(f"\n⚠ {warning}", style="#e5c07b")
        return t

    def _bad(self, ins) -> Text:
        t = Text()
        t.append("Bad rows\n", style="bold #e06c75")
        for where, reason in ins.bad_rows[:MAX_BAD_SHOWN]:
            t.append(f"  {self._rel(where)}", style="bold")
            t.append(f"  {reason}\n")
        more = len(ins.bad_rows) - MAX_BAD_SHOWN
        if more > 0:
            t.append(f"  … and {more} more\n", style="dim")
        return t

    def _preview(self, ins):
        if ins.pairs:  # preference / GRPO rows: chosen and rejected side by side
            return pairs_preview(ins.pairs)
        t = Text()
        for i, sample in enumerate(ins.preview):
            t.append(f"── sample {i + 1} " + "─" * 30 + "\n", style="dim")
            t.append_text(segments_text(sample))  # tool calls and reasoning marked apart
            if not t.plain.endswith("\n"):
                t.append("\n")
        return t

    # ---- the code task: a repository, scanned (files, skips, secrets) -----------------
    def choose_repo(self, path: str) -> None:
        s = self.app.state
        s.repo, s.code_data, s.inspection = None, None, None
        self.busy = True
        self.validity_changed()
        self.query_one("#data-summary", Static).update(Text(f"Scanning {self._rel(path)} …", style="italic"))
        model = s.model or "tiny-demo"

        def scan():
            from sage_ft_tui.engine.recipes.code import code_config, code_scan_preview, scan_summary_lines

            if model.strip().lower() == "tiny-demo":
                ensure_tiny_off_process()
            cfg = code_config(path, model)
            return cfg, scan_summary_lines(code_scan_preview(cfg))

        self.app.background(self, "data.scan", scan, self._scanned)

    def _scanned(self, result, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        self.busy = False
        self.say_error(err)
        if err is None:
            cfg, lines = result
            s = self.app.state
            s.repo, s.code_data = cfg.data.repo, cfg.data.model_dump(mode="json")
            self.query_one("#data-summary", Static).update(Text("\n".join(lines)))
        else:
            self.query_one("#data-summary", Static).update("")
        self.validity_changed()

    def valid(self) -> bool:
        if self.app.state.task == "code":
            return not self.busy and self.app.state.code_data is not None
        ins = self.app.state.inspection
        return not self.busy and ins is not None and ins.ok
