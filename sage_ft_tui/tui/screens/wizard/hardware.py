"""Step 4, Hardware: what this machine has, the recommended preset and why, and the
hyperparameters (validated as you type; Next stays grey while one is wrong)."""

from __future__ import annotations

from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from sage_ft_tui.engine.config.presets import PresetConfigs
from sage_ft_tui.engine.config.schema import get_dotted
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import GiB
from sage_ft_tui.engine.hardware.gpus import GPUS, target_snapshot
from sage_ft_tui.tui.screens.base import WizardScreen
from sage_ft_tui.tui.screens.wizard.words import app_words, in_words, unreadable
from sage_ft_tui.tui.state import CHOICES, EDITABLE
from sage_ft_tui.tui.widgets.charts import S, bar, level_style

UNSET = {"data.validation_split": "auto (5%)"}  # keys whose empty field means their default

HERE = "this machine"
# config key -> the label this screen shows for it (errors name the label, never the key)
LABELS = {key: label for key, _t, label in EDITABLE.values()} | {key: label for key, _c, label in CHOICES.values()}


def recommend(model: str, snap) -> tuple[str, str]:
    """(what auto picks, why): engine.config.hardware_fit's fit for this model on this machine."""
    from sage_ft_tui.engine.config.hardware_fit import fit_hardware

    plan = fit_hardware(model, snap)
    c = plan.config
    quant = "4-bit QLoRA" if c.load_in_4bit else "8-bit QLoRA" if c.load_in_8bit else "LoRA"
    prec = "bf16" if c.bf16 else "fp16" if c.fp16 else "fp32"
    what = f"auto → {quant}, {prec}, micro-batch {c.batch_size} × {c.max_length} tokens"
    return what, "\n".join(f"• {app_words(line)}" for line in plan.lines)  # no flags or config keys


def machine_text(snap) -> Text:
    t = Text()
    if not snap.gpus:
        t.append("No NVIDIA GPU", style=S("bold $warning"))
        t.append(" — training runs on the CPU (fine for tiny-demo, slow for real models)\n")
        if snap.note:
            t.append(f"{snap.note}\n", style="dim")
    for g in snap.gpus:
        used = g.mem_used / g.mem_total if g.mem_total else None
        t.append(f"GPU {g.index}", style="bold")
        t.append(f"  {g.name}  ")
        t.append("bf16 ✓" if g.bf16 else "no bf16", style=S("$success") if g.bf16 else S("$warning"))
        if g.shared:
            t.append("  shared with others", style=S("bold $warning"))
        t.append("\n  VRAM ")
        t.append_text(bar(used, 12, style=level_style(used)))
        t.append(f" {g.mem_free / GiB:.1f}/{g.mem_total / GiB:.0f} GiB free")
        util = f"{g.util:.0f}%" if g.util is not None else "n/a"
        t.append(f" · util {util}\n")
    h = snap.host
    ram = h.ram_used / h.ram_total if h.ram_total else None
    t.append("CPU ", style="bold")
    t.append(f" {h.cpu_model} · {h.cores} threads\n")
    t.append("RAM ", style="bold")
    t.append(" ")
    t.append_text(bar(ram, 12, style=level_style(ram)))
    t.append(f" {(h.ram_total - h.ram_used) / GiB:.1f}/{h.ram_total / GiB:.0f} GiB free\n")
    t.append("Disk", style="bold")
    free = f"{h.disk_free / GiB:.1f} GiB" if h.disk_free is not None else "?"
    t.append(f"  {free} free where runs are written")
    if snap.driver:
        t.append(f"\n\ndriver {snap.driver} · CUDA {snap.cuda or '?'}", style="dim")
    return t


