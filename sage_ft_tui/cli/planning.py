"""The target a command plans for (`--gpu`, `--vram`, `--gpus`, `--precision`; cli/options.py
defines the flags): checked here, handed to the engine's config builder
(engine/config/build.py) as its plan layer and a flag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from sage_ft_tui.engine.errors import SageError


@dataclass
class Target:
    gpu: Optional[str] = None
    vram: Optional[float] = None
    gpus: Optional[int] = None
    precision: Optional[str] = None

    def check(self) -> Target:
        from sage_ft_tui.engine.config.sections import PRECISIONS

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

    def layer(self):
        """The builder's plan layer (engine.config.build.Target), or None without a target."""
        from sage_ft_tui.engine.config.build import Target as Plan

        self.check()
        if not self.plans:
            return None
        snap = self.snapshot()
        label = snap.note.removeprefix("planned for ").split(" (")[0] if snap is not None else self.describe()
        return Plan(snap, self.gpus, label)

    def flags(self) -> dict[str, Any]:
        """--precision as the builder's flag."""
        return {"training.precision": self.precision} if self.precision is not None else {}
