"""The run configuration: one pydantic model, saved as config.yaml.

Unknown keys, wrong types and impossible combinations are errors that name the key.
This module is RunConfig and its key helpers: its sections are in sections.py, the legacy
flat `TrainingConfig`/`LoRAConfig` in legacy.py, the hardware presets in presets.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from sage_ft_tui.engine.config.sections import (
    PRESET_NAMES,
    DataSection,
    GRPOSection,
    LoRASection,
    ModelSection,
    NotifySection,
    PreferenceSection,
    StrictModel,
    Task,
    TrainSection,
)
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.registry import task_names, task_spec


class RunConfig(StrictModel):
    version: Literal[1] = Field(1, description="config schema version")
    name: Optional[str] = Field(None, description="run folder name (default: task-model-timestamp)")
    task: Task = Field(
        "instruction",
        description=f"what the model learns: {', '.join(task_names())}",
    )
    preset: Optional[str] = Field(None, description="hardware preset the settings came from (auto: fit this machine)")
    model: ModelSection = Field(default_factory=ModelSection, description="the base model")
    data: DataSection = Field(default_factory=DataSection, description="the training data")
    lora: LoRASection = Field(default_factory=LoRASection, description="the LoRA adapter")
    training: TrainSection = Field(default_factory=TrainSection, description="the training loop")
    preference: PreferenceSection = Field(
        default_factory=PreferenceSection, description="preference task: method and its settings"
    )
    grpo: GRPOSection = Field(default_factory=GRPOSection, description="grpo task: rewards and generation")
    notify: NotifySection = Field(default_factory=NotifySection, description="notifications when the run ends")

    @model_validator(mode="after")
    def _combinations(self) -> RunConfig:
        t, d = self.training, self.data
        if t.max_steps == 0 or (t.max_steps < 0 and t.epochs <= 0):
            raise ValueError("training.max_steps / training.epochs: nothing to train; set epochs > 0 or max_steps > 0")
        if (d.validation_split or 0) > 0 and d.eval_paths:
            raise ValueError("data.validation_split / data.eval_paths: use one way to get evaluation data, not both")
        if t.eval_steps and not ((d.validation_split or 0) > 0 or d.eval_paths):
            raise ValueError(
                "training.eval_steps: set without evaluation data; add data.validation_split or data.eval_paths"
            )
        if t.guard.early_stop_patience and not ((d.validation_split or 0) > 0 or d.eval_paths):
            raise ValueError(
                "training.guard.early_stop_patience: early stopping watches the eval loss; add data.validation_split "
                "or data.eval_paths"
            )
        problem = task_spec(self.task).check_config(self)  # what the task's own settings refuse
        if problem:
            raise ValueError(problem)
        if self.model.quantization != "none" and t.precision == "fp32":
            raise ValueError("model.quantization / training.precision: QLoRA computes in bf16 or fp16, not fp32")
        if t.optimizer in ("paged_adamw_8bit", "adamw_8bit", "paged_adamw_32bit") and self.model.quantization == "none":
            pass  # allowed: bitsandbytes optimizers work without quantized weights (checked at run time)
        if self.preset is not None and self.preset not in preset_names():
            raise ValueError(f"preset: unknown preset {self.preset!r}; choose one of: {', '.join(preset_names())}")
        if self.name is not None:
            from sage_ft_tui.engine.paths import validate_run_name

            try:
                validate_run_name(self.name)
            except SageError as e:
                raise ValueError(f"name: {e.message}; {e.hint}") from None
        return self

    # ---- persistence -------------------------------------------------------------
    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path) -> None:
        from sage_ft_tui.engine.fsutil import atomic_write_text

        atomic_write_text(Path(path), self.to_yaml())

    def hash(self, precision: Optional[str] = None) -> str:
        """The settings' hash; `precision` (what the run really computes in, which the
        environment can change: SAGE_FT_CPU_BF16=0) is folded in when given."""
        dump = self.model_dump(mode="json", exclude={"name"})
        if precision is not None:
            dump["precision_used"] = precision
        blob = json.dumps(dump, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SageError(f"{p}: no such config file", hint="give a run folder or a config.yaml path") from None
        except UnicodeDecodeError:
            raise SageError(f"{p}: not a UTF-8 text file", hint="save the config as UTF-8 YAML") from None
        try:
            raw = _safe_load_unique(text)
        except _DuplicateKey as e:
            raise SageError(
                f"{p}:{e.line}: key {e.key!r} is given twice (first on line {e.first})",
                hint="keep one of them; YAML would silently use the last",
            ) from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{p}:{mark.line + 1}" if mark else str(p)
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise SageError(
                f"{where}: not valid YAML ({problem})",
                hint="fix the YAML syntax; tags like !!python/object are refused",
            ) from None
        if raw is None or raw == {}:
            raise SageError(
                f"{p}: the config is empty",
                hint="write the settings you want (`sage-ft-tui examples` shows a full config), or drop --config",
            )
        if not isinstance(raw, dict):
            raise SageError(
                f"{p}: the config must be a mapping of keys, not {type(raw).__name__}",
                hint="see `sage-ft-tui examples`",
            )
        return cls.from_dict(raw, source=str(p))

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> RunConfig:
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            raise config_error(e, source) from None

    def with_overrides(self, sets: list[str]) -> RunConfig:
        data = self.model_dump(mode="json")
        for item in sets:
            key, value = parse_set(item)
            set_dotted(data, key, value)
        return RunConfig.from_dict(data, source="--set")


def _mapping_fields() -> dict[str, bool]:
    """Dotted names of the dict-valued fields (data.field_map, data.replace) whose keys are
    the user's own: a new key under one is a new entry, not a misspelt setting. The value
    says whether its values are text (then `--set ...=1` keeps "1", not the number)."""
    import typing

    out: dict[str, bool] = {}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, f in model.model_fields.items():
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.")
            elif typing.get_origin(ann) is dict:
                out[f"{prefix}{name}"] = typing.get_args(ann)[1:] == (str,)

    walk(RunConfig, "")
    return out


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int, first: int):
        super().__init__(key)
        self.key, self.line, self.first = key, line, first


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader whose mappings refuse a key given twice (PyYAML keeps the last, silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            try:
                key = self.construct_object(key_node, deep=True)
                hash(key)
            except TypeError:
                continue  # unhashable keys: the base class reports them
            if key in seen:
                raise _DuplicateKey(str(key), key_node.start_mark.line + 1, seen[key])
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _safe_load_unique(text: str):
    """yaml.safe_load, except that a key given twice is an error."""
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def preset_names() -> tuple[str, ...]:
    """Every preset a config may name (the hardware presets and auto)."""
    return PRESET_NAMES


_PROBLEMS = {
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list, e.g. [a, b]",
    "missing": "is needed",
}
_BOUNDS = {
    "greater_than": ("gt", "must be greater than"),
    "greater_than_equal": ("ge", "must be at least"),
    "less_than": ("lt", "must be less than"),
    "less_than_equal": ("le", "must be at most"),
}


def field_problem(err: Any) -> str:
    """One short phrase for one pydantic error, in the user's words ("must be a number",
    "must be at least 0"), without pydantic's input echo or its documentation link."""
    kind, ctx = str(err.get("type", "")), err.get("ctx") or {}
    if kind in _PROBLEMS:
        return _PROBLEMS[kind]
    if kind in _BOUNDS:
        name, phrase = _BOUNDS[kind]
        bound = ctx.get(name)
        return f"{phrase} {bound:g}" if isinstance(bound, float) else f"{phrase} {bound}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}".replace("'", "")
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    return msg.split(", got ")[0].rstrip(".")


