"""The Method step (preference and GRPO tasks only; tui/flow.py says when it is shown).

Preference: the method (auto, then every method of the registry, engine/methods) and its
key settings (beta, DPO's loss type, SimPO's margin), each with its one-line help from the
schema. GRPO: the rewards, built-in (engine/methods/grpo_rewards.py's list) or `file.py:function`,
checked as typed (the file exists and defines it) and, on ctrl+k, called on the data's first
row in a child process (the engine's own check, rewards.probe_rewards).
"""

from __future__ import annotations

import typing
from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option
from textual.widgets.selection_list import Selection

from sage_ft_tui.engine.config.build import preference_uses
from sage_ft_tui.engine.config.schema import field_help
from sage_ft_tui.engine.config.sections import DPO_LOSSES, PreferenceSection
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.grpo_rewards import REWARD_HELP
from sage_ft_tui.engine.methods.registry import method_names, preference_methods
from sage_ft_tui.tui.screens.base import WizardScreen
from sage_ft_tui.tui.widgets.charts import S

# The methods and what each is, from the method registry (engine/methods: one descriptor each):
# a short tag for the list, and a sentence for the highlighted one.
METHODS: tuple[str, ...] = method_names()
METHOD_HELP = {
    "auto": ("chosen from the data", "DPO for chosen/rejected pairs, KTO for rows labelled good or bad.")
} | {m.name: (m.tag, m.help) for m in preference_methods().values()}
PAIRS_ONLY = tuple(m.name for m in preference_methods().values() if not m.labelled)
# The settings this step offers: (config key, label); each shown for the methods that read it.
SETTINGS = {
    "beta": ("preference.beta", "Beta"),
    "loss_type": ("preference.loss_type", "Loss type"),
    "simpo_gamma": ("preference.simpo_gamma", "SimPO margin"),
}
SHOWN_FOR = {fid: preference_uses().get(fid, ()) for fid in SETTINGS}
REWARDS_KEY = "grpo.rewards"


def method_label(name: str) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f"{name:<7}", style="bold")
    t.append(METHOD_HELP[name][0])
    return t


def rewards_legend() -> Text:
    t = Text()
    for name, help_ in REWARD_HELP.items():
        t.append(f"{name}: ", style="bold")
        t.append(f"{help_}\n", style="dim")
    return t


