"""The wizard's answers: one plain object owned by the App, turned into a RunConfig at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from sage_ft_tui.engine.config.build import Built, build_config
from sage_ft_tui.engine.config.schema import RunConfig, get_dotted
from sage_ft_tui.engine.config.sections import PRECISIONS, QUANTIZATIONS
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.models.tiny import TINY_NAME

# Hyperparameters the Hardware step lets the user edit: field id -> (config key, type, label).
EDITABLE: dict[str, tuple[str, type, str]] = {
    "epochs": ("training.epochs", float, "Epochs"),
    "max_steps": ("training.max_steps", int, "Max steps (-1 off)"),
    "learning_rate": ("training.learning_rate", float, "Learning rate"),
    "micro_batch_size": ("training.micro_batch_size", int, "Micro batch"),
    "grad_accumulation": ("training.grad_accumulation", int, "Grad accumulation"),
    "max_length": ("training.max_length", int, "Max length (tokens)"),
    "lora_r": ("lora.r", int, "LoRA rank r"),
    "lora_alpha": ("lora.alpha", int, "LoRA alpha"),
    "validation_split": ("data.validation_split", float, "Eval share"),
}
CHOICES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "quantization": ("model.quantization", QUANTIZATIONS, "Quantization"),
    "precision": ("training.precision", PRECISIONS, "Precision"),
}


@dataclass
class WizardState:
    task: Optional[str] = None
    model: Optional[str] = None
    model_entry: Any = None  # engine.models.catalog.ModelEntry
    data_paths: list[str] = field(default_factory=list)
    repo: Optional[str] = None  # code task
    code_data: Optional[dict] = None  # code task: the data section code_config made
    inspection: Any = None  # engine.data.inspect.DataInspection
    preset: str = "auto"
    preset_why: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted key -> value
    name: Optional[str] = None
    hardware: Any = None  # the Hardware step's snapshot (the Review step's memory estimate)

    def reset(self) -> None:
        self.__dict__.pop("_presets", None)
        self.__init__()  # type: ignore[misc]

    @property
    def max_length(self) -> int:
        """The max length the run will use (preset + overrides), not a default."""
        return int(self._setting("training.max_length", 2048))

    @property
    def max_bad_share(self) -> float:
        return float(self._setting("data.max_bad_share", 0.05))

    def _setting(self, key: str, fallback: Any) -> Any:
        if key in self.overrides:
            return self.overrides[key]
        try:
            return get_dotted(self.build_config().model_dump(mode="json"), key)
        except SageError:
            return fallback

    def answers(self) -> dict[str, Any]:
        """Task, model and data as the earlier steps answered them (the builder's file layer)."""
        data: dict[str, Any] = {"paths": list(self.data_paths)}
        if self.task == "code" and self.code_data:
            data = dict(self.code_data)
        return {"task": self.task or "instruction", "model": {"name": self.model or TINY_NAME}, "data": data}

    def built(self, extra: Optional[dict[str, Any]] = None) -> Built:
        """The engine's one config builder (engine/config/build.py): the answers, the chosen
        preset under them, the edits (and `extra`, being tried) over them."""
        edits = {**self.overrides, **(extra or {})}
        if self.name:
            edits["name"] = self.name
        cache = self.__dict__.setdefault("_presets", {})  # the auto preset probes and estimates: once
        try:
            return build_config(
                file=self.answers(),
                file_label="wizard",
                preset=self.preset or None,
                flags=edits,
                flag_label="edited",
                cache=cache,
            )
        except SageError:
            raise
        except Exception as e:  # a preset helper still missing must not break the wizard
            raise SageError(f"preset {self.preset}: {e}", hint="choose another preset", kind="config") from None

    def base_config(self) -> RunConfig:
        """Task, model and data, with the chosen preset applied (no edits)."""
        return build_config(
            file=self.answers(),
            file_label="wizard",
            preset=self.preset or None,
            cache=self.__dict__.setdefault("_presets", {}),
        ).config

    def build_config(self, extra: Optional[dict[str, Any]] = None) -> RunConfig:
        return self.built(extra).config
