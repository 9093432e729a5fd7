"""The run configuration: one pydantic model, saved as config.yaml.

Unknown keys, wrong types and impossible combinations are errors that name the key.
`TrainingConfig`, `LoRAConfig` and `PresetConfigs` keep the seed's flat API and map
onto `RunConfig`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sage_ft_tui.engine.errors import SageError

Task = Literal["qa", "instruction", "chat", "text", "code", "preference", "grpo"]
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Strict):
    name: str = Field("tiny-demo", min_length=1, description="base model: a hub id, a local folder, or tiny-demo")
    revision: Optional[str] = Field(None, description="hub revision (branch, tag or commit) of the base model")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="dtype the base weights are loaded in; auto follows the precision"
    )
    quantization: Literal["none", "8bit", "4bit"] = Field(
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
    validation_split: float = Field(0.0, ge=0.0, lt=0.5, description="share of rows held out for evaluation (0 = none)")
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
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
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
    gpus: Optional[list[int]] = Field(None, description="GPU indices to use; more than one runs DDP")
    oom_retries: int = Field(
        3, ge=0, le=8, description="on out-of-memory, halve the micro-batch and retry this many times"
    )


class PreferenceSection(_Strict):
    method: Literal["auto", "dpo", "orpo", "kto", "simpo"] = Field(
        "auto",
        description="dpo (pairs), orpo and simpo (pairs, no reference model), kto (rows labelled good/bad, or "
        "pairs split in two); auto: dpo for pairs, kto for labelled rows",
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


class RunConfig(_Strict):
    version: Literal[1] = Field(1, description="config schema version")
    name: Optional[str] = Field(None, description="run folder name (default: task-model-timestamp)")
    task: Task = Field(
        "instruction",
        description="what the model learns: qa, instruction, chat, text, code, preference (DPO/ORPO/KTO) or grpo",
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

    @model_validator(mode="after")
    def _combinations(self) -> RunConfig:
        t, d = self.training, self.data
        if t.max_steps == 0 or (t.max_steps < 0 and t.epochs <= 0):
            raise ValueError("training.max_steps / training.epochs: nothing to train; set epochs > 0 or max_steps > 0")
        if d.validation_split > 0 and d.eval_paths:
            raise ValueError("data.validation_split / data.eval_paths: use one way to get evaluation data, not both")
        if t.eval_steps and not (d.validation_split > 0 or d.eval_paths):
            raise ValueError(
                "training.eval_steps: set without evaluation data; add data.validation_split or data.eval_paths"
            )
        if self.task == "text" and d.format not in ("auto", "text"):
            raise ValueError(f"task / data.format: the text task trains on plain text, not {d.format!r}")
        if self.task == "preference" and self.preference.method in ("kto", "auto") and t.micro_batch_size < 2:
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

    def hash(self) -> str:
        blob = json.dumps(self.model_dump(mode="json", exclude={"name"}), sort_keys=True)
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
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{p}:{mark.line + 1}" if mark else str(p)
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise SageError(
                f"{where}: not valid YAML ({problem})",
                hint="fix the YAML syntax; tags like !!python/object are refused",
            ) from None
        if raw is None:
            raw = {}
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


def config_error(e: ValidationError, source: str) -> SageError:
    err = e.errors()[0]
    key = ".".join(str(x) for x in err["loc"]) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return SageError(
            f"{source}: unknown key {key!r}",
            hint="remove it or check its spelling (`sage-ft-tui examples` shows every key)",
        )
    if err["type"] == "value_error":
        return SageError(f"{source}: {msg}", hint="change one of the settings named")
    more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    got = err.get("input")
    got_s = "" if isinstance(got, (dict, list)) else f", got {got!r}"
    return SageError(f"{source}: {key}: {msg}{got_s}{more}", hint=f"fix {key}")


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
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key, parsed


def set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part) if isinstance(node, dict) else None
        if not isinstance(nxt, dict):
            raise SageError(
                f"--set {key}: unknown key {'.'.join(parts[: i + 1])!r}", hint="see `sage-ft-tui examples` for the keys"
            )
        node = nxt
    if parts[-1] not in node:
        raise SageError(f"--set {key}: unknown key {key!r}", hint="see `sage-ft-tui examples` for the keys")
    node[parts[-1]] = value


# ---- the seed's API ---------------------------------------------------------------


class LoRAConfig(_Strict):
    """Seed-compatible LoRA settings."""

    r: int = Field(8, gt=0)
    lora_alpha: int = Field(16, gt=0)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: Union[Literal["all-linear"], list[str]] = "all-linear"
    bias: Literal["none", "all", "lora_only"] = "none"
    use_dora: bool = False
    task_type: Literal["CAUSAL_LM"] = "CAUSAL_LM"


class TrainingConfig(_Strict):
    """Seed-compatible flat training settings (`sage finetune`'s TrainingConfig)."""

    model_name: str = "Qwen/Qwen2.5-Coder-1.5B-Instruct"
    task: Task = "instruction"
    data_path: Optional[str] = None
    output_dir: Optional[str] = None
    num_epochs: float = Field(3.0, gt=0)
    max_steps: int = -1
    batch_size: int = Field(1, gt=0)
    gradient_accumulation_steps: int = Field(16, gt=0)
    learning_rate: float = Field(5e-5, gt=0)
    max_length: int = Field(1024, gt=0)
    load_in_8bit: bool = False
    load_in_4bit: bool = False
    gradient_checkpointing: bool = True
    bf16: bool = False
    fp16: bool = False
    optim: str = "adamw_torch"
    warmup_ratio: float = 0.03
    lr_scheduler_type: str = "cosine"
    logging_steps: int = 5
    save_steps: int = 100
    save_total_limit: Optional[int] = 3
    packing: bool = True
    seed: int = 42
    report_to: list[str] = Field(default_factory=list)
    lora: LoRAConfig = Field(default_factory=LoRAConfig)
    preset: Optional[str] = None

    @model_validator(mode="after")
    def _one_quant(self) -> TrainingConfig:
        if self.load_in_8bit and self.load_in_4bit:
            raise ValueError("load_in_8bit / load_in_4bit: choose one")
        if self.bf16 and self.fp16:
            raise ValueError("bf16 / fp16: choose one")
        return self

    def to_run_config(self, **overrides) -> RunConfig:
        quant = "8bit" if self.load_in_8bit else "4bit" if self.load_in_4bit else "none"
        raw = {
            "task": self.task,
            "preset": self.preset,
            "model": {"name": self.model_name, "quantization": quant},
            "data": {"paths": [self.data_path] if self.data_path else []},
            "lora": {
                "r": self.lora.r,
                "alpha": self.lora.lora_alpha,
                "dropout": self.lora.lora_dropout,
                "target_modules": self.lora.target_modules,
                "use_dora": self.lora.use_dora,
                "bias": self.lora.bias,
            },
            "training": {
                "epochs": self.num_epochs,
                "max_steps": self.max_steps,
                "learning_rate": self.learning_rate,
                "lr_scheduler": self.lr_scheduler_type,
                "warmup_ratio": self.warmup_ratio,
                "micro_batch_size": self.batch_size,
                "grad_accumulation": self.gradient_accumulation_steps,
                "max_length": self.max_length,
                "packing": self.packing,
                "gradient_checkpointing": self.gradient_checkpointing,
                "precision": "bf16" if self.bf16 else "fp16" if self.fp16 else "auto",
                "optimizer": self.optim,
                "seed": self.seed,
                "logging_steps": self.logging_steps,
                "save_steps": self.save_steps,
                "save_total_limit": self.save_total_limit,
                "report_to": self.report_to,
            },
        }
        for k, v in overrides.items():
            set_dotted(raw, k, v)
        return RunConfig.from_dict(raw, source="TrainingConfig")

    @classmethod
    def from_run_config(cls, rc: RunConfig) -> TrainingConfig:
        t = rc.training
        return cls(
            model_name=rc.model.name,
            task=rc.task,
            data_path=(rc.data.paths or [None])[0],
            num_epochs=t.epochs or 1,
            max_steps=t.max_steps,
            batch_size=t.micro_batch_size,
            gradient_accumulation_steps=t.grad_accumulation,
            learning_rate=t.learning_rate,
            max_length=t.max_length,
            load_in_8bit=rc.model.quantization == "8bit",
            load_in_4bit=rc.model.quantization == "4bit",
            gradient_checkpointing=t.gradient_checkpointing,
            bf16=t.precision == "bf16",
            fp16=t.precision == "fp16",
            optim=t.optimizer,
            warmup_ratio=t.warmup_ratio,
            lr_scheduler_type=t.lr_scheduler,
            logging_steps=t.logging_steps,
            save_steps=t.save_steps,
            save_total_limit=t.save_total_limit,
            packing=t.packing,
            seed=t.seed,
            report_to=list(t.report_to),
            preset=rc.preset,
            lora=LoRAConfig(
                r=rc.lora.r,
                lora_alpha=rc.lora.alpha,
                lora_dropout=rc.lora.dropout,
                target_modules=rc.lora.target_modules,
                bias=rc.lora.bias,
                use_dora=rc.lora.use_dora,
            ),
        )


class PresetConfigs:
    """The seed's presets (values kept), plus h100 and cpu. `auto` lives in engine/presets."""

    @staticmethod
    def rtx_3060(**kw) -> TrainingConfig:
        return TrainingConfig(
            preset="rtx_3060",
            load_in_8bit=True,
            max_length=1024,
            batch_size=1,
            gradient_accumulation_steps=16,
            gradient_checkpointing=True,
            optim="paged_adamw_8bit",
            fp16=True,
            **kw,
        )

    @staticmethod
    def rtx_4090(**kw) -> TrainingConfig:
        return TrainingConfig(
            preset="rtx_4090",
            max_length=2048,
            batch_size=4,
            gradient_accumulation_steps=4,
            gradient_checkpointing=True,
            bf16=True,
            **kw,
        )

    @staticmethod
    def a100(**kw) -> TrainingConfig:
        return TrainingConfig(
            preset="a100",
            max_length=4096,
            batch_size=8,
            gradient_accumulation_steps=2,
            gradient_checkpointing=False,
            bf16=True,
            **kw,
        )

    @staticmethod
    def h100(**kw) -> TrainingConfig:
        return TrainingConfig(
            preset="h100",
            max_length=4096,
            batch_size=16,
            gradient_accumulation_steps=1,
            gradient_checkpointing=False,
            bf16=True,
            optim="adamw_torch_fused",
            **kw,
        )

    @staticmethod
    def minimal(**kw) -> TrainingConfig:
        return TrainingConfig(
            preset="minimal",
            load_in_4bit=True,
            max_length=512,
            batch_size=1,
            gradient_accumulation_steps=32,
            gradient_checkpointing=True,
            fp16=True,
            optim="paged_adamw_8bit",
            lora=LoRAConfig(r=4, lora_alpha=8),
            **kw,
        )

    @staticmethod
    def cpu(**kw) -> TrainingConfig:
        return TrainingConfig(
            preset="cpu",
            max_length=512,
            batch_size=4,
            gradient_accumulation_steps=1,
            gradient_checkpointing=False,
            learning_rate=2e-4,
            **kw,
        )

    @staticmethod
    def auto(model: str, hardware=None, **kw) -> TrainingConfig:
        from sage_ft_tui.engine.config.presets import auto_preset

        return auto_preset(model, hardware, **kw)

    NAMES = ("rtx_3060", "rtx_4090", "a100", "h100", "minimal", "cpu")

    @classmethod
    def get(cls, name: str, **kw) -> TrainingConfig:
        if name not in cls.NAMES and name != "auto":
            raise SageError(f"unknown preset {name!r}", hint=f"choose one of: {', '.join(cls.NAMES + ('auto',))}")
        return getattr(cls, name)(**kw)


def apply_preset(rc: RunConfig, name: str) -> RunConfig:
    """Overlay a preset's training/quantization settings onto `rc`, keeping model, task and data."""
    if name == "auto":
        from sage_ft_tui.engine.data.tasks import sequences_per_sample

        tc = PresetConfigs.auto(rc.model.name, sequences=sequences_per_sample(rc.task))
    else:
        tc = PresetConfigs.get(name, model_name=rc.model.name, task=rc.task)
    p = tc.to_run_config()
    out = copy.deepcopy(rc)
    return RunConfig.from_dict(
        {
            **out.model_dump(mode="json"),
            "preset": name,
            "lora": p.lora.model_dump(mode="json"),
            "training": p.training.model_dump(mode="json"),
            "model": {**out.model.model_dump(mode="json"), "quantization": p.model.quantization},
        },
        source=f"preset {name}",
    )


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