class HardwareScreen(WizardScreen):
    STEP = "Hardware"

    def __init__(self):
        super().__init__()
        self.snap = None
        self.error: Optional[SageError] = None
        self._filling = False

    def compose(self) -> ComposeResult:
        yield from self.compose_head()
        with Horizontal(classes="body"):
            with VerticalScroll(id="hw-machine", classes="panel") as v:
                v.border_title = "This machine"
                yield Static("Reading the hardware…", id="hw-text")
                yield Static(id="hw-why", classes="why")
                with Horizontal(classes="field"):
                    # plan for another card (engine/hardware/gpus.py): informational, the run still uses this machine
                    yield Label("Plan for", classes="flabel")
                    yield Select(
                        [(n, n) for n in (HERE,) + tuple(g.name for g in GPUS)],
                        value=HERE,
                        allow_blank=False,
                        compact=True,
                        id="f-target",
                    )
                yield Static(id="hw-mem", classes="mem")
            with VerticalScroll(id="hw-form", classes="panel") as v:
                v.border_title = "Settings"
                names = ("auto",) + tuple(PresetConfigs.NAMES)
                with Horizontal(classes="field"):
                    yield Label("Preset", classes="flabel")
                    yield Select(
                        [(n, n) for n in names],
                        value=self.app.state.preset or "auto",
                        allow_blank=False,
                        compact=True,
                        id="f-preset",
                    )
                for fid, (_key, choices, label) in CHOICES.items():
                    with Horizontal(classes="field"):
                        yield Label(label, classes="flabel")
                        yield Select([(c, c) for c in choices], allow_blank=False, compact=True, id=f"f-{fid}")
                for fid, (_key, typ, label) in EDITABLE.items():
                    with Horizontal(classes="field"):
                        yield Label(label, classes="flabel")
                        yield Input(
                            compact=True,
                            id=f"f-{fid}",
                            type="number" if typ is float else "integer",
                            placeholder=UNSET.get(_key, ""),
                        )
        yield Static(id="error", classes="error")
        yield from self.footer()

    def on_mount(self) -> None:
        self.query_one("#error").display = False
        self._fill()
        self.query_one("#f-preset", Select).focus()
        from sage_ft_tui.engine.hardware.probe import get_backend
        from sage_ft_tui.engine.paths import runs_home

        self.app.background(self, "hw.read", lambda: self._read(get_backend, runs_home), self._got_hw)

    def _read(self, get_backend, runs_home):
        snap = get_backend().snapshot(disk_path=runs_home())
        try:
            rec = recommend(self.app.state.model or "tiny-demo", snap)
        except SageError as e:
            rec = (None, f"{e.message} ({e.hint})")
        return snap, rec

    def _got_hw(self, result, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        if err is not None:
            self.query_one("#hw-text", Static).update(Text(f"{err.message}\n{err.hint}", style=S("$error")))
            return
        self.snap, (name, why) = result
        self.app.state.hardware = self.snap
        self.query_one("#hw-text", Static).update(machine_text(self.snap))
        t = Text()
        t.append("Recommended\n", style="bold")  # the value on its own line: it never overlaps the label
        t.append(f"{name or '—'}\n", style=S("bold $primary"))
        t.append(why or "", style="italic")
        self.app.state.preset_why = why
        self.query_one("#hw-why", Static).update(t)
        self._estimate()

    # ---- the form ------------------------------------------------------------------------
    def _fill(self) -> None:
        """Put the preset's values (plus the user's overrides) into the fields."""
        s = self.app.state
        try:
            raw = s.base_config().model_dump(mode="json")
        except SageError as e:
            self.error = e
            self.say_error(e)
            return
        self._filling = True
        for fid, (key, _typ, _label) in EDITABLE.items():
            v = s.overrides.get(key, get_dotted(raw, key))
            self.query_one(f"#f-{fid}", Input).value = _fmt(v)
        for fid, (key, _choices, _label) in CHOICES.items():
            self.query_one(f"#f-{fid}", Select).value = s.overrides.get(key, get_dotted(raw, key))
        self.call_after_refresh(self._done_filling)

    def _done_filling(self) -> None:
        self._filling = False
        self._validate()

    def _plan_for(self, target: str) -> None:
        model = self.app.state.model or "tiny-demo"
        card = target if target != HERE else (self.snap.gpus[0].name if self.snap and self.snap.gpus else None)
        state = self.app.state
        try:
            cfg = state.build_config() if card else None
        except SageError:
            cfg = None

        def work():
            try:
                rec = recommend(model, target_snapshot(target) if target != HERE else self.snap)
            except SageError as e:
                rec = None, f"{e.message} ({e.hint})"
            return (*rec, _time_lines(cfg, card, state.inspection) if cfg is not None else [])

        def done(result, err: Optional[SageError]) -> None:
            if self.is_attached and result is not None:
                name, why, timing = result
                t = Text()
                t.append(f"Recommended for {target}\n", style="bold")
                t.append(f"{name or '—'}\n", style="bold #61afef")
                t.append(why or "", style="italic")
                for label, value in timing:  # the time plan on that card (engine/runs/cost.py)
                    t.append(f"\n{label:<12}", style="dim")
                    t.append(value)
                self.query_one("#hw-why", Static).update(t)

        self.app.background(self, "hw.plan", work, done)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "f-target":
            if self.snap is not None or event.value != HERE:
                self._plan_for(str(event.value))
            return
        if event.select.id == "f-preset":
            if event.value != self.app.state.preset:
                self.app.state.preset = str(event.value)
                self.app.state.overrides.clear()
                self._fill()
            return
        if not self._filling:
            self._validate()

    def on_input_changed(self, event: Input.Changed) -> None:
        if not self._filling:
            self._validate()

    def _values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for fid, (key, typ, label) in EDITABLE.items():
            w = self.query_one(f"#f-{fid}", Input)
            text = w.value.strip()
            if not text and key in UNSET:
                out[key] = None  # the default (said by the placeholder)
                w.remove_class("-invalid")
                continue
            try:
                out[key] = typ(text)
                w.remove_class("-invalid")
            except ValueError:
                w.add_class("-invalid")
                example = get_dotted(self.app.state.base_config().model_dump(mode="json"), key)
                raise SageError(unreadable(label, text, typ, example)) from None
        for fid, (key, _c, _l) in CHOICES.items():
            out[key] = self.query_one(f"#f-{fid}", Select).value
        return out

    def _validate(self) -> None:
        try:
            values = self._values()
            self.app.state.build_config(values)
        except SageError as e:
            self.error = in_words(e, LABELS, self._typed())
            self._mark(getattr(e, "field", None))
        else:
            self.error = None
            base = self.app.state.base_config().model_dump(mode="json")
            edits = self.app.state.overrides  # only this step's keys: the Data and Method steps' edits stay
            for k, v in values.items():
                if get_dotted(base, k) != v:
                    edits[k] = v
                else:
                    edits.pop(k, None)
        self.say_error(self.error)
        self.validity_changed()
        self._estimate()

    def _estimate(self) -> None:
        if self.snap is None or self.error is not None:
            self.query_one("#hw-mem", Static).update("")
            return
        from sage_ft_tui.engine.hardware.estimate import estimate_for_config

        cfg, snap = self.app.state.build_config(), self.snap
        self.app.background(self, "hw.memory", lambda: estimate_for_config(cfg, snap), self._got_estimate)

    def _got_estimate(self, est, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        w = self.query_one("#hw-mem", Static)
        if err is not None or est is None:
            w.update(Text(f"Memory estimate unavailable: {err.message if err else '?'}", style="dim"))
            return
        t = Text()
        t.append("Memory  ", style="bold")
        fits = est.fits
        t.append(est.summary(), style=S("$success") if fits else S("$error") if fits is False else "")
        for note in est.notes:
            t.append(f"\n{note}", style=S("italic $warning"))
        w.update(Text.assemble(t, "\n", *_grid_lines(est)))

    def _typed(self) -> dict[str, str]:
        return {key: self.query_one(f"#f-{fid}", Input).value for fid, (key, _t, _l) in EDITABLE.items()}

    def _mark(self, key: Optional[str]) -> None:
        """The refused field marked (the others were read fine)."""
        for fid, (k, _t, _l) in EDITABLE.items():
            if k == key:
                self.query_one(f"#f-{fid}", Input).add_class("-invalid")

    def valid(self) -> bool:
        return self.error is None

    def commit(self) -> None:
        self._validate()


def _time_lines(cfg, card: str, inspection) -> list[tuple[str, str]]:
    """Tokens/s, wall time and the MFU assumed or measured, for the settings on `card`; the
    run's tokens from the Data step's inspection (engine/runs/plan.py)."""
    from sage_ft_tui.engine.runs.cost import estimate_cost, plan_tokens
    from sage_ft_tui.engine.runs.plan import plan

    try:
        tokens, basis = plan_tokens(plan(cfg, inspection)) if inspection is not None else (None, "")
        return estimate_cost(cfg, card, tokens=tokens, tokens_basis=basis).lines()
    except SageError as e:
        return [("time", f"unknown: {e.message}")]


def _grid_lines(est) -> list[Text]:
    out = []
    for part, n, _detail in est.breakdown():
        out.append(Text(f"  {part:<20}{n / GiB:7.2f} GiB\n", style="dim"))
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)
