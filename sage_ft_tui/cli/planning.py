"""The target a command plans for (`--gpu`, `--vram`, `--gpus`, `--precision`; cli/options.py
defines the flags), and the one way a command applies it with its `--preset`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sage_ft_tui.engine.errors import SageError


@dataclass
class Target:
    gpu: Optional[str] = None
    vram: Optional[float] = None
    gpus: Optional[int] = None
    precision: Optional[str] = None

    def check(self) -> Target:
        from sage_ft_tui.engine.config.schema import PRECISIONS

        if self.precision is not None and self.precision not in PRECISIONS:
            raise SageError(
                f"--precision {self.precision!r}: not one of {', '.join(PRECISIONS)}", hint="e.g. --precision bf16"
            )
        if self.gpus is not None and self.gpus < 1:
            raise SageError(f"--gpus must be 1 or more, got {self.gpus}", hint="e.g. --gpus 2")
        return self

    @property
    def plans(self) -> bool:
        """Whether the flags ask for a plan (a card or a GPU count), not only a precision."""
        return self.gpu is not None or self.vram is not None or self.gpus is not None

    def describe(self) -> str:
        """The target in words: "2× H100 80GB", "a 24 GiB GPU"."""
        card = self.gpu or (f"a {self.vram:g} GiB GPU" if self.vram is not None else "this machine's GPU")
        return f"{self.gpus}× {card}" if self.gpus and self.gpus > 1 else card

    def snapshot(self):
        """The target's Snapshot, or None for this machine."""
        from sage_ft_tui.engine.hardware.gpus import planning_snapshot

        return planning_snapshot(self.gpu, self.vram, self.gpus)

    def preset(self, preset: Optional[str]) -> Optional[str]:
        """The preset to apply: a target means auto (a fixed preset cannot be planned)."""
        if self.plans and preset not in (None, "auto"):
            raise SageError(
                f"--gpu/--vram/--gpus plan the auto preset, not --preset {preset}",
                hint="use --preset auto (or leave --preset out) with them",
            )
        return "auto" if self.plans else preset

    def apply(self, cfg, preset: Optional[str]):
        """`cfg` with the preset planned for the target, then --precision over it."""
        from sage_ft_tui.engine.config.presets import apply_preset

        self.check()
        name = self.preset(preset)
        if name:
            cfg = apply_preset(cfg, name, self.snapshot(), gpus=self.gpus)
        return self.with_precision(cfg)

    def with_precision(self, cfg):
        if self.precision is None:
            return cfg
        from sage_ft_tui.engine.config.schema import RunConfig

        raw = cfg.model_dump(mode="json")
        raw["training"]["precision"] = self.precision
        return RunConfig.from_dict(raw, source="--precision")

    def explain(self, model: str, **kw) -> list[str]:
        """The auto plan's lines for `model` on the target."""
        from sage_ft_tui.engine.config.presets import explain_choice

        return explain_choice(model, self.snapshot(), gpus=self.gpus, **kw)