class MethodScreen(WizardScreen):
    STEP = "Method"
    DEFAULT_CSS = """
    MethodScreen #method-box { width: 1fr; }
    MethodScreen #method-list, MethodScreen #reward-list { height: auto; max-height: 1fr; border: none; background: transparent; }
    MethodScreen #method-settings { width: 1fr; }
    MethodScreen .mhelp { color: $text-muted; padding-left: 2; height: auto; }
    MethodScreen #method-note { height: auto; margin-top: 1; padding: 0 1; }
    MethodScreen #reward-check { height: auto; margin-top: 1; }
    MethodScreen #reward-help { height: auto; margin-top: 1; padding: 0 1; }
    MethodScreen #reward-chosen { height: auto; padding: 0 1; }
    """
    BINDINGS = WizardScreen.BINDINGS + [
        Binding("ctrl+k", "check_rewards", "Check rewards", id="method.check", priority=True),
    ]

    def __init__(self):
        super().__init__()
        self.error: Optional[SageError] = None
        self.checked: Optional[bool] = None  # GRPO: the rewards' last check (None: not run since the change)
        self.checking = False
        self._filling = True

    @property
    def grpo(self) -> bool:
        return self.app.state.task == "grpo"

    def compose(self) -> ComposeResult:
        yield from self.compose_head()
        helps = field_help()
        with Horizontal(classes="body"):
            if self.grpo:
                with VerticalScroll(id="method-box", classes="panel") as v:
                    v.border_title = "Rewards (space: on/off)"
                    yield SelectionList[str](
                        *[Selection(n, n) for n in REWARD_HELP],
                        id="reward-list",
                    )
                    yield Static(id="reward-chosen")  # what is on, in words: the check boxes differ by colour only
                    yield Label("Your own, from a file (file.py:function, comma between several)", classes="subhead")
                    yield Input(placeholder="e.g. my_rewards.py:score", compact=True, id="reward-files")
                    yield Static(id="reward-check")
                    yield Static(rewards_legend(), id="reward-help")
            else:
                with Vertical(id="method-box", classes="panel") as v:
                    v.border_title = "Preference method"
                    yield OptionList(*[Option(method_label(m), id=m) for m in METHODS], id="method-list")
                    yield Static(id="method-note")
                with VerticalScroll(id="method-settings", classes="panel") as v:
                    v.border_title = "Its settings"
                    for fid, (key, label) in SETTINGS.items():
                        with Horizontal(classes="field", id=f"row-{fid}"):
                            yield Label(label, classes="flabel")
                            if fid == "loss_type":
                                losses = typing.get_args(DPO_LOSSES)
                                yield Select([(x, x) for x in losses], allow_blank=False, compact=True, id=f"m-{fid}")
                            else:
                                yield Input(compact=True, type="number", id=f"m-{fid}")
                        yield Static(helps.get(key, ""), classes="mhelp", id=f"help-{fid}", markup=False)
        yield Static(id="error", classes="error")
        yield from self.footer()

    def on_mount(self) -> None:
        self.query_one("#error").display = False
        try:
            cfg = self.app.state.build_config()
        except SageError as e:
            self.error = e
            self.say_error(e)
            cfg = None
        if self.grpo:
            rewards = list(cfg.grpo.rewards) if cfg else ["exact_match"]
            sl = self.query_one("#reward-list", SelectionList)
            for r in rewards:
                if r in REWARD_HELP:
                    sl.select(r)
            files = [r.removeprefix(f"{self.app.cwd}/") for r in rewards if r not in REWARD_HELP]
            self.query_one("#reward-files", Input).value = ", ".join(files)
            sl.focus()
        else:
            p = cfg.preference if cfg else PreferenceSection()
            ol = self.query_one("#method-list", OptionList)
            for i, m in enumerate(METHODS):
                if m in PAIRS_ONLY and self._labelled():
                    ol.disable_option_at_index(i)
            ol.highlighted = METHODS.index(p.method)
            self.query_one("#m-beta", Input).value = f"{p.beta:g}"
            self.query_one("#m-simpo_gamma", Input).value = f"{p.simpo_gamma:g}"
            self.query_one("#m-loss_type", Select).value = p.loss_type
            ol.focus()
            self._shown_settings(p.method)
        self.call_after_refresh(self._filled)

    def _filled(self) -> None:
        self._filling = False
        self._validate()

    def _labelled(self) -> bool:
        ins = self.app.state.inspection
        return getattr(ins, "format", None) == "kto"

    # ---- preference ------------------------------------------------------------------------
    def _method(self) -> str:
        ol = self.query_one("#method-list", OptionList)
        return METHODS[ol.highlighted or 0]

    def _shown_settings(self, method: str) -> None:
        for fid in SETTINGS:
            on = method in SHOWN_FOR[fid]
            self.query_one(f"#row-{fid}").display = on
            self.query_one(f"#help-{fid}").display = on
        note = Text(METHOD_HELP[method][1] + "\n\n")
        if self._labelled():
            note.append("This data has one answer per row labelled good/bad: KTO (or auto).", style="italic")
        elif self.app.state.inspection is not None:
            note.append("This data has chosen/rejected pairs: every method applies.", style="italic dim")
        self.query_one("#method-note", Static).update(note)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self._shown_settings(event.option.id)
        if not self._filling:
            self._validate()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_next()

    # ---- GRPO ------------------------------------------------------------------------------
    def _rewards(self) -> list[str]:
        chosen = list(self.query_one("#reward-list", SelectionList).selected)
        typed = self.query_one("#reward-files", Input).value
        files = [self._absolute(f.strip()) for f in typed.split(",") if f.strip()]
        return [r for r in REWARD_HELP if r in chosen] + files

    def _absolute(self, spec: str) -> str:
        """file.py:function with the file relative to where the app started (as the Data step's
        paths are): the worker runs elsewhere, so the config holds the full path."""
        path, sep, fn = spec.rpartition(":")
        if not sep or not path or path.startswith(("/", "~")):
            return spec
        return f"{self.app.cwd / path}:{fn}"

    def on_selection_list_selected_changed(self, event) -> None:
        if not self._filling:
            self._validate()

    def action_check_rewards(self) -> None:
        """Call each file reward on the data's first row, in a child process (the engine's check)."""
        if not self.grpo or self.checking:
            self.app.bell()
            return
        self._validate()
        if self.error is not None:
            return
        rewards = self._rewards()
        ins = self.app.state.inspection
        first = (getattr(ins, "pairs", None) or [{}])[0]
        sample = {"prompt": str(first.get("prompt", "")), "answer": str(first.get("answer", ""))}
        cfg = self.app.state.build_config()
        self.checking = True
        self.query_one("#reward-check", Static).update(Text("checking the rewards on the first row…", "italic"))

        def check() -> None:
            from sage_ft_tui.engine.methods.grpo_rewards import probe_rewards

            probe_rewards(rewards, sample, format_regex=cfg.grpo.format_regex)

        self.app.background(self, "method.check", check, self._checked)

    def _checked(self, _result, err: Optional[SageError]) -> None:
        if not self.is_attached:
            return
        self.checking = False
        self.checked = err is None
        w = self.query_one("#reward-check", Static)
        if err is None:
            w.update(Text("✓ every reward ran on the first row and returned one number per answer", S("$success")))
        else:
            w.update("")
        self.error = err
        self.say_error(err)
        self.validity_changed()

    # ---- both ------------------------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        if not self._filling:
            self._validate()

    def on_select_changed(self, event: Select.Changed) -> None:
        if not self._filling:
            self._validate()

    def _values(self) -> dict[str, Any]:
        if self.grpo:
            return {REWARDS_KEY: self._rewards()}
        out: dict[str, Any] = {"preference.method": self._method()}
        for fid, (key, label) in SETTINGS.items():
            if self._method() not in SHOWN_FOR[fid]:
                continue
            if fid == "loss_type":
                out[key] = self.query_one(f"#m-{fid}", Select).value
                continue
            text = self.query_one(f"#m-{fid}", Input).value.strip()
            try:
                out[key] = float(text)
            except ValueError:
                raise SageError(
                    f"{label} must be a number, e.g. 0.1 (now {'empty' if not text else repr(text)})"
                ) from None
        return out

    def _validate(self) -> None:
        self.checked = None
        if self.grpo:
            on = self._rewards()
            self.query_one("#reward-chosen", Static).update(
                Text.assemble(
                    ("rewards on: ", "bold"), ", ".join(r.removeprefix(f"{self.app.cwd}/") for r in on) or "none"
                )
            )
        check = self.query("#reward-check")
        if check:
            check.first(Static).update("")
        try:
            values = self._values()
            if self.grpo:
                self._check_files(values[REWARDS_KEY])
            elif values["preference.method"] in PAIRS_ONLY and self._labelled():
                raise SageError(
                    f"{values['preference.method'].upper()} needs chosen/rejected pairs; this data has one answer "
                    "per row labelled good/bad: choose KTO or auto"
                )
            self.app.state.build_config(values)
        except SageError as e:
            self.error = e
        else:
            self.error = None
            base = self.app.state.base_config().model_dump(mode="json")
            from sage_ft_tui.engine.config.schema import get_dotted

            for k, v in values.items():
                if get_dotted(base, k) == v:
                    self.app.state.overrides.pop(k, None)
                else:
                    self.app.state.overrides[k] = v
        self.say_error(self._worded(self.error))
        self.validity_changed()

    def _check_files(self, rewards: list[str]) -> None:
        if not rewards:
            raise SageError("Choose at least one reward (space on a built-in one, or type file.py:function)")
        from sage_ft_tui.engine.methods.grpo_rewards import check_reward

        for spec in rewards:
            check_reward(spec)  # the file exists, compiles and defines the function (nothing run)

    def _worded(self, err: Optional[SageError]) -> Optional[SageError]:
        """The config builder's refusal, named by this screen's labels (not the dotted key)."""
        if err is None or not getattr(err, "problem", None):
            return err
        key = getattr(err, "field", "")
        label = next((lab for k, lab in SETTINGS.values() if k == key), key)
        return SageError(f"{label} {err.problem}", hint="")

    def valid(self) -> bool:
        return self.error is None and not self.checking

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action == "check_rewards":
            return self.grpo  # preference runs have nothing to check
        return super().check_action(action, parameters)

    def commit(self) -> None:
        self._validate()