def config_error(e: ValidationError, source: str) -> SageError:
    err = e.errors()[0]
    # a union's branch names (literal['all-linear'], list[str]) are pydantic's, not the user's keys
    key = ".".join(str(x) for x in err["loc"] if "[" not in str(x)) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return SageError(
            f"{source}: unknown key {key!r}",
            hint="remove it or check its spelling (`sage-ft-tui examples` shows every key)",
        )
    if err["type"] == "value_error":
        return SageError(f"{source}: {msg}", hint="change one of the settings named")
    got = err.get("input")
    got_s = "" if isinstance(got, (dict, list)) else f", got {got!r}"
    if err["type"] == "list_type":  # a single value where a list belongs (data.paths: x.jsonl)
        return SageError(
            f"{source}: {key}: give a list, e.g. [{got if isinstance(got, (str, int, float)) else 'a, b'}]{got_s}",
            hint=f"write {key} as a YAML list ([a, b], or one '- a' line each; --set {key}=[a,b])",
        )
    if err["type"] in ("dict_type", "model_type"):  # a value where a section or a mapping belongs
        return SageError(
            f"{source}: {key}: give a mapping of keys (e.g. {key.rsplit('.', 1)[-1]}: {{name: value}}){got_s}",
            hint=f"see `sage-ft-tui examples` for {key}",
        )
    more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    out = SageError(f"{source}: {key}: {msg}{got_s}{more}", hint=f"fix {key}")
    out.field = key  # type: ignore[attr-defined]  # the wizard says it in one line per field
    out.problem = field_problem(err)  # type: ignore[attr-defined]
    return out


