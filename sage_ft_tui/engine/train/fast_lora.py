"""Fused LoRA linear: base + scale·(x·Aᵀ)·Bᵀ as ONE autograd node with a hand-written backward.

PEFT's `lora.Linear.forward` runs the base linear, then lora_A, lora_B, a scale and an add as
separate autograd nodes; under CPU bf16 autocast each linear casts its input again (x is cast
twice, the down projection's bf16 input goes to fp32 for lora_A and back), the scale runs
over the full (tokens × out) output, and the backward computes the frozen weight's path
through generic nodes. Here: x is cast once, x·Aᵀ is reused for grad_B, the scale is applied
to the small (tokens × r) product, base + LoRA is one mm plus one in-place addmm, and the
backward computes only grad_x, grad_A and grad_B (never a gradient for the frozen W).

Only the forward of the existing peft modules is replaced: module and parameter names stay
peft's, so the saved adapter is a standard one. A layer takes the fused path only in the
plain case (one active adapter, no dropout, no DoRA/variants, not merged, adapters enabled,
no trainable bias, an nn.Linear base); anything else goes through peft's own forward.
Losses and gradients match peft's (tests/unit/test_cpu_speed.py). SAGE_FT_FUSED_LORA=0 turns it off.
"""

from __future__ import annotations

import os
import types
import weakref

import torch

# The last input cast to the compute dtype: q/k/v (and gate/up) read the same normed hidden
# state, so it is cast once for all of them (and saved once for their backward).
_LAST_CAST: list = [None, -1, None, None]  # weakref(x), x._version, dtype, cast


def _cast_once(x, dtype):
    if x.dtype == dtype:
        return x
    if x.is_inference():  # no version counter to tell whether it changed: cast every time
        return x.to(dtype)
    ref, version, dt, cast = _LAST_CAST
    if ref is not None and ref() is x and version == x._version and dt == dtype:
        return cast
    cast = x.to(dtype)
    _LAST_CAST[:] = [weakref.ref(x), x._version, dtype, cast]
    return cast


class LoraLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scale: float, dtype):
        shape = x.shape
        x2 = _cast_once(x, dtype).reshape(-1, shape[-1])
        w, a, b = weight.to(dtype), lora_a.to(dtype), lora_b.to(dtype)
        us = torch.mm(x2, a.t()).mul_(scale)  # (tokens, r): scaled once, reused by grad_B
        y = torch.mm(x2, w.t()) if bias is None else torch.addmm(bias.to(dtype), x2, w.t())
        y.addmm_(us, b.t())
        # The frozen weight itself is kept, not its cast: under autocast a saved bf16 copy of every
        # base weight would live until the backward (half the base's size); casting it again
        # there costs one elementwise pass and gives the same bits.
        ctx.save_for_backward(x2, weight, a, b, us)
        ctx.scale, ctx.x_shape, ctx.dtypes = scale, shape, (x.dtype, lora_a.dtype, lora_b.dtype)
        return y.view(*shape[:-1], w.shape[0])

    @staticmethod
    def backward(ctx, grad_y):
        x2, weight, a, b, us = ctx.saved_tensors
        w = weight.to(x2.dtype)
        g = grad_y.reshape(-1, w.shape[0]).to(x2.dtype)
        x_dtype, a_dtype, b_dtype = ctx.dtypes
        need_x, _, _, need_a, need_b, _, _ = ctx.needs_input_grad
        grad_x = grad_a = grad_b = None
        if need_b:
            grad_b = torch.mm(g.t(), us).to(b_dtype)
        gu = torch.mm(g, b).mul_(ctx.scale)
        if need_a:
            grad_a = torch.mm(gu.t(), x2).to(a_dtype)
        if need_x:
            grad_x = torch.mm(g, w).addmm_(gu, a).view(ctx.x_shape).to(x_dtype)
        return grad_x, None, None, grad_a, grad_b, None, None


def _plain(layer, x) -> bool:
    """The case the fused path computes exactly like peft (checked at every call: adapters can
    be disabled, merged or switched while training, e.g. DPO's reference pass)."""
    if layer.disable_adapters or layer.merged or not x.is_floating_point():
        return False
    active = layer.active_adapters
    if len(active) != 1:
        return False
    name = active[0]
    if name not in layer.lora_A or name in getattr(layer, "lora_variant", {}):
        return False
    if not isinstance(layer.lora_dropout[name], torch.nn.Identity) or getattr(layer, "lora_bias", {}).get(name):
        return False
    base = layer.base_layer
    return not base.weight.requires_grad and (base.bias is None or not base.bias.requires_grad)


def _compute_dtype(x, base_w, a, b):
    """autocast's dtype while it is on; else the one dtype everything already shares (None:
    mixed dtypes outside autocast, peft's own promotion rules apply)."""
    dev = x.device.type
    if torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return x.dtype if x.dtype == base_w.dtype == a.dtype == b.dtype else None


def _fused_forward(self, x, *args, **kwargs):
    if args or kwargs or not _plain(self, x):
        return self._peft_forward(x, *args, **kwargs)
    name = self.active_adapters[0]
    a, b, base = self.lora_A[name].weight, self.lora_B[name].weight, self.base_layer
    dtype = _compute_dtype(x, base.weight, a, b)
    if dtype is None:
        return self._peft_forward(x, *args, **kwargs)
    return LoraLinearFn.apply(x, base.weight, base.bias, a, b, float(self.scaling[name]), dtype)


def enabled() -> bool:
    return os.environ.get("SAGE_FT_FUSED_LORA", "1") != "0"


def apply(model) -> int:
    """Swap the fused forward into every plain peft LoRA Linear of `model` (an nn.Linear base,
    not fan-in-fan-out); returns how many layers got it."""
    from peft.tuners.lora.layer import Linear as LoraLinear

    n = 0
    for mod in model.modules():
        if type(mod) is not LoraLinear or type(mod.base_layer) is not torch.nn.Linear or mod.fan_in_fan_out:
            continue
        if "_peft_forward" not in mod.__dict__:
            mod._peft_forward = types.MethodType(LoraLinear.forward, mod)
            mod.forward = types.MethodType(_fused_forward, mod)
        n += 1
    return n
