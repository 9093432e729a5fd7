"""The model list the Model step shows: tiny-demo, the known defaults, the cached models, model
folders under the current folder and the folders earlier runs trained from — each with when a
run here last used it.

Kept apart from `catalog` (which describes one model) because it asks the runs home for its
history: the catalogue of models stays below the runs in the engine's layers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.models.catalog import (
    DEFAULTS,
    ModelEntry,
    describe,
    describe_folder,
    local_folders,
    scan_cache,
    tiny_entry,
)
from sage_ft_tui.engine.runs.state import list_runs


def last_used() -> dict[str, tuple[float, str]]:
    """model name -> (creation time, name) of the newest run here that trained from it."""
    out: dict[str, tuple[float, str]] = {}
    try:
        runs = list_runs()
    except SageError:  # an unreadable runs home: no history, the list still shows
        return out
    for r in runs:  # newest first
        if r.model and r.model not in out:
            out[r.model] = (r.created, r.name)
    return out


def catalogue(cache_dir: Optional[Path] = None, *, cwd: Optional[Path] = None) -> list[ModelEntry]:
    """tiny-demo, the defaults (with cache details when cached), the other cached models
    (most recently used first); with `cwd` (the Model step) also the model folders under it
    and the folders earlier runs trained from. Each with when a run here last used it."""
    cached = {e.id: e for e in scan_cache(cache_dir)}
    used = last_used()
    out = [tiny_entry()]
    for ref in DEFAULTS:
        if ref in cached:
            e = cached.pop(ref)
            e.source = "default"
            out.append(e)
        else:
            out.append(describe(ref, cache={}))
    out.extend(sorted(cached.values(), key=lambda e: (-used.get(e.id, (0.0, ""))[0], e.id.lower())))
    if cwd is not None:
        seen = {e.id for e in out}
        recent = [Path(m) for m in used if m.startswith(("/", "~")) and Path(m).expanduser().is_dir()]
        for folder in [*local_folders(Path(cwd)), *recent]:
            key = str(folder.expanduser().resolve())
            if key in seen:
                continue
            seen.add(key)
            try:
                out.append(describe_folder(folder.expanduser(), key))
            except SageError:  # a half-copied folder: not offered
                continue
    for e in out:
        hit = used.get(e.id) or (used.get(e.path) if e.path else None)
        if hit:
            e.last_used, e.last_run = hit
    return out


__all__ = ["catalogue", "last_used"]
