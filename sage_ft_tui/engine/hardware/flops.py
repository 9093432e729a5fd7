"""FLOPs per trained token: the one count behind MFU (Monitor, `status`, bench/gpu_check) and
the time plan (`estimate --gpu`), from config.json's shape alone (engine/models/shape.py).

The counting follows PaLM (Chowdhery et al. 2022, appendix B) and Chinchilla (Hoffmann et
al. 2022, appendix F): a matmul of an (m×k) by a (k×n) matrix costs 2·m·k·n FLOPs; per token
a linear layer of P weights costs 2·P forward, and backward costs 2·P for the gradient with
respect to its input plus 2·P for the gradient with respect to its weights. So a full
fine-tune costs 6·N per token (N = the matmul weights: decoder linears + LM head; the input
embedding is a lookup, no FLOPs) — the textbook 6·N. LoRA computes less:

- the frozen base: forward (2·N) and the input gradient (2·N) that backward must carry down
  to the adapters below, but NOT its weight gradients: 4·N;
- the adapters (A: r×in, B: out×r, n of them): forward, input and weight gradients, 6·n;
- attention's own matmuls (QKᵀ and A·V): 4·s·d forward per token and layer at context s
  (d = heads × head_dim, which need not be hidden: Gemma, Qwen3), halved by the causal mask,
  ×3 for forward + backward (both of its gradients are activation gradients) = 6·L·s·d
  (PaLM's 12·L·H·Q·T counts the masked half too);
- gradient checkpointing runs each decoder layer's forward once more in backward (PaLM
  calls the utilisation with it "HFU"; here it is counted because the card really does it,
  so a time plan made from an MFU stays true whether checkpointing is on or off).

MoE layers count the experts a token is routed to (num_experts_per_tok), plus the router.
QLoRA computes the same FLOPs (bitsandbytes dequantizes to 16-bit first): the dequant is
overhead, which is why its default MFU is lower. Not counted: norms, activations, softmax,
the loss (each O(h) or O(V) per token, under 1%), DoRA's weight norm, GRPO's generation.
Never imports torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional, Union

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.hardware.estimate import compute_dtype
from sage_ft_tui.engine.hardware.gpus import find_gpu
from sage_ft_tui.engine.models.shape import ModelRef, ModelShape, model_shape

EXPERT_LINEARS = ("gate_proj", "up_proj", "gate_up_proj", "down_proj")


@dataclass(frozen=True)
class FlopCount:
    """FLOPs per trained token, by part (see the module's docstring)."""

    frozen: float  # frozen base matmuls: forward + input gradient (4 per weight)
    trained: float  # trained weights (the adapters, or all for a full fine-tune): 6 per weight
    attention: float  # QKᵀ and A·V, causal, forward + backward
    recompute: float  # the decoder's forward again, with gradient checkpointing
    method: str = "lora"
    seq_len: int = 0

    @property
    def total(self) -> float:
        return self.frozen + self.trained + self.attention + self.recompute

    def to_dict(self) -> dict:
        return {**asdict(self), "total": self.total}


def active_linear_params(shape: ModelShape) -> int:
    """The decoder's linear weights one token passes through: all of attention, the routed
    experts' MLPs (num_experts_per_tok of num_experts) and the router."""
    per = 0
    for name, (i, o, n) in shape.linears().items():
        copies = min(n, shape.experts_per_token) if name in EXPERT_LINEARS and shape.experts > 1 else n
        per += i * o * copies
    router = shape.hidden * shape.experts if shape.experts > 1 else 0
    return shape.layers * (per + router)


def active_lora_params(shape: ModelShape, r: int, targets: Union[str, list[str]] = "all-linear") -> int:
    """The adapter weights one token passes through (models.shape.ModelShape.lora_params counts
    all experts' adapters; a token meets only its routed experts')."""
    lin = shape.linears()
    names = list(lin) if targets == "all-linear" else [t for t in targets if t in lin]
    per = 0
    for name, (i, o, n) in lin.items():
        if name in names:
            copies = min(n, shape.experts_per_token) if name in EXPERT_LINEARS and shape.experts > 1 else n
            per += r * (i + o) * copies
    return shape.layers * per


def flops_per_token(
    model: ModelRef,
    *,
    method: str = "lora",
    lora_r: int = 16,
    target_modules: Union[str, list[str]] = "all-linear",
    seq_len: int = 1024,
    gradient_checkpointing: bool = False,
) -> FlopCount:
    """FLOPs one trained token costs (forward + backward, and the recompute with checkpointing).

    `method`: "lora" (LoRA and QLoRA: the base frozen) or "full"; `seq_len`: the context the
    attention term sees (the max length for packed rows)."""
    if method not in ("lora", "full"):
        raise SageError(f"unknown training method {method!r}", hint="lora or full", kind="config")
    if not isinstance(seq_len, int) or seq_len <= 0:
        raise SageError(f"sequence length must be a positive whole number, got {seq_len!r}", hint="e.g. 2048")
    shape = model_shape(model)
    decoder = active_linear_params(shape)
    head = shape.vocab * shape.hidden
    adapters = active_lora_params(shape, lora_r, target_modules) if method == "lora" else 0
    d_attn = shape.heads * shape.head_dim
    attn_fwd = 2.0 * shape.layers * seq_len * d_attn  # 4·s·d per layer, halved by the causal mask
    if method == "full":
        frozen, trained = 0.0, 6.0 * (decoder + head)
    else:
        frozen, trained = 4.0 * (decoder + head), 6.0 * adapters
    # checkpointing recomputes the decoder layers (not the LM head) in backward
    recompute = (2.0 * (decoder + adapters) + attn_fwd) if gradient_checkpointing else 0.0
    return FlopCount(frozen, trained, 3.0 * attn_fwd, recompute, method, seq_len)


def flops_for_config(rc: Any, seq_len: Optional[int] = None) -> FlopCount:
    """The count for a RunConfig: LoRA/QLoRA at its rank and targets, its max length (or
    `seq_len`, e.g. the data's mean length without packing) and its checkpointing."""
    t = rc.training
    return flops_per_token(
        rc.model.name,
        lora_r=rc.lora.r,
        target_modules=rc.lora.target_modules,
        seq_len=int(seq_len or t.max_length),
        gradient_checkpointing=bool(t.gradient_checkpointing),
    )


def mfu(tokens_per_s: Optional[float], flops: float, peak_tflops: Optional[float], gpus: int = 1) -> Optional[float]:
    """Model FLOP utilisation: FLOPs done per second over what `gpus` cards can do at peak;
    None without a rate or a peak (CPU, an unknown card)."""
    if not tokens_per_s or not peak_tflops or tokens_per_s <= 0 or flops <= 0:
        return None
    return tokens_per_s * flops / (peak_tflops * 1e12 * max(1, gpus))


@dataclass(frozen=True)
class MfuBasis:
    """What a run's MFU is measured against: its FLOPs per token and the peak of the cards it
    trains on at its compute dtype (written into the run's `start` event)."""

    gpu: str  # the table's name for the card
    gpus: int  # cards the run trains on (tokens/s counts all of them)
    dtype: str
    peak_tflops: float  # one card's
    flops_per_token: float

    def mfu(self, tokens_per_s: Optional[float]) -> Optional[float]:
        return mfu(tokens_per_s, self.flops_per_token, self.peak_tflops, self.gpus)

    def to_event(self) -> dict:
        return {
            "gpu": self.gpu,
            "gpus": self.gpus,
            "dtype": self.dtype,
            "peak_tflops": self.peak_tflops,
            "flops_per_token": self.flops_per_token,
        }


def mfu_basis(rc: Any, snapshot: Any) -> Optional[MfuBasis]:
    """The MFU basis for a RunConfig on the GPUs of a hardware snapshot (the probe's: NVML or
    a recording); None on CPU or a card without a known peak (then tokens/s only)."""
    gpus = list(snapshot.gpus)
    if rc.training.gpus:
        gpus = [g for g in gpus if g.index in set(rc.training.gpus)] or gpus
    if not gpus:
        return None
    try:
        spec = find_gpu(gpus[0].name)
    except SageError:
        return None
    dtype = compute_dtype(rc.training.precision, rc.model.dtype, gpu=True, bf16_ok=all(g.bf16 for g in gpus))
    peak = spec.peak(dtype)
    if not peak:
        return None
    count = len(rc.training.gpus) if rc.training.gpus else 1
    return MfuBasis(spec.name, count, dtype, peak, flops_for_config(rc).total)


__all__ = [
    "MfuBasis",
    "mfu_basis",
    "FlopCount",
    "flops_per_token",
    "flops_for_config",
    "active_linear_params",
    "active_lora_params",
    "mfu",
]
