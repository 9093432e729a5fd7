"""The seed's flat API (`sage finetune`'s TrainingConfig and LoRAConfig), mapped onto RunConfig.

Kept so `from sage_ft_tui import TrainingConfig, LoRAConfig` code keeps working; the run
itself is always described by `RunConfig` (schema.py)."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field, model_validator

from sage_ft_tui.engine.config.schema import RunConfig, set_dotted
from sage_ft_tui.engine.config.sections import Quantization, StrictModel, Task
from sage_ft_tui.engine.models.known import LEGACY_DEFAULT


class LoRAConfig(StrictModel):
    """Seed-compatible LoRA settings."""

    r: int = Field(8, gt=0)
    lora_alpha: int = Field(16, gt=0)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: Union[Literal["all-linear"], list[str]] = "all-linear"
    bias: Literal["none", "all", "lora_only"] = "none"
    use_dora: bool = False
    task_type: Literal["CAUSAL_LM"] = "CAUSAL_LM"


class TrainingConfig(StrictModel):
    """Seed-compatible flat training settings (`sage finetune`'s TrainingConfig)."""

    model_name: str = LEGACY_DEFAULT
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
        quant: Quantization = "8bit" if self.load_in_8bit else "4bit" if self.load_in_4bit else "none"
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
            data_path=rc.data.paths[0] if rc.data.paths else None,
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
