"""The model a run trains: the base loaded (precision, attention, quantization, the fallback
when a model refuses the attention asked for), its LoRA config or the adapter it starts
from, and the CPU/GPU kernels around it (Liger, the compact LM head)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError, clip
from sage_ft_tui.engine.fsutil import MiB
from sage_ft_tui.engine.models.build_lock import MODEL_BUILD
from sage_ft_tui.engine.train.attention import AttentionChoice, choose_attention
from sage_ft_tui.engine.train.attention import register as register_attention


def on_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def cpu_bf16_fast() -> bool:
    """Native bf16 matmuls on this CPU (AMX or AVX512-BF16, through oneDNN); SAGE_FT_CPU_BF16=0
    turns the auto choice off."""
    from sage_ft_tui.engine.hardware.estimate import cpu_native_bf16

    if not cpu_native_bf16():
        return False
    import torch

    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_autocast(cfg: RunConfig) -> bool:
    """precision auto on CPU: bf16 autocast for models wide enough, on CPUs with native bf16
    (the rule is estimate.cpu_autocasts, which the memory estimate follows too)."""
    from sage_ft_tui.engine.hardware.estimate import cpu_autocasts
    from sage_ft_tui.engine.models.shape import model_shape

    if cfg.model.dtype not in ("auto", "float32"):
        return False
    try:
        hidden = model_shape(cfg.model.name).hidden
    except SageError:
        return False
    return cpu_autocasts("auto", cfg.model.dtype, hidden, cpu_bf16_fast())


def precision_flags(cfg: RunConfig) -> dict:
    p = cfg.training.precision
    if not on_cuda():
        if p == "fp16":
            raise SageError("training.precision fp16 needs a CUDA GPU", hint="use auto, bf16 or fp32 on CPU")
        # auto on CPU: bf16 autocast (fp32 weights, bf16 matmuls) where the CPU has AMX or
        # AVX512-BF16, 1.25x the real tokens/s of fp32 on the ~18M bench model, same loss curve
        # (tests/unit/test_cpu_speed.py); fp32 elsewhere, where emulated bf16 is slower.
        return {"bf16": p == "bf16" or (p == "auto" and cpu_autocast(cfg)), "fp16": False, "use_cpu": True}
    import torch

    bf16_ok = torch.cuda.is_bf16_supported()
    if p == "bf16" and not bf16_ok:
        raise SageError("training.precision bf16 is not supported by this GPU", hint="use fp16 or auto")
    if p == "auto":
        return {"bf16": bf16_ok, "fp16": not bf16_ok}
    return {"bf16": p == "bf16", "fp16": p == "fp16"}


# What status.json keeps of the start event: how the run really computes.
RECORDED_PATHS = ("precision", "attention", "kernels")


def precision_used(args, model, quantization: str) -> str:
    """The precision the run computes in, as the start event, status.json and the config hash
    say it: "fp32", "bf16", "fp16", "bf16 autocast (fp32 weights)", "4-bit nf4, bf16 compute"."""
    amp = "bf16" if getattr(args, "bf16", False) else "fp16" if getattr(args, "fp16", False) else None
    if quantization != "none":
        return f"{'4-bit nf4' if quantization == '4bit' else '8-bit'}, {amp or 'bf16'} compute"
    names = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
    floats = [p for p in model.parameters() if p.is_floating_point()]
    frozen = next((p for p in floats if not p.requires_grad), floats[0] if floats else None)  # the base's
    dtype = frozen.dtype if frozen is not None else None
    weights = names.get(str(dtype).removeprefix("torch."), str(dtype)) if dtype is not None else "fp32"
    if amp and amp != weights:
        return f"{amp} autocast ({weights} weights)"
    return weights


def _from_pretrained(cfg: RunConfig, mdir: Path, kw: dict, choice: AttentionChoice, *, cuda: bool, dtype: str):
    """from_pretrained in `choice`'s attention; when the model refuses that attention, once more
    in one it supports (the auto choice for this model, else eager), with a one-line note in
    train.log. Every other failure is one SageError whose hint matches its cause."""
    from sage_ft_tui.engine.models.failures import attention_refusal, load_error, model_load_error
    from sage_ft_tui.engine.models.vision import auto_class

    auto = auto_class(mdir)  # a vision-language model loads whole: tower, projector, language model

    note = None
    tried: list[str] = []
    while True:
        tried.append(choice.name)
        try:
            with MODEL_BUILD:
                model = auto.from_pretrained(str(mdir), **kw, attn_implementation=register_attention(choice.name))
            return model, choice, note
        except Exception as e:  # noqa: BLE001 - every loader failure becomes one SageError
            reason = attention_refusal(f"{type(e).__name__}: {e}")
            if reason is None or choice.name == "eager":
                known = model_load_error(f"{type(e).__name__}: {e}", cfg.model.name)
                if known is None and not isinstance(e, (OSError, ValueError, ImportError)):
                    raise  # out of memory and the like: the worker's classification
                raise (known or load_error(e, cfg.model.name)) from None
            fallback = choose_attention(cuda=cuda, dtype=dtype, mdir=mdir, honour_env=False)
            if fallback.name in tried:
                fallback = AttentionChoice("eager", "the model's own eager attention")
            note = (
                f"attention: {cfg.model.name} cannot use {choice.name} ({reason.rstrip('.')}); "
                f"using {fallback.name} instead: {fallback.why}"
            )
            if int(os.environ.get("RANK", "0")) == 0:  # one line in train.log, not one per rank
                print(f"[sage-ft-tui {time.strftime('%H:%M:%S')}] note: {note}", flush=True)
            choice = fallback


def load_model(cfg: RunConfig, mdir: Path, attention: Optional[dict] = None):
    """The base model, in the attention this model supports. `attention` (a dict) receives
    what the start event says of it: the path taken, why, and the note of a fallback."""
    import torch

    kw: dict[str, Any] = {"trust_remote_code": cfg.model.trust_remote_code}
    cuda = on_cuda()
    dtype = cfg.model.dtype
    if dtype == "auto":
        dtype = ("bfloat16" if torch.cuda.is_bf16_supported() else "float16") if cuda else "float32"
    kw["dtype"] = getattr(torch, dtype)
    requested: str = cfg.model.attn_implementation
    if requested == "auto":
        choice = choose_attention(cuda=cuda, dtype=dtype, mdir=mdir)
    else:
        choice = AttentionChoice(requested, "model.attn_implementation")
    q = cfg.model.quantization
    if q != "none":
        if not cuda:
            raise SageError(
                f"model.quantization {q} needs an NVIDIA GPU with CUDA",
                kind="config",
                hint="set model.quantization none on CPU (or run on a GPU server)",
            )
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise SageError(
                f"model.quantization {q} needs bitsandbytes",
                kind="config",
                hint="pip install bitsandbytes (on a CUDA machine)",
            ) from None
        from transformers import BitsAndBytesConfig

        compute = kw["dtype"] if kw["dtype"] != torch.float32 else torch.bfloat16
        kw["quantization_config"] = (
            BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=compute,
                # FSDP shards parameters of one dtype: store the 4-bit weights in the compute dtype
                bnb_4bit_quant_storage=compute,
            )
            if q == "4bit"
            else BitsAndBytesConfig(load_in_8bit=True)
        )
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        kw["device_map"] = {"": local_rank}
    model, choice, note = _from_pretrained(cfg, mdir, kw, choice, cuda=cuda, dtype=dtype)
    if attention is not None:
        attention.update(attention=choice.name, attention_why=choice.why, **({"attention_note": note} if note else {}))
    if q != "none":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.training.gradient_checkpointing)
        # prepare_model_for_kbit_training upcasts every non-quantized weight to fp32; the frozen
        # embeddings and lm_head (over 1B parameters for 150k-token vocabularies) go back to the
        # compute dtype, norms stay fp32. engine/hardware/estimate.py estimates exactly this.
        for emb in {
            id(m): m for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None
        }.values():
            emb.to(compute)
    return model


def peft_config(cfg: RunConfig, model=None):
    """`model`: a vision-language model, whose adapters go where lora.vision says (train/vision.py)."""
    from peft import LoraConfig

    lc = cfg.lora
    extra: dict[str, Any] = {"target_modules": lc.target_modules}
    if model is not None:
        from sage_ft_tui.engine.train.vision import vision_targets

        extra = vision_targets(model, lc.target_modules, lc.vision)
    return LoraConfig(
        r=lc.r,
        lora_alpha=lc.alpha,
        lora_dropout=lc.dropout,
        **extra,
        use_dora=lc.use_dora,
        bias=lc.bias,
        task_type="CAUSAL_LM",
    )


def use_liger() -> bool:
    """Liger's fused layer kernels (RMSNorm, RoPE, SwiGLU) on a CUDA GPU when the package is
    installed (pip install liger-kernel); SAGE_FT_LIGER=0 turns them off. TRL keeps its own
    fused LM-head loss, so only the layer kernels are applied."""
    if os.environ.get("SAGE_FT_LIGER", "1") == "0" or not on_cuda():
        return False
    import importlib.util

    return importlib.util.find_spec("liger_kernel") is not None


# Answer positions x vocabulary entries up to which the CPU loss builds the logits at once
# (fp32: 256 MiB); beyond it TRL's chunked head keeps memory bounded.
COMPACT_HEAD_MAX = 64 * MiB


def compact_lm_head(model) -> bool:
    """On CPU, score only the answer positions with one plain LM-head matmul instead of TRL's
    chunked head, which scores every position there (it compacts only on Triton devices) in
    Python-level tiles. Same loss and metrics (tests/unit/test_cpu_speed.py); ~10% of a step
    on the bench models. Wraps the forward TRL installed; anything else goes through it."""
    import types

    import torch
    from trl.trainer.utils import FusedCausalLMOutput

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    fused = base.forward
    if (
        os.environ.get("SAGE_FT_COMPACT_HEAD", "1") == "0"
        or getattr(getattr(fused, "__func__", None), "__code__", None) is None
        or fused.__func__.__code__.co_name != "_fused_forward"
    ):
        return False

    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kw):
        head = self.get_output_embeddings()
        vocab = head.weight.shape[0]
        tokens = (shift_labels if shift_labels is not None else labels).ne(-100).sum() if fused_lm_head else 0
        c = self.config.get_text_config() if hasattr(self.config, "get_text_config") else self.config
        special = getattr(c, "final_logit_softcapping", None) or getattr(c, "logit_scale", None)
        special = special or kw.get("output_router_logits") or getattr(c, "output_router_logits", False)
        if not fused_lm_head or special or head.weight.is_cuda or int(tokens) * vocab > COMPACT_HEAD_MAX:
            return fused(
                *args,
                fused_lm_head=fused_lm_head,
                labels=labels,
                shift_labels=shift_labels,
                num_items_in_batch=num_items_in_batch,
                **kw,
            )
        kw["use_cache"] = False
        hidden = self.base_model(*args, **kw).last_hidden_state
        if shift_labels is None:
            hidden, target = hidden[:, :-1], labels[:, 1:]
        else:
            target = shift_labels
        mask = target != -100
        logits = head(hidden[mask]).float()
        logp = torch.log_softmax(logits, dim=-1)
        picked = target[mask]
        log_probs = logp.gather(1, picked[:, None]).squeeze(1)
        with torch.no_grad():
            entropy = -(logp.exp() * logp).sum(-1)
            top1 = (logits.argmax(-1) == picked).to(log_probs.dtype)
        full = [x.new_zeros(mask.shape).masked_scatter(mask, x) for x in (log_probs, entropy, top1)]
        return FusedCausalLMOutput(
            loss=-full[0].sum() / (mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch),
            log_probs=full[0],
            entropy=full[1],
            is_top1=full[2],
            label_mask=mask,
        )

    base.forward = types.MethodType(forward, base)
    return True


def policy_model(cfg: RunConfig, mdir: Path, attention: Optional[dict] = None):
    """(model, peft_config): the base with a new LoRA config, or the base with the adapter
    of model.init_adapter loaded trainable (peft_config None: the trainer keeps it)."""
    model = load_model(cfg, mdir, attention)
    if not cfg.model.init_adapter:
        from sage_ft_tui.engine.models.vision import is_vision

        return model, peft_config(cfg, model if is_vision(mdir) else None)
    from peft import PeftModel

    from sage_ft_tui.engine.runs.chain import adapter_dir

    adapter = adapter_dir(cfg.model.init_adapter)
    try:
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=True), None
    except (OSError, ValueError, RuntimeError) as e:
        raise SageError(
            f"cannot load the adapter {adapter} onto {cfg.model.name}: {clip(str(e))}",
            hint="start from a run trained on the same base model",
            kind="model",
        ) from None
