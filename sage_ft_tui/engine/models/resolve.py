"""Turn a model reference (tiny-demo, a folder, a hub id) into a local folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sage_ft_tui.engine.errors import SageError, clip
from sage_ft_tui.engine.models.hub_cache import hf_cache_dir
from sage_ft_tui.engine.models.tiny import TINY_NAME, ensure_tiny_model, is_tiny

_META = ["*.json", "*.jinja", "tokenizer.model", "*.txt", "*.tiktoken"]
_TRUE = ("1", "true", "yes", "on")  # what huggingface_hub reads as set
_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
# A model folder's tokenizer, as files: copied verbatim with an adapter and into a merged
# folder (re-saving through transformers drops tokenizer.model, which llama.cpp needs for
# SentencePiece vocabularies, and rewrites the configs in its own format).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    # a vision-language model's processor: how images become pixels and tokens
    "preprocessor_config.json",
    "processor_config.json",
    "chat_template.json",
)
PROBE_TIMEOUT = 1.5  # seconds the one reachability check may take
PROBE_TTL = 60.0  # how long its answer is kept
_probed: dict[str, tuple[float, str]] = {}


def offline_switch() -> str:
    """The offline variable that is set (HF_HUB_OFFLINE=1, ...), else ''."""
    return next((f"{k}=1" for k in _SWITCHES if os.environ.get(k, "").strip().lower() in _TRUE), "")


def offline_reason(*, probe: bool = True) -> str:
    """Why a model that is not in the local cache cannot be fetched now ('' when it can).

    An offline switch answers without any connection. Otherwise (`probe`) one TCP connect
    to the hub's host, at most PROBE_TIMEOUT seconds, kept PROBE_TTL seconds. The Model step
    calls it only when the user goes on with a model that must be downloaded (so a local
    choice never opens a connection), and says there, not in a later download, why not. With
    a proxy configured the direct connect says nothing, so the hub counts as reachable."""
    switch = offline_switch()
    if switch or not probe:
        return switch
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return ""
    import socket
    import time
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    now = time.monotonic()
    seen = _probed.get(host)
    if seen is not None and now - seen[0] < PROBE_TTL:
        return seen[1]
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
        why = ""
    except OSError:
        why = f"{host} cannot be reached"
    _probed[host] = (now, why)
    return why


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
    kw["cache_dir"] = str(hf_cache_dir())
    try:
        return Path(snapshot_download(local_files_only=True, **kw))
    except Exception:
        pass
    switch = offline_switch()
    if switch:
        raise SageError(
            f"model {name} is not in the local Hugging Face cache and {switch}",
            hint=f"use a cached model, {TINY_NAME} or a model folder; or download it first with {switch.split('=')[0]} unset",
            kind="model",
        )
    try:
        return Path(snapshot_download(**kw, etag_timeout=10))
    except Exception as e:
        short = clip(str(e), 160)
        raise SageError(
            f"cannot get model {name} from the local cache or the hub ({short})",
            hint="check the id and the network, or give a local folder",
            kind="model",
        ) from None
