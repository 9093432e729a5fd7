"""One base model described without loading it: what the user can pick, and what it is.

A model is the built-in `tiny-demo`, a known default (models.known), a hub id in the local
Hugging Face cache (models.hub_cache), a model folder, or any path or hub id the user types.
For each: parameter count and architecture (from the safetensors headers when the weights
are local — an exact count read from a few KiB — else estimated from config.json), size on
disk, and whether it can be had now (`unavailable`: offline, an uncached hub id cannot be
fetched). `check_ref` validates a typed reference as it is typed; `matches` is the search over
the list (the list itself, with the runs' last use: models.listing). Nothing here opens a
connection.

Never imports torch or transformers (the TUI lists models with it).
"""

from __future__ import annotations

import json
import os
import struct
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import fmt_bytes
from sage_ft_tui.engine.models.hub_cache import current_snapshot, hf_cache_dir, repo_id_of
from sage_ft_tui.engine.models.known import DEFAULTS, known_model
from sage_ft_tui.engine.models.tiny import ARCH, TINY_NAME, VOCAB, tiny_model_dir

_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
# The one line that says how to go on when a model cannot be had offline.
WAY_FORWARD = f"pick a ✓ model, {TINY_NAME}, or type a model folder"
FOLDER_DEPTH = 2  # model folders are looked for this deep under the current folder
FOLDER_SCAN_LIMIT = 400  # folders looked at, at most (a home folder must not stall the list)
_SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", "venv", "checkpoints"}


@dataclass
class ModelEntry:
    id: str  # what goes into config.yaml: hub id, path, or tiny-demo
    source: str  # default | cache | builtin | path | hub
    params: Optional[int] = None
    architecture: Optional[str] = None
    size_bytes: Optional[int] = None
    offline: bool = False
    path: Optional[str] = None  # a local folder holding config.json, when there is one
    estimated: bool = False  # params estimated (config.json or model card), not counted
    note: str = ""
    last_used: Optional[float] = None  # when a run here last trained from it (its creation time)
    last_run: str = ""  # that run's name

    @property
    def params_label(self) -> str:
        if not self.params:
            return "?"
        n = float(self.params)
        for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
            if n >= size:
                return f"{'~' if self.estimated else ''}{n / size:.{1 if n < 100 * size else 0}f}{unit}"
        return str(int(n))

    @property
    def size_label(self) -> str:
        return fmt_bytes(self.size_bytes)


# ---- the cache -------------------------------------------------------------------------


def _dir_size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size  # follows links: cache blobs
            except OSError:
                pass
    return total


def scan_cache(cache: Optional[Path] = None) -> list[ModelEntry]:
    """Causal LMs in the local Hugging Face cache (folders models--org--name)."""
    cache = Path(cache) if cache else hf_cache_dir()
    try:
        repos = sorted(p for p in cache.iterdir() if p.is_dir() and p.name.startswith("models--"))
    except OSError:
        return []
    out = []
    for repo in repos:
        snap = current_snapshot(repo)
        if snap is None or not (snap / "config.json").is_file():
            continue
        entry = describe_folder(snap, repo_id_of(repo), source="cache")
        blobs = repo / "blobs"
        entry.size_bytes = _dir_size(blobs) if blobs.is_dir() else entry.size_bytes
        out.append(entry)
    return out


# ---- reading a model folder --------------------------------------------------------------


def safetensors_params(path: Path) -> int:
    """Parameters in one .safetensors file, from its JSON header only."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ValueError("short file")
        (n,) = struct.unpack("<Q", head)
        if n > 100 << 20:
            raise ValueError("header too large")
        header = json.loads(fh.read(n))
    total = 0
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        count = 1
        for d in info.get("shape", []):
            count *= int(d)
        total += count
    return total


def estimate_params(cfg: dict) -> Optional[int]:
    """A decoder-only transformer's parameter count from its config.json."""
    cfg = cfg.get("text_config", cfg) if isinstance(cfg.get("text_config"), dict) else cfg
    h = cfg.get("hidden_size") or cfg.get("n_embd") or cfg.get("d_model")
    layers = cfg.get("num_hidden_layers") or cfg.get("n_layer") or cfg.get("num_layers")
    vocab = cfg.get("vocab_size")
    if not (h and layers and vocab):
        return None
    heads = cfg.get("num_attention_heads") or cfg.get("n_head") or 1
    head_dim = cfg.get("head_dim") or h // heads
    kv = cfg.get("num_key_value_heads") or heads
    inter = cfg.get("intermediate_size") or cfg.get("n_inner") or 4 * h
    gated = (
        cfg.get("hidden_act", cfg.get("activation_function", "silu")) in ("silu", "swiglu", "gelu_pytorch_tanh")
        and "n_embd" not in cfg
    )
    experts = cfg.get("num_local_experts") or cfg.get("num_experts") or 1
    moe_inter = cfg.get("moe_intermediate_size") or inter
    attn = h * heads * head_dim * 2 + h * kv * head_dim * 2
    mlp = (3 if gated else 2) * h * (moe_inter if experts > 1 else inter) * experts
    per_layer = attn + mlp + 2 * h
    emb = vocab * h * (1 if cfg.get("tie_word_embeddings", True) else 2)
    return int(layers * per_layer + emb + h)


