"""Base and tuned model in one: the base with the run's adapter attached (no merge), the
base answered with the adapter switched off (`disable_adapter`), so both share one copy
of the weights and one tokenizer — the one that trained the adapter."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sage_ft_tui.engine.data.template import chat_tokenizer
from sage_ft_tui.engine.deploy.artifacts import find_adapter, resolve_dtype
from sage_ft_tui.engine.deploy.merge import quiet_hf
from sage_ft_tui.engine.models.build_lock import MODEL_BUILD
from sage_ft_tui.engine.models.resolve import model_dir
from sage_ft_tui.engine.models.vision import auto_class, is_vision
from sage_ft_tui.engine.train.vision import load_processor


@dataclass
class Pair:
    model: Any  # peft.PeftModel
    tok: Any  # transformers tokenizer (left padding, for batched generation)
    chat: Any  # engine.data.template.ChatTokenizer: the exact training rendering
    adapter: Path
    adapter_label: str
    base_path: Path
    device: str
    proc: Any = None  # a vision-language model's processor (images → pixels and tokens), else None

    def side(self, which: str):
        """A context in which `self.model` is the base ("base") or the tuned model ("tuned")."""
        return self.model.disable_adapter() if which == "base" else contextlib.nullcontext()


def pick_device(want: str = "auto") -> str:
    import torch

    if want != "auto":
        return want
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_pair(run: Path, cfg, *, device: str = "auto", checkpoint=None) -> Pair:
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    quiet_hf()
    adapter, label = find_adapter(run, checkpoint)
    base = model_dir(cfg.model.name, revision=cfg.model.revision, metadata_only=False)
    dev = pick_device(device)
    dt = resolve_dtype("auto", cfg.model.dtype, base)
    if dev == "cpu" and dt == "float16":
        dt = "float32"  # half-precision matmuls on CPU are slow or missing
    trust = cfg.model.trust_remote_code
    tok_src = adapter if (adapter / "tokenizer_config.json").is_file() else base

    proc = None
    if is_vision(base):
        proc = load_processor(cfg, tok_src if (tok_src / "preprocessor_config.json").is_file() else base)
        tok = proc.tokenizer
    else:
        tok = AutoTokenizer.from_pretrained(str(tok_src), trust_remote_code=trust)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    chat = chat_tokenizer(str(tok_src if (tok_src / "tokenizer.json").is_file() else base))
    with MODEL_BUILD:
        model = auto_class(base).from_pretrained(
            str(base), dtype=getattr(torch, dt), trust_remote_code=trust, low_cpu_mem_usage=True
        )
    model = model.to(dev)
    if len(tok) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tok))
    model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False)
    model.eval()
    return Pair(model, tok, chat, adapter, label, base, dev, proc)
