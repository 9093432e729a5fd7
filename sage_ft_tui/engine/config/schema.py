"""The run configuration: one pydantic model, saved as config.yaml.

Unknown keys, wrong types and impossible combinations are errors that name the key.
This module is the schema alone: the seed's flat `TrainingConfig`/`LoRAConfig` live in
seed.py, the hardware presets (`PresetConfigs`, `apply_preset`, auto) in presets.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional, Union, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.registry import method_names, method_spec, preference_methods, task_names
from sage_ft_tui.engine.models.tiny import TINY_NAME

# The tasks and preference methods are the method registry's (engine/methods): one module each.
if TYPE_CHECKING:  # the lists are known at run time only
    Task = str
    PreferenceMethod = str
else:
    Task = Literal[task_names()]
    PreferenceMethod = Literal[method_names()]
# DPO's own loss types (TRL DPOConfig.loss_type); simpo and orpo are methods of their own.
DPO_LOSSES = Literal[
    "sigmoid",
    "ipo",
    "hinge",
    "robust",
    "exo_pair",
    "nca_pair",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
]
DataFormat = Literal["auto", "alpaca", "qa", "sharegpt", "messages", "prompt_completion", "text", "pairs", "kto"]
Quantization = Literal["none", "8bit", "4bit"]
QUANTIZATIONS: tuple[str, ...] = get_args(Quantization)  # the one list of quantization modes
Precision = Literal["auto", "bf16", "fp16", "fp32"]
PRECISIONS: tuple[str, ...] = get_args(Precision)  # the one list of training precisions
# The one list of presets: the fixed ones (engine/config/presets.py: PresetConfigs) and auto.
FIXED_PRESETS: tuple[str, ...] = ("rtx_3060", "rtx_4090", "a100", "h100", "minimal", "cpu")
PRESET_NAMES: tuple[str, ...] = (*FIXED_PRESETS, "auto")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Strict):
    name: str = Field(TINY_NAME, min_length=1, description=f"base model: a hub id, a local folder, or {TINY_NAME}")
    revision: Optional[str] = Field(None, description="hub revision (branch, tag or commit) of the base model")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="dtype the base weights are loaded in; auto follows the precision"
    )
    quantization: Quantization = Field(
        "none", description="load the base in 8-bit or 4-bit (QLoRA, bitsandbytes, NVIDIA GPU only)"
    )
    trust_remote_code: bool = Field(
        False, description="run Python code shipped in the model folder (only for folders you trust)"
    )
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = Field(
        "auto", description="attention kernel; auto picks the fastest that is installed and correct"
    )
    init_adapter: Optional[str] = Field(
        None, description="start from this LoRA adapter folder (a previous run's adapter: SFT → DPO, or continue SFT)"
    )


class DataSection(_Strict):
    paths: list[str] = Field(default_factory=list, description="training data files or folders")
    format: DataFormat = Field("auto", description="row format; auto detects it from the rows")
    field_map: dict[str, str] = Field(
        default_factory=dict, description="rename columns: our field -> the file's column (e.g. question: q)"
    )
    validation_split: Optional[float] = Field(
        None,
        ge=0.0,
        lt=0.5,
        description="share of rows held out for evaluation (0 = none; unset: 5% when that is at least 3 rows, "
        "i.e. from 60 rows, else none)",
    )
    eval_paths: list[str] = Field(default_factory=list, description="separate evaluation files (instead of a split)")
    max_samples: Optional[int] = Field(None, gt=0, description="use at most this many rows (for quick tries)")
    max_bad_share: float = Field(
        0.05, ge=0.0, le=1.0, description="skip bad rows up to this share of the data; more stops the run"
    )
    system_prompt: Optional[str] = Field(None, description="system message added to rows that have none")
    tool_format: Literal["auto", "template", "json"] = Field(
        "auto",
        description="tools and tool calls: auto = the chat template's own support, else JSON text in <tools>/"
        "<tool_call> tags (with a warning); template = always the template; json = always the text form",
    )
    reasoning: Literal["train", "mask"] = Field(
        "train", description="reasoning (thinking) in answers: train on it, or mask it from the loss"
    )
    replace: dict[str, str] = Field(
        default_factory=dict,
        description="fill template placeholders in the rows: name -> text (e.g. name: Ada fills {{name}})",
    )
    allow_secrets: bool = Field(
        False,
        description="train rows that hold secrets (API keys, private keys...) instead of skipping them (warned)",
    )
    repo: Optional[str] = Field(None, description="code task: the repository to train on (default: this git root)")
    languages: list[str] = Field(default_factory=list, description="code task: only these languages (empty = all)")
    fim_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="code task: share of samples turned into fill-in-the-middle"
    )


class LoRASection(_Strict):
    r: int = Field(16, gt=0, le=4096, description="LoRA rank: adapter size; higher learns more and uses more memory")
    alpha: int = Field(32, gt=0, description="LoRA scaling numerator (the update is scaled by alpha / r)")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="dropout on the adapter's input")
    target_modules: Union[Literal["all-linear"], list[str]] = Field(
        "all-linear", description="layers that get adapters: all-linear, or module names such as q_proj"
    )
    use_dora: bool = Field(False, description="DoRA: weight-decomposed LoRA (a little slower, sometimes better)")
    bias: Literal["none", "all", "lora_only"] = Field("none", description="which biases are trained")
    vision: Literal["frozen", "projector", "tower"] = Field(
        "frozen",
        description="vision-language models: frozen = adapters on the language model only, the vision tower and "
        "projector untouched; projector = also train the image projector (fully); tower = also adapters on the "
        "vision tower (and the projector trained)",
    )

    @field_validator("target_modules", mode="before")
    @classmethod
    def _modules(cls, v: Any) -> Any:
        example = "give a list of module names, e.g. [q_proj, v_proj], or all-linear"
        if isinstance(v, str) and v != "all-linear":
            raise ValueError(f"lora.target_modules: {example} (got the text {v!r})")
        if isinstance(v, list) and not v:
            raise ValueError(f"lora.target_modules: an empty list puts no adapter anywhere; {example}")
        if isinstance(v, list) and not all(isinstance(x, str) and x.strip() for x in v):
            raise ValueError(f"lora.target_modules: module names are text; {example} (got {v!r})")
        if not isinstance(v, (str, list)):
            raise ValueError(f"lora.target_modules: {example} (got {v!r})")
        return v


class GuardSection(_Strict):
    stop_on_nonfinite: bool = Field(
        True,
        description="stop at a step whose gradients are NaN/inf, before they reach the weights, with a checkpoint "
        "of the step before (fp16 on GPU: the loss scaler skips such steps itself)",
    )
    spike_factor: Optional[float] = Field(
        None,
        gt=1,
        description="a logged loss above this × the median of the recent ones rolls back to the newest checkpoint "
        "before it with half the learning rate, once; a second spike stops the run (null: off; e.g. 3)",
    )
    spike_window: int = Field(10, ge=3, le=1000, description="how many recent logged losses the spike median covers")
    early_stop_patience: Optional[int] = Field(
        None,
        gt=0,
        description="stop when the eval loss has not improved for this many evaluations in a row (needs evaluation "
        "data; null: off)",
    )
    early_stop_threshold: float = Field(
        0.0, ge=0, description="how much the eval loss must fall to count as an improvement (early stopping)"
    )


class TrainSection(_Strict):
    epochs: float = Field(3.0, ge=0, description="passes over the training data")
    max_steps: int = Field(-1, ge=-1, description="stop after this many optimizer steps; -1: run `epochs` epochs")
    learning_rate: float = Field(2e-4, gt=0, le=1.0, description="peak learning rate")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup", "cosine_with_min_lr"] = Field(
        "cosine", description="how the learning rate changes after warmup"
    )
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="share of steps spent warming the learning rate up")
    micro_batch_size: int = Field(4, gt=0, description="samples per GPU per forward pass")
    grad_accumulation: int = Field(4, gt=0, description="micro-batches summed into one optimizer step")
    max_length: int = Field(2048, gt=0, description="tokens per sample; longer samples are cut")
    packing: bool = Field(True, description="pack several samples into one row (no padding; attention kept apart)")
    gradient_checkpointing: bool = Field(False, description="recompute activations in backward: less memory, slower")
    precision: Precision = Field(
        "auto", description="compute precision; auto: bf16 where supported, else fp16 on GPU, fp32 on CPU"
    )
    optimizer: Literal[
        "adamw_torch", "adamw_torch_fused", "paged_adamw_8bit", "adamw_8bit", "paged_adamw_32bit", "adafactor", "sgd"
    ] = Field("adamw_torch", description="optimizer (8-bit and paged ones need bitsandbytes)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    max_grad_norm: float = Field(1.0, gt=0, description="clip gradients to this norm")
    seed: int = Field(42, description="random seed (data order, split, adapter init)")
    logging_steps: int = Field(5, gt=0, description="log loss and throughput every this many steps")
    eval_steps: Optional[int] = Field(None, gt=0, description="evaluate every this many steps (needs eval data)")
    save_steps: int = Field(100, gt=0, description="save a checkpoint every this many steps")
    save_total_limit: Optional[int] = Field(3, gt=0, description="keep at most this many checkpoints")
    report_to: list[Literal["tensorboard", "wandb", "mlflow", "trackio"]] = Field(
        default_factory=list, description="also report to these trackers"
    )
    gpus: Optional[list[int]] = Field(None, description="GPU indices to use; more than one runs DDP (or sharding)")
    sharding: Literal["auto", "ddp", "fsdp", "deepspeed"] = Field(
        "auto",
        description="several GPUs: ddp = a full copy each; fsdp = FSDP2 shards the model (LoRA and QLoRA); "
        "deepspeed = ZeRO-3; auto = ddp unless the plan needs sharding",
    )
    oom_retries: int = Field(
        3, ge=0, le=8, description="on out-of-memory, halve the micro-batch and retry this many times"
    )
    guard: GuardSection = Field(
        default_factory=GuardSection, description="guardrails: NaN/inf steps, loss spikes, early stopping on eval loss"
    )

    @field_validator("gpus")
    @classmethod
    def _gpus(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        if v and (min(v) < 0 or len(set(v)) != len(v)):
            raise ValueError(
                f"training.gpus: GPU indices are 0, 1, 2 ... each once (got {v}); see `sage-ft-tui doctor`"
            )
        return v


class PreferenceSection(_Strict):
    method: PreferenceMethod = Field(
        "auto",
        description="; ".join(f"{m.name}: {m.tag}" for m in preference_methods().values())
        + "; auto: dpo for pairs, kto for labelled rows",
    )
    loss_type: DPO_LOSSES = Field(
        "sigmoid", description="dpo: TRL's loss variant (sigmoid = DPO, ipo, hinge, robust, ...)"
    )
    beta: float = Field(0.1, gt=0, description="how far the model may move from the reference (higher = less)")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="dpo robust/exo: share of pairs assumed flipped")
    simpo_gamma: float = Field(0.5, ge=0, description="simpo: target reward margin")
    desirable_weight: float = Field(1.0, gt=0, description="kto: weight of the good (label true) rows")
    undesirable_weight: float = Field(1.0, gt=0, description="kto: weight of the bad (label false) rows")
    precompute_ref: Literal["auto", "on", "off"] = Field(
        "auto",
        description="compute the reference log-probs once before training (auto: when the data is no more than "
        "a few epochs' worth of extra forward passes)",
    )


class GRPOSection(_Strict):
    rewards: list[str] = Field(
        default_factory=lambda: ["exact_match"],
        description="reward functions: exact_match, number_match, format, length, or file.py:function",
    )
    answer_field: str = Field("answer", min_length=1, description="the column with the reference answer")
    format_regex: str = Field(
        r"(?s).*\S", description="format reward: the pattern a whole completion must match to score 1"
    )
    target_length: int = Field(
        200, gt=0, description="length reward: completions longer than this many characters lose"
    )
    num_generations: int = Field(4, ge=2, description="completions sampled per prompt (the group)")
    max_completion_length: int = Field(128, gt=0, description="tokens generated per completion")
    temperature: float = Field(1.0, gt=0, description="sampling temperature for the completions")
    beta: float = Field(0.0, ge=0, description="KL penalty to the reference (0 = none, no reference pass)")
    use_vllm: Literal["auto", "on", "off"] = Field(
        "auto", description="generate with vLLM (auto: when installed and a GPU is present)"
    )


class NotifySection(_Strict):
    urls: list[str] = Field(
        default_factory=list,
        description="apprise URLs told when the run completes or fails (ntfy://TOPIC, json://HOST:PORT/PATH, "
        "slack://..., mailto://...); needs the notify extra. Also SAGE_FT_NOTIFY and --notify",
    )


class RunConfig(_Strict):
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
        if self.task == "text" and d.format not in ("auto", "text"):
            raise ValueError(f"task / data.format: the text task trains on plain text, not {d.format!r}")
        m = self.preference.method
        if self.task == "preference" and (m == "auto" or method_spec(m).labelled) and t.micro_batch_size < 2:
            raise ValueError(
                "preference.method / training.micro_batch_size: kto (which auto picks for labelled rows) needs a "
                "micro-batch of 2 or more "
                "(its KL term pairs each row with another of the same batch)"
            )
        if self.task == "grpo" and (t.micro_batch_size * t.grad_accumulation) % self.grpo.num_generations:
            raise ValueError(
                f"grpo.num_generations / training: micro_batch_size × grad_accumulation "
                f"({t.micro_batch_size} × {t.grad_accumulation}) must be a multiple of grpo.num_generations "
                f"({self.grpo.num_generations})"
            )
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