def describe_folder(folder: Path, model_id: Optional[str] = None, *, source: str = "path") -> ModelEntry:
    folder = Path(folder)
    cfg_path = folder / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SageError(
            f"{folder}: no config.json here",
            hint="point at a Hugging Face model folder (with config.json)",
            kind="model",
        ) from None
    except (OSError, ValueError) as e:
        raise SageError(f"{cfg_path}: unreadable ({e})", hint="is the model download complete?", kind="model") from None
    archs = cfg.get("architectures") or []
    arch = archs[0] if archs else (cfg.get("model_type") or None)
    files = [p for p in folder.iterdir() if p.is_file()]
    weights = [p for p in files if p.name.endswith(_WEIGHTS)]
    params, estimated = None, False
    shards = [p for p in weights if p.name.endswith(".safetensors")]
    if shards:
        try:
            params = sum(safetensors_params(p) for p in shards)
        except (OSError, ValueError, struct.error):
            params = None
    if params is None:
        params, estimated = estimate_params(cfg), True
    size = sum(_size(p) for p in files)
    note = "" if weights else "config only: weights not downloaded"
    return ModelEntry(
        id=model_id or str(folder),
        source=source,
        params=params,
        architecture=arch,
        size_bytes=size,
        offline=bool(weights),
        path=str(folder),
        estimated=estimated,
        note=note,
    )


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def looks_like_hub_id(ref: str) -> bool:
    parts = ref.split("/")
    return len(parts) == 2 and all(parts) and not ref.startswith((".", "~", "/")) and " " not in ref


def describe(ref: str, cache: Optional[dict[str, ModelEntry]] = None) -> ModelEntry:
    """One model the user named: tiny-demo, a folder, or a hub id (cached or not).

    A path that does not exist is a SageError (kind model)."""
    ref = (ref or "").strip()
    if not ref:
        raise SageError("no model given", hint="pick one from the list or type a path or hub id", kind="model")
    if ref.lower() == TINY_NAME:
        return tiny_entry()
    cached = cache if cache is not None else {e.id: e for e in scan_cache()}
    if ref in cached:
        return cached[ref]
    p = Path(ref).expanduser()
    if p.exists():
        if not p.is_dir():
            raise SageError(
                f"{ref}: a file, not a model folder", hint="give the folder that holds config.json", kind="model"
            )
        return describe_folder(p, str(p.resolve()))
    if looks_like_hub_id(ref):
        k = known_model(ref)
        params, arch, size = (k.params, k.architecture, k.size_bytes) if k else (None, None, None)
        return ModelEntry(
            id=ref,
            source="default" if ref in DEFAULTS else "hub",
            params=params,
            architecture=arch,
            size_bytes=size,
            offline=False,
            estimated=params is not None,
            note="not in the local cache: downloaded on first use",
        )
    raise SageError(
        f"{ref}: no such folder",
        hint=f"type an existing model folder, or a hub id like {DEFAULTS[-1]}",
        kind="model",
    )


def tiny_entry() -> ModelEntry:

    d = tiny_model_dir()
    if (d / "config.json").is_file():
        e = describe_folder(d, TINY_NAME, source="builtin")
        e.note = "built in; random weights, for trying the app"
        return e
    params = estimate_params({**ARCH, "vocab_size": VOCAB, "hidden_act": "silu"})
    return ModelEntry(
        id=TINY_NAME,
        source="builtin",
        params=params,
        architecture="LlamaForCausalLM",
        size_bytes=None,
        offline=True,
        estimated=True,
        note="built in; created offline on first use",
    )


