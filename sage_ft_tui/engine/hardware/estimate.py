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
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from sage_ft_tui.engine.config.schema import QUANTIZATIONS
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import GiB, MiB
from sage_ft_tui.engine.models.hub_cache import current_snapshot, repo_folder
from sage_ft_tui.engine.models.known import known_model
from sage_ft_tui.engine.models.tiny import TINY_NAME

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


ModelRef = Union[str, os.PathLike, "ModelShape"]


# ---- the model's shape -------------------------------------------------------------------


@dataclass
class ModelShape:
    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    gated: bool = True  # SwiGLU-style gate/up/down MLP (llama, qwen, mistral...); else up/down
    experts: int = 1
    experts_per_token: int = 1
    moe_intermediate: Optional[int] = None
    attn_bias: bool = False
    max_positions: Optional[int] = None
    torch_dtype: Optional[str] = None
    source: str = ""  # where the shape came from
    fused: tuple[str, ...] = ()  # "qkv", "gate_up": one linear where others have several (Phi-3)
    attn_softcap: Optional[float] = None  # attention logit softcapping (Gemma-2): no SDPA
    vision_params: int = 0  # a vision-language model's tower and projector (frozen, loaded with it)

    # linear layers of one decoder block: name -> (in, out, copies)
    def linears(self) -> dict[str, tuple[int, int, int]]:
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        if "qkv" in self.fused:
            out = {"qkv_proj": (h, q + 2 * kv, 1), "o_proj": (q, h, 1)}
        else:
            out = {"q_proj": (h, q, 1), "k_proj": (h, kv, 1), "v_proj": (h, kv, 1), "o_proj": (q, h, 1)}
        if self.experts > 1:
            i, n = self.moe_intermediate or self.intermediate, self.experts
        else:
            i, n = self.intermediate, 1
        if self.gated and "gate_up" in self.fused:
            out.update({"gate_up_proj": (h, 2 * i, n), "down_proj": (i, h, n)})
        elif self.gated:
            out.update({"gate_proj": (h, i, n), "up_proj": (h, i, n), "down_proj": (i, h, n)})
        else:
            out.update({"up_proj": (h, i, n), "down_proj": (i, h, n)})
        return out

    @property
    def linear_params(self) -> int:
        per = sum(i * o * n for i, o, n in self.linears().values())
        router = self.hidden * self.experts if self.experts > 1 else 0
        return self.layers * (per + router)

    @property
    def embed_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    @property
    def other_params(self) -> int:
        """Norms and biases: two norms a layer plus the final one; q/k/v biases; a VLM's vision
        tower and projector (kept unquantized and frozen: weights only)."""
        bias = (self.heads + 2 * self.kv_heads) * self.head_dim if self.attn_bias else 0
        return self.layers * (2 * self.hidden + bias) + self.hidden + self.vision_params

    @property
    def total_params(self) -> int:
        return self.linear_params + self.embed_params + self.other_params

    def lora_params(self, r: int, targets: Union[str, list[str]] = "all-linear") -> int:
        """Trainable LoRA parameters (A: r×in, B: out×r) over the decoder's target linears.

        "all-linear" is PEFT's meaning: every linear layer except the output head."""
        lin = self.linears()
        if targets == "all-linear":
            names = list(lin)
        else:
            names = [t for t in targets if t in lin]
        per = sum(r * (i + o) * n for name, (i, o, n) in lin.items() if name in names)
        return self.layers * per

    def to_dict(self) -> dict:
        return asdict(self)


# Architectures whose decoder fuses projections into one linear (module names as transformers
# builds them): LoRA adapts the fused layer once, with its real in/out features.
FUSED_PROJECTIONS = {"phi3": ("qkv", "gate_up")}


