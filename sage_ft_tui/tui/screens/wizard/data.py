"""Step 3, Data: pick a file; it is detected and validated in a worker, then shown as
format, rows, bad rows (file:line and why), a token-length histogram with the share cut
at max length, and a preview with the trained part set apart from the masked prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DirectoryTree, Input, Label, Select, Static

from sage_ft_tui.engine.data.samples import samples_for
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.tui.messages import BuildProgress
from sage_ft_tui.tui.screens.base import WizardScreen
from sage_ft_tui.tui.screens.wizard.data_view import (
    FIT_KEY,
    bad_text,
    fit_length,
    fit_text,
    percentile,
    preview_text,
    sample_text,
    summary_text,
)
from sage_ft_tui.tui.screens.wizard.words import in_words, labelled, unreadable
from sage_ft_tui.tui.widgets.charts import S, histogram, no_color
from sage_ft_tui.tui.widgets.file_pick import UP, DataTree, PathInput
from sage_ft_tui.tui.widgets.plot import Plot
from sage_ft_tui.tui.widgets.sample_images import SampleImages

# The run settings this step shows, by their on-screen labels (errors name them so too).
KNOB_LABELS = {"training.max_length": "Max length", "data.max_bad_share": "Bad-row share"}


def ensure_tiny_off_process(progress=None) -> None:
    """Build tiny-demo if needed (the engine builds it in a child process: torch stays out)."""
    from sage_ft_tui.engine.models.tiny import ensure_tiny_model

    ensure_tiny_model(progress=progress)


def inspect(paths: list[str], task: str, model: str, max_length: int, max_bad_share: float = 0.05, progress=None):
    from sage_ft_tui.engine.data.inspect import inspect_data

    if model.strip().lower() == "tiny-demo":
        ensure_tiny_off_process(progress)
    return inspect_data(paths, task=task, model=model, max_length=max_length, preview=4, max_bad_share=max_bad_share)


class DataScreen(WizardScreen):
    STEP = "Data"
    BINDINGS = WizardScreen.BINDINGS + [
        Binding("ctrl+l", "focus_path", "Path", id="data.path", tooltip="Type a path"),
        Binding(
            FIT_KEY, "fit_length", "Fit length", id="data.fit", tooltip="Max length to the data's p99", priority=True
        ),
        Binding("ctrl+o", "change_model", "Model", id="data.model", priority=True),
        Binding(
            "ctrl+u", "use_folder", "Folder", id="data.folder", tooltip="Use the whole folder as data"
        ),  # in a field ctrl+u clears it
        Binding("backspace", "folder_up", "Up a folder", id="data.up", show=False),
        Binding("left", "tree_left", "Up a folder", id="data.left", show=False),
    ]

    def __init__(self):
        super().__init__()
        self.busy = False
        self.folder = None  # the folder the tree shows (browsable up and down)

    def compose(self) -> ComposeResult:
        yield from self.compose_head()
        with Horizontal(classes="body"):
            with Vertical(id="data-pick", classes="panel") as v:
                v.border_title = "Training data"
                yield DataTree(str(self.app.cwd), id="data-tree")
                yield PathInput(placeholder="file or folder, tab completes", compact=True, id="data-path")
                self.samples = samples_for(self.app.state.task or "instruction")  # bundled files that fit
                yield Select(
                    [(f"{x.name} · {x.rows} rows", str(x.path)) for x in self.samples],
                    prompt="Use a sample…" if self.samples else "(no sample for this task)",
                    compact=True,
                    disabled=not self.samples,
                    id="data-sample",
                )
            with VerticalScroll(id="data-result", classes="panel") as v:
                v.border_title = "What the model will see"
                yield Static("Choose a file on the left (enter), or type its path.", id="data-summary")
                with Horizontal(classes="field", id="data-knobs"):
                    yield Label(KNOB_LABELS["training.max_length"], classes="dlabel")
                    yield Input(compact=True, id="data-maxlen", type="integer")
                    yield Label(" " + KNOB_LABELS["data.max_bad_share"], classes="dlabel")
                    yield Input(compact=True, id="data-badshare", type="number")
                yield Static(id="data-knob-error", classes="error")
                yield Static(id="data-warn", classes="warn")
                yield Static(id="error", classes="error")
                yield Static(id="data-bad", classes="bad")
                yield Static("Token lengths", classes="subhead", id="hist-head")
                yield Static(id="data-fit")
                yield Plot(id="data-hist")
                yield Static(id="data-legend", classes="legend")
                yield Static(id="data-preview")
                yield SampleImages(id="data-images")  # instead of the block above when rows have images
        yield from self.footer()

    def on_mount(self) -> None:
        for wid in (
            "#error",
            "#data-bad",
            "#hist-head",
            "#data-fit",
            "#data-hist",
            "#data-legend",
            "#data-warn",
            "#data-knob-error",
        ):
            self.query_one(wid).display = False
        self.folder = self.app.cwd
        tree = self.query_one(DataTree)
        tree.root.set_label(f"{self.app.cwd.name or self.app.cwd}/")
        self._knobs()
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
        if event.path.name == UP:
            self.action_folder_up()
            return
        if self.app.state.task == "code":
            self.query_one("#data-path", Input).value = self._rel(str(event.path))
            self.choose(str(event.path))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "data-path" or not event.value.strip():
            return
        p = Path(event.value.strip()).expanduser()
        p = p if p.is_absolute() else self.app.cwd / p
        if p.is_dir() and self.app.state.task != "code":
            self.browse(p)  # a folder opens in the tree; ctrl+u uses the whole folder as data
        else:
            self.choose(str(p))

    def browse(self, folder: Path) -> None:
        self.folder = folder.resolve()
        tree = self.query_one(DataTree)
        tree.path = self.folder
        tree.root.set_label(f"{self.folder}/".replace(str(Path.home()), "~", 1))
        tree.focus()

    def action_folder_up(self) -> None:
        if self.focused is self.query_one(DataTree) and self.folder is not None and self.folder.parent != self.folder:
            self.browse(self.folder.parent)

    def action_tree_left(self) -> None:
        """Left in the tree: close the open folder under the cursor, else step to its parent
        entry, else go up a folder (as Backspace and the ".." entry do)."""
        tree = self.query_one(DataTree)
        node = tree.cursor_node
        if node is not None and node.allow_expand and node.is_expanded and node is not tree.root:
            node.collapse()
        elif node is not None and node.parent is not None and node.parent is not tree.root:
            tree.move_cursor(node.parent)
        else:
            self.action_folder_up()

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action == "tree_left":
            return self.focused is self.query_one(DataTree)  # elsewhere Left moves the cursor in a field
        return super().check_action(action, parameters)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "data-sample" and event.value is not Select.BLANK:
            self.query_one("#data-path", Input).value = self._rel(str(event.value))
            self.choose(str(event.value))

    def action_use_folder(self) -> None:
        """Every data file in the folder under the cursor (or the folder shown) as the data."""
        tree = self.query_one(DataTree)
        node = tree.cursor_node
        target = Path(node.data.path) if node is not None and node.data is not None else self.folder
        if target is not None and not target.is_dir():
            target = target.parent
        if target is not None:
            self.query_one("#data-path", Input).value = self._rel(str(target))
            self.choose(str(target))

    def action_change_model(self) -> None:
        self.app.wizard_goto("Model")

    # ---- the run's max length and bad-row share, as the run will use them --------------
    def _knobs(self) -> None:
        s = self.app.state
        self._filling = True
        self.query_one("#data-maxlen", Input).value = str(s.max_length)
        self.query_one("#data-badshare", Input).value = f"{s.max_bad_share:g}"
        self.call_after_refresh(self._knobs_done)

    def _knobs_done(self) -> None:
        self._filling = False

    def on_input_changed(self, event: Input.Changed) -> None:
        if getattr(self, "_filling", False) or event.input.id not in ("data-maxlen", "data-badshare"):
            return
        key, typ, example = (
            ("training.max_length", int, 2048)
            if event.input.id == "data-maxlen"
            else ("data.max_bad_share", float, 0.05)
        )
        label = KNOB_LABELS[key]
        said = self.query_one("#data-knob-error", Static)
        try:
            value = typ(event.value)
            self.app.state.build_config({key: value})
        except ValueError:
            line = unreadable(label, event.value, typ, example)
        except SageError as e:
            line = in_words(e, {key: label}, {key: event.value}).message
        else:
            line = ""
        event.input.set_class(bool(line), "-invalid")
        said.update(Text(f"✗ {line}" + ("  (0.05 = up to 5% of rows skipped)" if line and typ is float else "")))
        said.display = bool(line)
        if line:
            return
        self.app.state.overrides[key] = value
        self._reinspect()

    def _reinspect(self) -> None:
        """Recompute at the new max length / bad-row share (debounced: typing stays smooth)."""
        if not self.app.state.data_paths or self.app.state.task == "code":
            return
        if getattr(self, "_timer", None) is not None:
            self._timer.stop()
        if self.app.live:
            self._timer = self.set_timer(0.4, lambda: self.choose(self.app.state.data_paths[0]))
        else:
            self.choose(self.app.state.data_paths[0])

    def action_fit_length(self) -> None:
        ins = self.app.state.inspection
        if ins is None or not ins.token_lengths:
            self.app.bell()
            return
        self.query_one("#data-maxlen", Input).value = str(fit_length(list(ins.token_lengths)))

    def action_focus_path(self) -> None:
        self.query_one("#data-path", Input).focus()

    def choose(self, path: str) -> None:
        if self.app.state.task == "code":
            return self.choose_repo(path)
        s = self.app.state
        s.data_paths, s.inspection = [str(Path(path).resolve())], None
        self.busy = True
        self.validity_changed()
        self.query_one("#data-summary", Static).update(Text(f"Checking {self._rel(path)} …", style="italic"))
        self.query_one("#data-result").loading = self.app.live
        task, model, max_len, bad = s.task or "instruction", s.model or "tiny-demo", s.max_length, s.max_bad_share

        def progress(share: float, what: str) -> None:  # tiny-demo built first (first use only)
            if not self.app.is_running:  # the app quit: the engine stops the build's child
                raise SageError("the app closed while tiny-demo was being built", kind="model")
            self.post_message(BuildProgress("data.tiny", share, what))

        self.app.background(
            self, "data.inspect", lambda: inspect([path], task, model, max_len, bad, progress), self._show
        )

    def on_build_progress(self, message: BuildProgress) -> None:
        if self.busy and self.is_attached:
            self.query_one("#data-result").loading = False  # the line below says what goes on
            self.query_one("#data-summary", Static).update(
                Text(
                    f"building tiny-demo… {message.share:.0%} ({message.what}; first use only), then checking", "italic"
                )
            )

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
        self.query_one("#data-summary", Static).update(summary_text(ins, self._rel))
        self.say_error(labelled(ins.error, KNOB_LABELS))  # "raise Bad-row share", as the field is labelled
        warn = self.query_one("#data-warn", Static)
        warnings = list(getattr(ins, "warnings", []) or [])
        warn.display = bool(warnings)
        warn.update(Text("\n".join(f"! {w}" for w in warnings), style="italic"))
        bad = self.query_one("#data-bad", Static)
        bad.display = bool(ins.bad_rows)
        if ins.bad_rows:
            bad.update(bad_text(ins, self._rel))
        has_len = bool(ins.token_lengths)
        for wid in ("#hist-head", "#data-hist", "#data-fit"):
            self.query_one(wid).display = has_len
        if has_len:
            cut = self.app.state.max_length
            lengths = list(ins.token_lengths)
            fit = fit_length(lengths)
            self.query_one("#hist-head", Static).update(
                Text.assemble(
                    ("Token lengths", "bold"),
                    (
                        f"  {len(lengths)} samples · p95 {percentile(lengths, 0.95)} · p99 {percentile(lengths, 0.99)}\n",
                        "dim",
                    ),
                    (
                        f"{ins.share_truncated:.1%} longer than {cut} and cut",
                        S("hist.cut") if ins.share_truncated else "dim",
                    ),
                )
            )
            self._fit_cost(cut, fit)
            lengths = list(ins.token_lengths)
            self.query_one("#data-hist", Plot).paint(lambda w, h: histogram(lengths, w, h, cut=cut))
        self.query_one("#data-legend").display = bool(ins.preview)
        self.query_one("#data-legend", Static).update(
            Text.assemble(
                ("Preview  ", "bold"),
                ("prompt (masked, not trained)", S("masked")),
                ("   ", ""),
                ("answer (trained, underlined)" if no_color() else "answer (trained)", S("trained")),
            )
        )
        self.query_one("#data-preview", Static).update(preview_text(ins))
        rows_images = [] if ins.pairs else ins.images  # per sample, its ImageRefs
        pictured = self.query_one(SampleImages).show(ins.preview, rows_images, sample_text)
        self.query_one("#data-preview").display = not pictured
        self.validity_changed()

    # ---- what "fit max length" (FIT_KEY) costs in memory, against the max length now ------
    def _fit_cost(self, cut: int, fit: int) -> None:
        self.query_one("#data-fit", Static).update(fit_text(cut, fit, None))
        try:
            cfg = self.app.state.build_config()
        except SageError:
            return
        from sage_ft_tui.engine.runs.plan import length_cost

        self.app.background(self, "data.fit", lambda: length_cost(cfg, fit), self._fit_costed)

    def _fit_costed(self, cost, err: Optional[SageError]) -> None:
        if not self.is_attached or cost is None or cost.current_length != self.app.state.max_length:
            return  # the max length changed since: a newer estimate follows
        self.query_one("#data-fit", Static).update(fit_text(cost.current_length, cost.other_length, cost))

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
