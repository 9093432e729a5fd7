"""Will it fit? A LoRA/QLoRA training-memory estimate from config.json alone.

No weights are read or downloaded: the model's shape (hidden size, layers, heads,
intermediate size, vocabulary) gives every term:

- base weights: 16-bit (or 32-bit) as loaded, or bitsandbytes 8-bit / 4-bit NF4 for the
  decoder's linear layers (embeddings, lm_head and norms stay 16-bit);
- LoRA: the adapter's fp32 parameters, their gradients and the optimizer's states, for the
  target modules at rank r;
- activations: what autograd keeps per token per layer (norm upcasts, LoRA dropout inputs,
  attention q/k/v/out, the MLP's gate/up/act outputs), for micro-batch × max length ×
  layers, or, with gradient checkpointing, each layer's input plus one layer recomputed;
- the loss: logits in 16-bit, their fp32 upcast, log-softmax and its gradient
  (vocab × tokens: the largest single term for 150k-token vocabularies);
- a fixed CUDA context and allocator slack.

The constants are explained where they are defined and checked on a GPU by
bench/gpu_check.sh (estimate vs torch's measured peak). Never imports torch.

`estimate_memory(model, TrainSetup(...))`: the model's shape comes from models.shape, the
figures go back as a hardware.memory_estimate.MemoryEstimate; `estimate_for_config` fills the
TrainSetup from a run config and this machine (or a planned one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from sage_ft_tui.engine.config.sections import QUANTIZATIONS
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import GiB, MiB
from sage_ft_tui.engine.hardware.memory_estimate import MemoryEstimate
from sage_ft_tui.engine.hardware.probe import snapshot as hw_snapshot
from sage_ft_tui.engine.methods.registry import sequences_per_sample
from sage_ft_tui.engine.models.shape import ModelRef, ModelShape, model_shape
from sage_ft_tui.engine.train.attention import EAGER_SCORES, AttentionNeeds, choose_attention
from sage_ft_tui.engine.train.distributed import strategy

DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
# bitsandbytes storage per quantized weight, in bytes:
#  8-bit (LLM.int8): 1 byte + one fp32 scale per row (negligible).
#  4-bit NF4 with double quantization (what we load): 4 bits + 8-bit absmax per 64 weights
#  + fp32 absmax-of-absmax per 256 blocks = 4 + 8/64 + 32/(64*256) ≈ 4.127 bits.
QUANT_BYTES = {"8bit": 1.0, "4bit": 4.127 / 8}
# Optimizer state bytes per trainable (fp32) parameter.
OPTIM_STATE_BYTES = {
    "adamw_torch": 8,
    "adamw_torch_fused": 8,
    "paged_adamw_32bit": 8,  # exp_avg + exp_avg_sq in fp32
    "adamw_8bit": 2,
    "paged_adamw_8bit": 2,  # two 8-bit states (+ tiny block scales)
    "adafactor": 1,
    "sgd": 0,  # adafactor keeps factored row/col stats: well under a byte per param for LoRA shapes
}
# A CUDA context with cuBLAS/cuDNN handles on recent drivers (lazy module loading): what
# nvidia-smi shows for a process that has only initialised CUDA. Not seen by torch's
# memory counters.
CUDA_CONTEXT = 500 * MiB
CUBLAS_WORKSPACE = 32 * MiB
# The caching allocator keeps freed blocks; reserved exceeds allocated by some percent of
# what is allocated and freed every step (activations and logits).
ALLOCATOR_SLACK = 0.08
# A CPU training process before its model loads: Python with torch, transformers, peft, TRL
# and datasets imported, the tokenized data mapped (bench/profile_memory.py: ~490 MiB resident
# on Linux x86-64).
CPU_FRAMEWORK = 480 * MiB
# CPU bf16 autocast (precision auto): below this hidden size the matmuls are too small for
# bf16 to pay for its casts (the tiny demo, hidden 64, stays fp32; the ~18M bench model,
# hidden 384, gains).
CPU_BF16_MIN_HIDDEN = 256


def cpu_native_bf16() -> bool:
    """AMX or AVX512-BF16 in /proc/cpuinfo (read without torch): bf16 matmuls run natively.
    SAGE_FT_CPU_BF16=0 says no."""
    if os.environ.get("SAGE_FT_CPU_BF16", "1") == "0":
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            flags = next((set(line.split(":", 1)[1].split()) for line in fh if line.startswith("flags")), set())
    except OSError:
        return False
    return bool({"amx_bf16", "avx512_bf16"} & flags)


def cpu_autocasts(precision: str, model_dtype: str, hidden: int, native: bool) -> bool:
    """Whether a CPU run computes under bf16 autocast: asked for (precision bf16), or precision
    auto on a CPU with native bf16 (`native`) for a model wide enough."""
    if precision == "bf16":
        return True
    return precision == "auto" and model_dtype in ("auto", "float32") and hidden >= CPU_BF16_MIN_HIDDEN and native


# ---- the estimate -------------------------------------------------------------------------


def activation_bytes_per_token_layer(shape: ModelShape, *, lora_dropout: float = 0.05, act_bytes: int = 2) -> int:
    """What autograd keeps for one token in one decoder layer during a LoRA step.

    For 16-bit compute (act_bytes=2); every 2 below is act_bytes, every 4 is fp32:
    - 2 RMSNorms: each keeps its fp32 upcast of the input (4·h);
    - each LoRA linear keeps its input in 16-bit for lora_A's weight gradient (2·in) and,
      with dropout, the dropout mask (1·in);
    - attention (SDPA flash/mem-efficient, no T² scores): q, k, v as the kernel sees them
      (k, v repeated to all heads when the mask stops native GQA) and its output: 4 × 2·h;
    - the gated MLP keeps gate out (for SiLU), act out and up out (for the product): 3 × 2·i.
    """
    h, i = shape.hidden, (shape.moe_intermediate or shape.intermediate) if shape.experts > 1 else shape.intermediate
    q = shape.heads * shape.head_dim
    a = act_bytes
    lora_in = a + (1 if lora_dropout > 0 else 0)
    norms = 2 * 4 * h
    attn = a * (q + q + q + q)
    lin = shape.linears()
    lora = sum(
        lora_in
        * ins
        * (1 if name not in ("gate_proj", "up_proj", "gate_up_proj", "down_proj") else shape.experts_per_token)
        for name, (ins, _o, _n) in lin.items()
    )
    mlp = (3 if shape.gated else 2) * a * i * shape.experts_per_token
    return norms + attn + lora + mlp


# The loss. Without a fused head (plain Trainer / transformers' ForCausalLMLoss), the peak
# is in the cross-entropy's backward: per token and vocabulary entry the log-softmax output
# (4 bytes), its incoming gradient (4) and the gradient it produces (4) in fp32 = 12 bytes
# (16 when training in fp32). TRL's SFTTrainer (since it grew `add_fused_lm_head`) never
# builds the logits: it projects tiles of 4096 tokens × 32768 vocabulary entries and keeps
# the hidden states, an fp32 gradient for them, and a few fp32 statistics per token.
UNFUSED_LOSS_BYTES = 12
FUSED_TOKEN_TILE, FUSED_VOCAB_TILE = 4096, 32768


def trl_fused_loss_available() -> bool:
    """Whether the installed TRL computes the SFT loss without materialising the logits
    (read from its files, without importing it)."""
    try:
        from importlib.metadata import distribution

        return Path(str(distribution("trl").locate_file("trl/kernels/chunked_logprob.py"))).exists()
    except Exception:
        return False


def loss_bytes(shape: ModelShape, tokens: int, *, act_bytes: int = 2, fused: bool = True) -> int:
    if not fused:
        return (16 if act_bytes == 4 else UNFUSED_LOSS_BYTES) * shape.vocab * tokens
    tile = min(tokens, FUSED_TOKEN_TILE) * min(shape.vocab, FUSED_VOCAB_TILE) * act_bytes
    # hidden states kept for backward (act) + their fp32 gradient (4) + the cast back (act),
    # and ~12 fp32 per-token statistics
    return tile + tokens * shape.hidden * (2 * act_bytes + 4) + 48 * tokens


@dataclass(frozen=True)
class TrainSetup:
    """How one training process runs, as far as its memory goes (the model's shape aside).

    `sequences`: sequences per sample (2 for a preference pair, run as one batch).
    `shards` > 1: FSDP/ZeRO-3 over that many GPUs — each holds 1/shards of the weights, LoRA
    parameters, gradients and optimizer states, plus one decoder layer gathered whole.
    `autocast`: fp32 weights computing under bf16 autocast (CPU): activations as 16-bit.
    `fused_loss`: None asks the installed TRL (trl_fused_loss_available)."""

    quantization: str = "none"
    dtype: str = "bfloat16"
    micro_batch: int = 1
    max_length: int = 1024
    gradient_checkpointing: bool = True
    lora_r: int = 16
    target_modules: Union[str, list[str]] = "all-linear"
    lora_dropout: float = 0.05
    optimizer: str = "adamw_torch"
    device: str = "cuda"
    use_dora: bool = False
    fused_loss: Optional[bool] = None
    sequences: int = 1
    shards: int = 1
    autocast: bool = False

    def check(self) -> None:
        """One clear line for a value the estimate cannot use."""
        _check_int("shards", self.shards)
        _check_int("micro-batch", self.micro_batch)
        _check_int("max length", self.max_length)
        _check_int("LoRA rank", self.lora_r)
        if self.quantization not in QUANTIZATIONS:
            raise SageError(f"unknown quantization {self.quantization!r}", hint=f"choose {', '.join(QUANTIZATIONS)}")
        if self.dtype not in DTYPE_BYTES:
            raise SageError(f"unknown dtype {self.dtype!r}", hint="choose bfloat16, float16 or float32")
        if self.optimizer not in OPTIM_STATE_BYTES:
            raise SageError(
                f"unknown optimizer {self.optimizer!r}", hint=f"choose one of: {', '.join(OPTIM_STATE_BYTES)}"
            )
        if self.device not in ("cuda", "cpu"):
            raise SageError(f"unknown device {self.device!r}", hint="cuda or cpu")
        if self.quantization != "none" and self.device == "cpu":
            raise SageError(
                "8-bit and 4-bit quantization need a CUDA GPU", hint="use --quantization none on CPU", kind="hardware"
            )
        if self.quantization != "none" and self.dtype == "float32":
            raise SageError("QLoRA computes in bf16 or fp16, not fp32", hint="pick bfloat16 or float16")


def estimate_memory(
    model: ModelRef, setup: TrainSetup = TrainSetup(), *, free: Optional[int] = None, budget_fraction: float = 0.9
) -> MemoryEstimate:
    """Peak training memory of one process (one GPU: DDP keeps a full replica per GPU), compared
    with `free` bytes (VRAM, or RAM on cpu) of which `budget_fraction` may be used."""
    shape = model_shape(model)
    setup.check()
    s = setup
    notes: list[str] = []
    weights, trainable, lora_params, lora_grads, opt = _stored_bytes(shape, s, notes)
    tokens = s.micro_batch * s.max_length * s.sequences
    if s.sequences > 1:
        notes.append(
            f"{s.sequences} sequences per sample (chosen + rejected): activations for {s.sequences}× the batch"
        )
    ab = 4 if s.dtype == "float32" and not s.autocast else 2
    if s.autocast:
        notes.append("bf16 autocast: fp32 weights, activations kept in bf16 (norms in fp32)")
    fused_loss = trl_fused_loss_available() if s.fused_loss is None else s.fused_loss
    layer = activation_bytes_per_token_layer(shape, lora_dropout=s.lora_dropout, act_bytes=ab) * tokens
    logits = loss_bytes(shape, tokens, act_bytes=ab, fused=fused_loss)
    embed_out = ab * shape.hidden * tokens  # embedding output / final norm output
    if s.gradient_checkpointing:
        # Each layer's input is kept; the loss peaks first, then backward recomputes one
        # layer at a time with about two hidden-sized gradients in flight.
        stored = shape.layers * ab * shape.hidden * tokens + embed_out
        recompute = layer + 2 * ab * shape.hidden * tokens
        activations = stored + max(0, recompute - logits)
    else:
        activations = shape.layers * layer + embed_out
    rows = s.micro_batch * s.sequences
    scores = eager_scores_bytes(shape, s.device, s.dtype, rows, s.max_length, s.gradient_checkpointing)
    if scores:
        activations += scores
        notes.append(
            f"attention logit softcapping ({shape.attn_softcap:g}) computed eagerly here: its scores "
            f"({s.max_length}² per head) are kept for backward, {scores / GiB:.2f} GiB"
        )
    overhead = _overhead_bytes(shape, s, activations + logits)
    if shape.max_positions and s.max_length > shape.max_positions:
        notes.append(f"max length {s.max_length} is beyond the model's {shape.max_positions} positions")
    return MemoryEstimate(
        model=shape.name,
        device=s.device,
        quantization=s.quantization,
        dtype=s.dtype,
        micro_batch=s.micro_batch,
        max_length=s.max_length,
        gradient_checkpointing=s.gradient_checkpointing,
        lora_r=s.lora_r,
        optimizer=s.optimizer,
        total_params=shape.total_params,
        trainable_params=trainable,
        weights=int(weights),
        lora_params=lora_params,
        lora_grads=lora_grads,
        optimizer_states=opt,
        activations=int(activations),
        logits=int(logits),
        cuda_overhead=int(overhead),
        free=free,
        budget_fraction=budget_fraction,
        vocab=shape.vocab,
        fused_loss=bool(fused_loss),
        notes=notes,
    )


def _stored_bytes(shape: ModelShape, s: TrainSetup, notes: list[str]) -> tuple[float, int, int, int, int]:
    """(base weights, trainable parameters, LoRA parameters, their gradients, optimizer states)
    in bytes, per GPU when sharded."""
    wb = DTYPE_BYTES[s.dtype]
    if s.quantization == "none":
        weights: float = shape.total_params * wb
    else:
        # Linear layers quantized; embeddings, lm_head and norms stay in the compute dtype
        # (our trainer casts them back after prepare_model_for_kbit_training's fp32 upcast,
        # except the norms, which stay fp32).
        weights = (
            int(shape.linear_params * QUANT_BYTES[s.quantization]) + shape.embed_params * wb + shape.other_params * 4
        )
    trainable = shape.lora_params(s.lora_r, s.target_modules)
    if trainable == 0:
        raise SageError(
            f"LoRA target modules {s.target_modules!r} match no linear layer of {shape.name}",
            hint=f"use all-linear or some of: {', '.join(shape.linears())}",
        )
    if s.use_dora:
        trainable += shape.layers * sum(
            o * n
            for name, (_i, o, n) in shape.linears().items()
            if s.target_modules == "all-linear" or name in s.target_modules
        )
        notes.append("DoRA: its weight-norm recomputation adds memory not modelled here (budget extra)")
    lora_params = trainable * 4
    lora_grads = trainable * 4
    opt = trainable * OPTIM_STATE_BYTES[s.optimizer]
    if s.shards > 1:
        layer_w = (weights - shape.embed_params * wb) / max(1, shape.layers)  # one layer, as stored
        head_w = shape.vocab * shape.hidden * wb
        # own shard + the layer computed and the next (prefetched) gathered whole + the LM head:
        # accelerate's FSDP2 keeps its tail unit (final norm, lm_head) gathered from the end of
        # forward to the start of backward. Activations are not divided: each GPU runs its own batch.
        weights = int(weights / s.shards + 2 * layer_w + head_w)
        lora_params, lora_grads, opt = (int(x / s.shards) for x in (lora_params, lora_grads, opt))
        notes.append(f"sharded over {s.shards} GPUs (FSDP2 / ZeRO-3): memory per GPU")
    return weights, trainable, lora_params, lora_grads, opt


def _overhead_bytes(shape: ModelShape, s: TrainSetup, freed_each_step: float) -> int:
    """The CUDA context, workspace and allocator slack (on cpu: the framework and slack)."""
    if s.device != "cuda":
        return int(ALLOCATOR_SLACK * freed_each_step) + CPU_FRAMEWORK
    overhead = CUDA_CONTEXT + CUBLAS_WORKSPACE + int(ALLOCATOR_SLACK * freed_each_step)
    if s.quantization != "none":
        # bitsandbytes dequantizes one weight to 16-bit for each matmul (and its transpose in backward)
        overhead += 2 * max(i * o for i, o, _n in shape.linears().values()) * 2
    return overhead


def eager_scores_bytes(shape: ModelShape, device: str, dtype: str, rows: int, length: int, checkpointing: bool) -> int:
    """What the eager attention of a softcapped model keeps per step (0 when the path that
    training takes there is fused: flash-attn or FlexAttention): for each head, the tanh
    output and the probabilities (fp32, and cast back) of every (query, key) pair, for one
    layer at a time with checkpointing, else for all."""
    if not shape.attn_softcap:
        return 0

    path = choose_attention(cuda=device == "cuda", dtype=dtype, needs=AttentionNeeds(softcap=shape.attn_softcap))
    if path.name not in EAGER_SCORES:
        return 0
    act = DTYPE_BYTES[dtype]
    # tanh output, fp32 probabilities, their cast back (the same tensor in fp32): 8 bytes a
    # pair either way, measured with saved_tensors_hooks on engine.train.attention's eager path
    per_pair = act + 4 + (0 if act == 4 else act)
    per_layer = shape.heads * rows * length * length * per_pair
    return per_layer * (1 if checkpointing else shape.layers)


def _check_int(what: str, v: Any) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise SageError(f"{what} must be a positive whole number, got {v!r}", hint=f"set a {what} of 1 or more")


# ---- from a run configuration ----------------------------------------------------------------


def compute_dtype(precision: str, model_dtype: str = "auto", *, gpu: bool = True, bf16_ok: bool = True) -> str:
    """The dtype training runs in: explicit model dtype, else the precision, else bf16 where
    the GPU supports it, fp16 on older GPUs, fp32 on CPU."""
    if model_dtype != "auto":
        return model_dtype
    if not gpu:
        return "float32"
    return {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(precision) or (
        "bfloat16" if bf16_ok else "float16"
    )


def estimate_for_config(rc, snapshot=None, *, free: Optional[int] = None) -> MemoryEstimate:
    """The estimate for a RunConfig on this machine (`snapshot`: a hardware.Snapshot)."""
    if snapshot is None:
        snapshot = hw_snapshot()
    gpus = list(snapshot.gpus)
    if rc.training.gpus:
        wanted = set(rc.training.gpus)
        picked = [g for g in gpus if g.index in wanted]
        gpus = picked or gpus
    gpu = bool(gpus)
    t = rc.training

    n = len(rc.training.gpus or []) if gpu else 0
    shards = n if n > 1 and strategy(rc) in ("fsdp", "deepspeed") else 1
    if free is None:
        free = min(g.mem_free for g in gpus) if gpu else _ram_available(snapshot)
    autocast = False
    if not gpu and rc.training.precision in ("auto", "bf16"):
        hidden = model_shape(rc.model.name).hidden
        autocast = cpu_autocasts(rc.training.precision, rc.model.dtype, hidden, cpu_native_bf16())
    est = estimate_memory(
        rc.model.name,
        TrainSetup(
            autocast=autocast,
            quantization=rc.model.quantization if gpu else "none",
            dtype=compute_dtype(
                t.precision, rc.model.dtype, gpu=gpu, bf16_ok=all(g.bf16 for g in gpus) if gpu else False
            ),
            micro_batch=t.micro_batch_size,
            max_length=t.max_length,
            gradient_checkpointing=t.gradient_checkpointing,
            lora_r=rc.lora.r,
            target_modules=rc.lora.target_modules,
            lora_dropout=rc.lora.dropout,
            optimizer=t.optimizer,
            device="cuda" if gpu else "cpu",
            use_dora=rc.lora.use_dora,
            sequences=sequences_per_sample(rc.task),
            shards=shards,
        ),
        free=free,
    )
    if not gpu and rc.model.quantization != "none":
        est.notes.append(f"no GPU: {rc.model.quantization} quantization is not possible; estimated without it")
    return est


def _ram_available(snapshot) -> Optional[int]:
    h = snapshot.host
    return max(0, h.ram_total - h.ram_used) if h.ram_total else None


__all__ = [
    "TrainSetup",
    "estimate_memory",
    "estimate_for_config",
    "compute_dtype",
    "cpu_autocasts",
    "cpu_native_bf16",
    "activation_bytes_per_token_layer",
    "eager_scores_bytes",
    "loss_bytes",
    "trl_fused_loss_available",
]
