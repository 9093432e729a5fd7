"""What a failure to load a model means, with the hint that fixes it (one owner for the
patterns: the worker's classification and the start-time module check both use it)."""

from __future__ import annotations

from typing import Optional

from sage_ft_tui.engine.errors import SageError

_TRUNCATED = (
    "incomplete metadata, file not fully covered",
    "error while deserializing header",
    "pytorchstreamreader failed reading",
    "unexpected eof",
    "headertoolarge",
    "invalid header",
    "failed to read",
)


def model_load_error(text: str, model: str) -> Optional[SageError]:
    """A SageError for the model failure described by `text` (an exception or its last
    stderr line), or None when it is not one we recognise."""
    low = text.lower()
    if "safetensor" in low or "pytorchstreamreader" in low or any(s in low for s in _TRUNCATED[:3]):
        if any(s in low for s in _TRUNCATED):
            return SageError(
                f"the weights of {model} are truncated or corrupt ({text.strip().splitlines()[0][:160]})",
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
    return None
