"""What a failure to load a model means, with the hint that fixes it (one owner for the
patterns: the trainer's loading, the worker's classification and the start-time module
check all use it). Messages keep whole sentences (`errors.clip`), never a cut URL."""

from __future__ import annotations

import re
from typing import Optional

from sage_ft_tui.engine.errors import SageError, clip

_TRUNCATED = (
    "incomplete metadata, file not fully covered",
    "error while deserializing header",
    "pytorchstreamreader failed reading",
    "unexpected eof",
    "headertoolarge",
    "invalid header",
    "failed to read",
)
# What transformers says when a model cannot use the attention implementation asked for.
_ATTENTION = (
    "does not support an attention implementation",
    "does not support flash attention",
    "flashattention2 has been toggled on",
    "flash attention 2 is not available",
    "does not support `softcap`",
    "attn_implementation=",
    "is not supported. the only possible arguments are",
    "flex attention is not supported",
    "through torch's flex_attention",
)
_NO_WEIGHTS = ("no file named", "does not appear to have a file named", "no such file or directory")


def _reason(text: str) -> str:
    """The exception's own first sentence, without a leading 'TypeName: ' or 'Error '."""
    line = clip(text)
    line = re.sub(r"^[A-Za-z_.]*(Error|Exception):\s*", "", line)
    return re.sub(r"^Error\s+", "", line)


def attention_refusal(text: str) -> Optional[str]:
    """The model's reason, one sentence, when `text` says it cannot use the attention asked
    for (None when the failure is something else)."""
    low = text.lower()
    if any(s in low for s in _ATTENTION):
        return _reason(text)
    return None


def model_load_error(text: str, model: str) -> Optional[SageError]:
    """A SageError for the model failure described by `text` (an exception or its last
    stderr line), or None when it is not one we recognise."""
    low = text.lower()
    if "safetensor" in low or "pytorchstreamreader" in low or any(s in low for s in _TRUNCATED[:3]):
        if any(s in low for s in _TRUNCATED):
            return SageError(
                f"the weights of {model} are truncated or corrupt ({_reason(text)})",
                kind="model",
                hint="re-download the model (e.g. `hf download ID --force-download`) or save it again; "
                "an interrupted copy leaves a short file",
            )
    if "contains custom code" in low or "trust_remote_code" in low:
        return SageError(
            f"{model} needs the Python code shipped with it (custom architecture)",
            kind="model",
            hint="set model.trust_remote_code: true if you trust that code (it runs with your permissions), "
            "or pick a model transformers supports natively",
        )
    if "does not recognize this architecture" in low or "unrecognized configuration class" in low:
        return SageError(
            f"transformers does not know the architecture of {model}",
            kind="model",
            hint="if the folder ships its own modeling_*.py, set model.trust_remote_code: true (only if you trust "
            "it); otherwise upgrade transformers",
        )
    refusal = attention_refusal(text)
    if refusal is not None:
        return SageError(
            f"{model} cannot use the attention implementation asked for: {refusal}",
            kind="config",
            hint="set model.attn_implementation: auto (it picks one this model supports) or eager",
        )
    if "not a valid json file" in low or "jsondecodeerror" in low:
        return SageError(
            f"the config.json of {model} is damaged ({_reason(text)})",
            kind="model",
            hint="re-download the model or restore its config.json",
        )
    if "ignore_mismatched_sizes" in low or "size mismatch for" in low:
        return SageError(
            f"the weights of {model} do not have the shapes its config.json describes",
            kind="model",
            hint="config.json belongs to another model (or was edited): restore the model's own config.json, "
            "or re-download the model",
        )
    if any(s in low for s in _NO_WEIGHTS) and ("safetensors" in low or ".bin" in low or "weights" in low):
        return SageError(
            f"{model} has no weights ({_reason(text)})",
            kind="model",
            hint="the folder needs model.safetensors (or pytorch_model.bin, or sharded files with their index) "
            "beside config.json: download the whole model, not only its config",
        )
    return None


def load_error(exc: BaseException, model: str) -> SageError:
    """Any failure of from_pretrained as a SageError: a recognised cause with its own hint,
    else the loader's own first sentence, honestly unclassified."""
    found = model_load_error(f"{type(exc).__name__}: {exc}", model)
    if found is not None:
        return found
    return SageError(
        f"cannot load model {model}: {_reason(str(exc)) or type(exc).__name__}",
        kind="model",
        hint="see train.log for the loader's whole message",
    )
