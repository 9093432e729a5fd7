"""Offline means offline: with a local model and local data no process of ours opens a
network connection (no hub lookups, no telemetry, no update checks).

The one owner of these variables: the worker, the CLI's own preparation and every child
process we start take them from `offline_env`."""

from __future__ import annotations

import os
from pathlib import Path

# Always: nothing of ours reports usage anywhere.
TELEMETRY_OFF = {
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "DO_NOT_TRACK": "1",
    "HF_DATASETS_DISABLE_TELEMETRY": "1",
    "DISABLE_TELEMETRY": "1",
}
# When everything the run needs is on this machine: no hub client reaches out at all.
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


def model_is_local(name: str) -> bool:
    from sage_ft_tui.engine.models.tiny import is_tiny

    return is_tiny(name) or Path(name).expanduser().exists()


def data_is_local(paths: list[str]) -> bool:
    return all(Path(p).expanduser().exists() for p in paths)


def offline_env(cfg) -> dict[str, str]:
    """The environment a process working on `cfg` runs with (a RunConfig)."""
    env = dict(TELEMETRY_OFF)
    if model_is_local(cfg.model.name) and data_is_local([*cfg.data.paths, *cfg.data.eval_paths]):
        env.update(OFFLINE)
    return env


def apply_offline_env(cfg) -> None:
    """Set them in this process (before the hub, datasets or transformers are imported here)."""
    os.environ.update(offline_env(cfg))


__all__ = ["TELEMETRY_OFF", "OFFLINE", "offline_env", "apply_offline_env", "model_is_local"]
