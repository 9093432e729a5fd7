"""Where the local Hugging Face cache is and which snapshot of a cached repository is current,
read from the folders alone (no huggingface_hub import, no connection).

One owner for both facts: the model list (catalog), the estimate's shapes (models.shape) and
the model resolution (resolve) all look models up here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


def hf_cache_dir() -> Path:
    """Where huggingface_hub keeps models, by its own rules but read now (its constants are read
    once, when it is first imported): model lookups pass this as cache_dir."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def repo_folder(repo_id: str, cache: Optional[Path] = None) -> Path:
    """The cache folder of a hub repository (models--org--name), whether or not it exists."""
    return Path(cache or hf_cache_dir()) / ("models--" + repo_id.replace("/", "--"))


def repo_id_of(folder: Path) -> str:
    """The hub id a cache folder (models--org--name) holds."""
    return folder.name[len("models--") :].replace("--", "/")


def current_snapshot(repo_dir: Path) -> Optional[Path]:
    """The snapshot folder `refs/main` points to, else the newest one (None: no snapshot)."""
    snaps = repo_dir / "snapshots"
    try:
        ref = (repo_dir / "refs" / "main").read_text(encoding="utf-8").strip()
        if (snaps / ref).is_dir():
            return snaps / ref
    except OSError:
        pass
    try:
        cands = [p for p in snaps.iterdir() if p.is_dir()]
    except OSError:
        return None
    return max(cands, key=lambda p: p.stat().st_mtime) if cands else None


__all__ = ["hf_cache_dir", "repo_folder", "repo_id_of", "current_snapshot"]
