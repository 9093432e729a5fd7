"""Turn a model reference (tiny-demo, a folder, a hub id) into a local folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.models.tiny import TINY_NAME, ensure_tiny_model, is_tiny

_META = ["*.json", "*.jinja", "tokenizer.model", "*.txt", "*.tiktoken"]


def check_model_folder(d: Path, name: str) -> Path:
    if not d.exists():
        raise SageError(
            f"model path {name} does not exist",
            hint=f"give an existing model folder, a hub id, or {TINY_NAME}",
            kind="model",
        )
    if not d.is_dir() or not (d / "config.json").is_file():
        raise SageError(
            f"{name} is not a model folder (no config.json)",
            hint="point at a folder saved by save_pretrained / downloaded from the hub",
            kind="model",
        )
    try:
        json.loads((d / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise SageError(
            f"{d / 'config.json'}: not valid JSON", hint="re-download or re-save the model", kind="model"
        ) from None
    return d


def model_dir(name: str, *, revision: str | None = None, metadata_only: bool = True) -> Path:
    """A local folder for `name`; hub ids come from the local cache, else (online) the hub.

    metadata_only: fetch config/tokenizer/template files only (no weights)."""
    name = name.strip()
    if is_tiny(name):
        return ensure_tiny_model()
    p = Path(name).expanduser()
    if p.exists() or name.startswith(("/", ".", "~")):
        return check_model_folder(p.resolve(), name)
    if name.count("/") != 1:
        raise SageError(
            f"model {name!r} is neither a folder nor a hub id (org/name)",
            hint=f"give a path, an org/name hub id, or {TINY_NAME}",
            kind="model",
        )
    from huggingface_hub import snapshot_download

    kw = dict(repo_id=name, revision=revision, allow_patterns=_META if metadata_only else None)
    try:
        return Path(snapshot_download(local_files_only=True, **kw))
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise SageError(
            f"model {name} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1",
            hint="download it first, or unset HF_HUB_OFFLINE",
            kind="model",
        )
    try:
        return Path(snapshot_download(**kw, etag_timeout=10))
    except Exception as e:
        short = str(e).splitlines()[0][:160]
        raise SageError(
            f"cannot get model {name} from the local cache or the hub ({short})",
            hint="check the id and the network, or give a local folder",
            kind="model",
        ) from None
