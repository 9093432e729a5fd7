"""When a run fails on the fast path this machine picked (Liger, flash-attn, torch's
varlen_attn, FlexAttention), the next phases must still measure something: the same run
again on the next path down, with the failure reported (an installed path that breaks is
a finding, unlike a missing wheel). The choice is the engine's own switches:
SAGE_FT_LIGER=0 and SAGE_FT_ATTN (engine/train/attention.py)."""

from __future__ import annotations

import importlib.util
import os
from typing import Optional

from sage_ft_tui.engine.train.attention import FLASH, VARLEN, VARLEN_FLEX, VARLEN_SDPA, choose_attention


def taken(start: dict, cuda: bool) -> tuple[bool, str]:
    """(Liger on, attention) as the run's start event says, else as the engine would choose
    (a run that failed while the trainer was built has no start event)."""
    if start:
        return bool(start.get("liger")), str(start.get("attention") or "")
    liger = (
        cuda and os.environ.get("SAGE_FT_LIGER", "1") != "0" and importlib.util.find_spec("liger_kernel") is not None
    )
    return liger, choose_attention(cuda=cuda, dtype="bfloat16").name


def next_path(start: dict, cuda: bool, error: str) -> Optional[tuple[dict[str, str], str]]:
    """(environment for the retry, what failed) or None when there is nothing lower to try."""
    if "out of memory" in error.lower() or not cuda:
        return None
    liger, attention = taken(start, cuda)
    if liger:
        return {"SAGE_FT_LIGER": "0"}, "Liger"
    if attention in (FLASH, VARLEN):
        return {"SAGE_FT_ATTN": VARLEN_FLEX}, "flash-attn varlen" if attention == FLASH else "torch varlen_attn"
    if attention == VARLEN_FLEX:
        return {"SAGE_FT_ATTN": VARLEN_SDPA}, "FlexAttention"
    return None


def varlen_signature_gap() -> list[str]:
    """The keyword arguments engine/train/attention.py's torch_varlen passes that this torch's
    varlen_attn does not take (torch 2.10 had `is_causal` instead of `window_size`): a run
    on that path would fail at its first step, so the check says so and starts one step down."""
    import inspect

    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return []
    params = inspect.signature(varlen_attn).parameters
    return [p for p in ("scale", "window_size", "enable_gqa") if p not in params]