# ---- model folders here -------------------------------------------------------------------


def local_folders(root: Path, depth: int = FOLDER_DEPTH, limit: int = FOLDER_SCAN_LIMIT) -> list[Path]:
    """Model folders (config.json and weights) at most `depth` below `root`, breadth first,
    hidden and package folders left out, `limit` folders looked at."""
    found: list[Path] = []
    queue = deque([(Path(root), 0)])
    looked = 0
    while queue and looked < limit:
        folder, level = queue.popleft()
        looked += 1
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        names = {e.name for e in entries}
        if "config.json" in names and any(n.endswith(_WEIGHTS) for n in names):
            found.append(folder)  # a model: its own sub-folders are not models
            continue
        if level < depth:
            for e in entries:
                if not e.name.startswith(".") and e.name not in _SKIP_DIRS and e.is_dir(follow_symlinks=False):
                    queue.append((Path(e.path), level + 1))
    return found


# ---- can it be had now, and what the user typed ------------------------------------------


def needs_download(e: ModelEntry) -> bool:
    """A hub id whose weights are not in the local cache."""
    return not e.offline and e.source != "path"


def unavailable(e: ModelEntry, offline: str) -> str:
    """Why `e` cannot be trained from now ('' when it can); `offline`: resolve.offline_reason()."""
    if e.offline:
        return ""
    if e.source == "path":
        return "no weights in this folder"
    if offline:
        return "weights not cached — offline" if e.path else "not cached — offline"
    return ""


def matches(e: ModelEntry, query: str) -> bool:
    """The search: every word of `query` is in the model's id, architecture or folder."""
    hay = " ".join(x for x in (e.id, e.architecture or "", e.path or "") if x).lower()
    return all(w in hay for w in query.lower().split())


def is_search(ref: str) -> bool:
    """Words to look for in the list, not a folder or a hub id (org/name)."""
    ref = ref.strip()
    return bool(ref) and not ref.startswith(("/", ".", "~")) and "/" not in ref and ref.lower() != TINY_NAME


@dataclass
class RefCheck:
    ok: bool
    message: str
    hint: str = ""
    entry: Optional[ModelEntry] = None


def check_ref(ref: str, known: dict[str, ModelEntry], offline: str, cwd: Optional[Path] = None) -> RefCheck:
    """A typed folder or hub id, checked as it is typed: does it exist, does it hold
    config.json (and weights), is it cached, can it be fetched now. Relative paths are
    relative to `cwd`; a folder wins over a hub id of the same spelling."""
    ref = ref.strip()
    by_lower = {k.lower(): e for k, e in known.items()}
    entry = by_lower.get(ref.lower())
    if entry is None:
        p = Path(ref).expanduser()
        if cwd is not None and not p.is_absolute():
            p = Path(cwd) / p
        if not p.exists() and not ref.startswith(("/", ".", "~")) and p.parent.is_dir() and ref.count("/") == 1:
            # "models/mine" where ./models exists: a folder being typed, not an org on the hub
            return RefCheck(False, f"{ref}: no such folder in {p.parent.name}/", "type the model folder's name")
        try:
            entry = describe(str(p) if p.exists() else ref, cache=known)
        except SageError as e:
            return RefCheck(False, e.message, e.hint)
    why = unavailable(entry, offline)
    if why:
        hint = WAY_FORWARD if offline and entry.source != "path" else "give the folder that holds the model's weights"
        return RefCheck(False, f"{entry.id}: {why}" + (f" ({offline})" if offline else ""), hint, entry)
    facts = " · ".join(x for x in (entry.architecture, entry.params_label, entry.size_label) if x and x != "?")
    where = {
        "builtin": "built in",
        "cache": "in the local cache",
        "default": "in the local cache",
        "path": "model folder",
    }
    if not entry.offline:
        return RefCheck(True, f"{entry.id}: not cached, downloaded on first use · {facts}".rstrip(" ·"), "", entry)
    return RefCheck(True, f"✓ {where.get(entry.source, entry.source)} · {facts}".rstrip(" ·"), "", entry)


__all__ = [
    "needs_download",
    "ModelEntry",
    "TINY_NAME",
    "check_ref",
    "RefCheck",
    "unavailable",
    "matches",
    "is_search",
    "local_folders",
    "WAY_FORWARD",
    "describe",
    "describe_folder",
    "scan_cache",
    "estimate_params",
    "safetensors_params",
]