def shape_from_config(cfg: dict, name: str = "model", source: str = "config.json") -> ModelShape:
    from sage_ft_tui.engine.models.vision import vision_params

    """A ModelShape from a Hugging Face config.json mapping (decoder-only causal LMs)."""
    if not isinstance(cfg, dict):
        raise SageError(
            f"{name}: config.json is not a JSON object", hint="is this a Hugging Face model folder?", kind="model"
        )
    text = cfg.get("text_config")
    c = {**cfg, **text} if isinstance(text, dict) else cfg

    def first(*keys, default=None):
        for k in keys:
            v = c.get(k)
            if v is not None:
                return v
        return default

    h = first("hidden_size", "n_embd", "d_model")
    layers = first("num_hidden_layers", "n_layer", "num_layers")
    vocab = first("vocab_size", "padded_vocab_size")
    missing = [k for k, v in (("hidden_size", h), ("num_hidden_layers", layers), ("vocab_size", vocab)) if not v]
    if missing:
        raise SageError(
            f"{name}: config.json has no {missing[0]}",
            hint="the estimate needs a decoder-only causal LM's config.json",
            kind="model",
        )
    for key, v in (("hidden_size", h), ("num_hidden_layers", layers), ("vocab_size", vocab)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise SageError(
                f"{name}: config.json {key} is {v!r}, not a positive integer",
                hint="check the model's config.json",
                kind="model",
            )
    heads = int(first("num_attention_heads", "n_head", default=max(1, h // 128)))
    head_dim = int(first("head_dim", default=h // heads) or h // heads)
    kv = int(first("num_key_value_heads", "multi_query_group_num", default=heads) or heads)
    inter = int(first("intermediate_size", "n_inner", "ffn_hidden_size", default=4 * h) or 4 * h)
    act = str(first("hidden_act", "hidden_activation", "activation_function", default="silu"))
    model_type = str(c.get("model_type", ""))
    gpt2_like = "n_embd" in c or model_type in ("gpt2", "gpt_neox", "gptj", "opt", "bloom", "falcon", "phi")
    gated = not gpt2_like and act in ("silu", "swiglu", "gelu_pytorch_tanh", "gelu", "geglu")
    experts = int(first("num_local_experts", "num_experts", "n_routed_experts", default=1) or 1)
    per_tok = int(first("num_experts_per_tok", "moe_top_k", default=1) or 1)
    moe_inter = first("moe_intermediate_size")
    tied = cfg.get("tie_word_embeddings", c.get("tie_word_embeddings", True))
    dtype = cfg.get("torch_dtype") or cfg.get("dtype") or c.get("torch_dtype") or c.get("dtype")
    return ModelShape(
        name=name,
        hidden=int(h),
        layers=int(layers),
        heads=heads,
        kv_heads=kv,
        head_dim=head_dim,
        intermediate=inter,
        vocab=int(vocab),
        tied=bool(tied),
        gated=gated,
        experts=experts,
        experts_per_token=min(per_tok, experts),
        moe_intermediate=int(moe_inter) if moe_inter else None,
        attn_bias=bool(c.get("attention_bias", model_type in ("qwen2", "qwen2_moe"))),
        max_positions=first("max_position_embeddings", "n_positions", "seq_length"),
        torch_dtype=str(dtype) if dtype else None,
        source=source,
        fused=FUSED_PROJECTIONS.get(model_type, ()),
        attn_softcap=float(cap) if isinstance(cap := c.get("attn_logit_softcapping"), (int, float)) and cap else None,
        vision_params=vision_params(cfg, int(h)),
    )


def _read_config(path: Path, name: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SageError(
            f"{name}: no config.json in {path.parent}",
            hint="give a Hugging Face model folder (config.json is enough)",
            kind="model",
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise SageError(
            f"{path}: not a readable config.json ({e.__class__.__name__})",
            hint="re-download or re-save the model",
            kind="model",
        ) from None


def model_shape(ref: ModelRef) -> ModelShape:
    """tiny-demo, a folder holding config.json (or the file itself), or a hub id found in
    the local Hugging Face cache (the hub itself is never asked)."""
    if isinstance(ref, ModelShape):
        return ref
    name = str(ref).strip()
    if not name:
        raise SageError("no model given", hint=f"pass --model with a hub id, a folder, or {TINY_NAME}", kind="model")
    from sage_ft_tui.engine.models.tiny import is_tiny

    if is_tiny(name):
        from sage_ft_tui.engine.models.tiny import ensure_tiny_model, tiny_model_dir

        d = tiny_model_dir()
        d = d if (d / "config.json").is_file() else ensure_tiny_model()
        return shape_from_config(_read_config(d / "config.json", name), TINY_NAME, source=f"built-in {TINY_NAME}")
    p = Path(name).expanduser()
    if p.is_file():
        if p.name != "config.json" and p.suffix != ".json":
            raise SageError(
                f"{name}: a file, not a model folder", hint="give the folder that holds config.json", kind="model"
            )
        return shape_from_config(_read_config(p, name), name, source=str(p))
    if p.is_dir():
        return shape_from_config(_read_config(p / "config.json", name), name, source=str(p / "config.json"))
    if name.startswith(("/", ".", "~")) or name.count("/") != 1:
        raise SageError(
            f"{name}: no such model folder",
            hint=f"give an existing folder with config.json, an org/name hub id, or {TINY_NAME}",
            kind="model",
        )
    repo = repo_folder(name)
    snap = current_snapshot(repo) if repo.is_dir() else None
    if snap is not None and (snap / "config.json").is_file():
        return shape_from_config(
            _read_config(snap / "config.json", name), name, source=f"HF cache {snap / 'config.json'}"
        )
    k = known_model(name)
    if k is not None:  # before its first download: the published config.json's shape
        return shape_from_config(dict(k.config), name, source="built-in shape (the model's published config.json)")
    raise SageError(
        f"{name}: not in the local Hugging Face cache",
        hint=f"fetch its config first (hf download {name} config.json) or give a folder holding its config.json",
        kind="model",
    )


# ---- the estimate -------------------------------------------------------------------------


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


def estimate_memory(
    model: ModelRef,
    *,
    quantization: str = "none",
    dtype: str = "bfloat16",
    micro_batch: int = 1,
    max_length: int = 1024,
    gradient_checkpointing: bool = True,
    lora_r: int = 16,
    target_modules: Union[str, list[str]] = "all-linear",
    lora_dropout: float = 0.05,
    optimizer: str = "adamw_torch",
    device: str = "cuda",
    free: Optional[int] = None,
    budget_fraction: float = 0.9,
    use_dora: bool = False,
    fused_loss: Optional[bool] = None,
    sequences: int = 1,
    shards: int = 1,
    autocast: bool = False,
) -> MemoryEstimate:
    """Peak training memory of one process (one GPU: DDP keeps a full replica per GPU).
    `sequences`: sequences per sample (2 for a preference pair, run as one batch).
    `shards` > 1: FSDP/ZeRO-3 over that many GPUs — each holds 1/shards of the weights,
    LoRA parameters, gradients and optimizer states, plus one decoder layer gathered whole.
    `autocast`: fp32 weights computing under bf16 autocast (CPU): activations as 16-bit."""
    shape = model_shape(model)
    _check_int("shards", shards)
    _check_int("micro-batch", micro_batch)
    _check_int("max length", max_length)
    _check_int("LoRA rank", lora_r)
    if quantization not in QUANTIZATIONS:
        raise SageError(f"unknown quantization {quantization!r}", hint=f"choose {', '.join(QUANTIZATIONS)}")
    if dtype not in DTYPE_BYTES:
        raise SageError(f"unknown dtype {dtype!r}", hint="choose bfloat16, float16 or float32")
    if optimizer not in OPTIM_STATE_BYTES:
        raise SageError(f"unknown optimizer {optimizer!r}", hint=f"choose one of: {', '.join(OPTIM_STATE_BYTES)}")
    if device not in ("cuda", "cpu"):
        raise SageError(f"unknown device {device!r}", hint="cuda or cpu")
    if quantization != "none" and device == "cpu":
        raise SageError(
            "8-bit and 4-bit quantization need a CUDA GPU", hint="use --quantization none on CPU", kind="hardware"
        )
    if quantization != "none" and dtype == "float32":
        raise SageError("QLoRA computes in bf16 or fp16, not fp32", hint="pick bfloat16 or float16")
    notes: list[str] = []
    wb = DTYPE_BYTES[dtype]
    if quantization == "none":
        weights = shape.total_params * wb
    else:
        # Linear layers quantized; embeddings, lm_head and norms stay in the compute dtype
        # (our trainer casts them back after prepare_model_for_kbit_training's fp32 upcast,
        # except the norms, which stay fp32).
        weights = (
            int(shape.linear_params * QUANT_BYTES[quantization]) + shape.embed_params * wb + shape.other_params * 4
        )
    trainable = shape.lora_params(lora_r, target_modules)
    if trainable == 0:
        raise SageError(
            f"LoRA target modules {target_modules!r} match no linear layer of {shape.name}",
            hint=f"use all-linear or some of: {', '.join(shape.linears())}",
        )
    if use_dora:
        trainable += shape.layers * sum(
            o * n
            for name, (_i, o, n) in shape.linears().items()
            if target_modules == "all-linear" or name in target_modules
        )
        notes.append("DoRA: its weight-norm recomputation adds memory not modelled here (budget extra)")
    lora_params = trainable * 4
    lora_grads = trainable * 4
    opt = trainable * OPTIM_STATE_BYTES[optimizer]
    if shards > 1:
        layer_w = (weights - shape.embed_params * wb) / max(1, shape.layers)  # one layer, as stored
        head_w = shape.vocab * shape.hidden * wb
        # own shard + the layer computed and the next (prefetched) gathered whole + the LM head:
        # accelerate's FSDP2 keeps its tail unit (final norm, lm_head) gathered from the end of
        # forward to the start of backward. Activations are not divided: each GPU runs its own batch.
        weights = int(weights / shards + 2 * layer_w + head_w)
        lora_params, lora_grads, opt = (int(x / shards) for x in (lora_params, lora_grads, opt))
        notes.append(f"sharded over {shards} GPUs (FSDP2 / ZeRO-3): memory per GPU")

    tokens = micro_batch * max_length * sequences
    if sequences > 1:
        notes.append(f"{sequences} sequences per sample (chosen + rejected): activations for {sequences}× the batch")
    ab = 4 if dtype == "float32" and not autocast else 2
    if autocast:
        notes.append("bf16 autocast: fp32 weights, activations kept in bf16 (norms in fp32)")
    if fused_loss is None:
        fused_loss = trl_fused_loss_available()
    layer = activation_bytes_per_token_layer(shape, lora_dropout=lora_dropout, act_bytes=ab) * tokens
    logits = loss_bytes(shape, tokens, act_bytes=ab, fused=fused_loss)
    embed_out = ab * shape.hidden * tokens  # embedding output / final norm output
    if gradient_checkpointing:
        # Each layer's input is kept; the loss peaks first, then backward recomputes one
        # layer at a time with about two hidden-sized gradients in flight.
        stored = shape.layers * ab * shape.hidden * tokens + embed_out
        recompute = layer + 2 * ab * shape.hidden * tokens
        activations = stored + max(0, recompute - logits)
    else:
        activations = shape.layers * layer + embed_out
    scores = eager_scores_bytes(shape, device, dtype, micro_batch * sequences, max_length, gradient_checkpointing)
    if scores:
        activations += scores
        notes.append(
            f"attention logit softcapping ({shape.attn_softcap:g}) computed eagerly here: its scores "
            f"({max_length}² per head) are kept for backward, {scores / GiB:.2f} GiB"
        )
    if device == "cuda":
        overhead = CUDA_CONTEXT + CUBLAS_WORKSPACE + int(ALLOCATOR_SLACK * (activations + logits))
        if quantization != "none":
            # bitsandbytes dequantizes one weight to 16-bit for each matmul (and its transpose in backward)
            overhead += 2 * max(i * o for i, o, _n in shape.linears().values()) * 2
    else:
        overhead = int(ALLOCATOR_SLACK * (activations + logits)) + CPU_FRAMEWORK
    if shape.max_positions and max_length > shape.max_positions:
        notes.append(f"max length {max_length} is beyond the model's {shape.max_positions} positions")
    return MemoryEstimate(
        model=shape.name,
        device=device,
        quantization=quantization,
        dtype=dtype,
        micro_batch=micro_batch,
        max_length=max_length,
        gradient_checkpointing=gradient_checkpointing,
        lora_r=lora_r,
        optimizer=optimizer,
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


def eager_scores_bytes(shape: ModelShape, device: str, dtype: str, rows: int, length: int, checkpointing: bool) -> int:
    """What the eager attention of a softcapped model keeps per step (0 when the path that
    training takes there is fused: flash-attn or FlexAttention): for each head, the tanh
    output and the probabilities (fp32, and cast back) of every (query, key) pair, for one
    layer at a time with checkpointing, else for all."""
    if not shape.attn_softcap:
        return 0
    from sage_ft_tui.engine.train.attention import EAGER_SCORES, AttentionNeeds, choose_attention

    path = choose_attention(cuda=device == "cuda", dtype=dtype, needs=AttentionNeeds(softcap=shape.attn_softcap))
    if path.name not in EAGER_SCORES:
        return 0
    act = DTYPE_BYTES[dtype]
    # tanh output, fp32 probabilities, their cast back (the same tensor in fp32): 8 bytes a
    # pair either way, measured with saved_tensors_hooks on engine.train.attention's eager path
    per_pair = act + 4 + (0 if act == 4 else act)
    per_layer = shape.heads * rows * length * length * per_pair
    return per_layer * (1 if checkpointing else shape.layers)


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}K"


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
    from sage_ft_tui.engine.methods.registry import sequences_per_sample

    if snapshot is None:
        from sage_ft_tui.engine.hardware.probe import snapshot as hw_snapshot

        snapshot = hw_snapshot()
    gpus = list(snapshot.gpus)
    if rc.training.gpus:
        wanted = set(rc.training.gpus)
        picked = [g for g in gpus if g.index in wanted]
        gpus = picked or gpus
    gpu = bool(gpus)
    t = rc.training
    from sage_ft_tui.engine.train.distributed import strategy

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
        autocast=autocast,
        quantization=rc.model.quantization if gpu else "none",
        dtype=compute_dtype(t.precision, rc.model.dtype, gpu=gpu, bf16_ok=all(g.bf16 for g in gpus) if gpu else False),
        micro_batch=t.micro_batch_size,
        max_length=t.max_length,
        gradient_checkpointing=t.gradient_checkpointing,
        lora_r=rc.lora.r,
        target_modules=rc.lora.target_modules,
        lora_dropout=rc.lora.dropout,
        optimizer=t.optimizer,
        device="cuda" if gpu else "cpu",
        free=free,
        use_dora=rc.lora.use_dora,
        sequences=sequences_per_sample(rc.task),
        shards=shards,
    )
    if not gpu and rc.model.quantization != "none":
        est.notes.append(f"no GPU: {rc.model.quantization} quantization is not possible; estimated without it")
    return est


def _ram_available(snapshot) -> Optional[int]:
    h = snapshot.host
    return max(0, h.ram_total - h.ram_used) if h.ram_total else None


__all__ = [
    "ModelShape",
    "MemoryEstimate",
    "model_shape",
    "shape_from_config",
    "estimate_memory",
    "estimate_for_config",
    "compute_dtype",
    "activation_bytes_per_token_layer",
]