_ALIASES = {
    "lr": "training.learning_rate",
    "epochs": "training.epochs",
    "max_steps": "training.max_steps",
    "max_length": "training.max_length",
    "batch_size": "training.micro_batch_size",
    "quantization": "model.quantization",
}


def parse_set(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise SageError(f"--set {item!r}: expected key=value", hint="e.g. --set training.warmup_ratio=0.1")
    key, _, value = item.partition("=")
    key = _ALIASES.get(key.strip(), key.strip())
    parent = key.rpartition(".")[0]
    if _mapping_fields().get(parent):
        return key, value  # a column name or a replacement text stays text, whatever it looks like
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key, parsed


def get_dotted(data: dict, key: str) -> Any:
    """`data["training"]["epochs"]` for the key "training.epochs"."""
    node: Any = data
    for part in key.split("."):
        node = node[part]
    return node


def set_dotted(data: dict, key: str, value: Any, *, source: str = "--set") -> None:
    """Set a dotted key in a config dict; a key that is not there already is an error
    (so a typo never adds a setting that nothing reads), except under a dict-valued field
    (data.field_map.question=q), whose keys are the user's."""
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part) if isinstance(node, dict) else None
        if not isinstance(nxt, dict):
            raise SageError(
                f"{source} {key}: unknown key {'.'.join(parts[: i + 1])!r}",
                hint="see `sage-ft-tui examples` for the keys",
            )
        node = nxt
    if parts[-1] not in node and ".".join(parts[:-1]) not in _mapping_fields():
        raise SageError(f"{source} {key}: unknown key {key!r}", hint="see `sage-ft-tui examples` for the keys")
    node[parts[-1]] = value


def field_help() -> dict[str, str]:
    """Every dotted config key -> its one-line help (what `examples` and the wizard show)."""
    out: dict[str, str] = {}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, f in model.model_fields.items():
            key = f"{prefix}{name}"
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, key + ".")
            else:
                out[key] = f.description or ""

    walk(RunConfig, "")
    return out


def commented_yaml(cfg: Optional[RunConfig] = None) -> str:
    """config.yaml with every key, each followed by its help as a comment (still valid YAML)."""
    cfg = cfg or RunConfig()
    helps = field_help()
    lines = []
    path: list[tuple[int, str]] = []
    for line in cfg.to_yaml().splitlines():
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if stripped.startswith("- ") or ":" not in stripped:
            lines.append(line)
            continue
        key = stripped.split(":", 1)[0]
        path = [(i, k) for i, k in path if i < indent] + [(indent, key)]
        dotted = ".".join(k for _, k in path)
        text = helps.get(dotted)
        lines.append(f"{line}  # {text}" if text and not stripped.endswith(":") else line)
    return "\n".join(lines) + "\n"
