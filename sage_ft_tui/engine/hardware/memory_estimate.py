"""A training-memory estimate's figures: the parts, their total against the memory free, and
how they are said (the CLI's `estimate` table, the wizard's Hardware step, `--json`).
Computed by hardware.estimate."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from sage_ft_tui.engine.fsutil import GiB


@dataclass
class MemoryEstimate:
    model: str
    device: str  # cuda | cpu
    quantization: str
    dtype: str
    micro_batch: int
    max_length: int
    gradient_checkpointing: bool
    lora_r: int
    optimizer: str
    total_params: int
    trainable_params: int
    weights: int  # bytes
    lora_params: int
    lora_grads: int
    optimizer_states: int
    activations: int
    logits: int
    cuda_overhead: int  # context + cuBLAS workspace + allocator slack (+ 4-bit dequant buffer)
    free: Optional[int] = None  # free memory it is compared with (VRAM, or RAM on cpu)
    budget_fraction: float = 0.9
    vocab: int = 0
    fused_loss: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.allocated + self.cuda_overhead

    @property
    def allocated(self) -> int:
        """What torch.cuda.max_memory_allocated should show at the peak."""
        return (
            self.weights + self.lora_params + self.lora_grads + self.optimizer_states + self.activations + self.logits
        )

    @property
    def budget(self) -> Optional[int]:
        return int(self.free * self.budget_fraction) if self.free is not None else None

    @property
    def fits(self) -> Optional[bool]:
        budget = self.budget
        return None if budget is None else self.total <= budget

    def breakdown(self) -> list[tuple[str, int, str]]:
        q = {"none": self.dtype, "8bit": "8-bit (bitsandbytes)", "4bit": "4-bit NF4 (bitsandbytes)"}[self.quantization]
        tokens = self.micro_batch * self.max_length
        return [
            ("base weights", self.weights, f"{_count(self.total_params)} params, {q}"),
            ("LoRA parameters", self.lora_params, f"{self.trainable_params / 1e6:.1f}M trainable, fp32"),
            ("LoRA gradients", self.lora_grads, "fp32"),
            ("optimizer states", self.optimizer_states, self.optimizer),
            (
                "activations",
                self.activations,
                f"{self.micro_batch} × {self.max_length} tokens, checkpointing {'on' if self.gradient_checkpointing else 'off'}",
            ),
            (
                "loss (LM head)",
                self.logits,
                f"{tokens} tokens × {self.vocab} vocab" + (", fused" if self.fused_loss else ", full logits"),
            ),
            (
                "CUDA and allocator" if self.device == "cuda" else "framework",
                self.cuda_overhead,
                "context, workspace, cache slack" if self.device == "cuda" else "allocator slack",
            ),
        ]

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            total=self.total,
            allocated=self.allocated,
            budget=self.budget,
            fits=self.fits,
            breakdown=[{"part": a, "bytes": b, "detail": c} for a, b, c in self.breakdown()],
        )
        return d

    def summary(self) -> str:
        s = f"~{self.total / GiB:.1f} GiB"
        if self.free is not None:
            where = "VRAM" if self.device == "cuda" else "RAM"
            s += f" of {self.free / GiB:.1f} GiB free {where} ({'fits' if self.fits else 'does not fit'} under {self.budget_fraction:.0%})"
        return s


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}K"


__all__ = ["MemoryEstimate"]
