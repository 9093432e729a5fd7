"""The run configuration's sections (model, data, lora, training, preference, grpo, notify) and
the value lists they take; schema.py assembles them into RunConfig. Each field's description
is its one-line help (`examples`, the wizard)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Optional, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sage_ft_tui.engine.methods.registry import method_names, preference_methods, task_names
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
# The one list of presets: the fixed ones (engine/config/fixed_presets.py) and auto.
FIXED_PRESETS: tuple[str, ...] = ("rtx_3060", "rtx_4090", "a100", "h100", "minimal", "cpu")
PRESET_NAMES: tuple[str, ...] = (*FIXED_PRESETS, "auto")


class StrictModel(BaseModel):
    """A config model that refuses unknown keys and checks values on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(StrictModel):
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


class DataSection(StrictModel):
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


class LoRASection(StrictModel):
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


class GuardSection(StrictModel):
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


class TrainSection(StrictModel):
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


class PreferenceSection(StrictModel):
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


class GRPOSection(StrictModel):
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


class NotifySection(StrictModel):
    urls: list[str] = Field(
        default_factory=list,
        description="apprise URLs told when the run completes or fails (ntfy://TOPIC, json://HOST:PORT/PATH, "
        "slack://..., mailto://...); needs the notify extra. Also SAGE_FT_NOTIFY and --notify",
    )
