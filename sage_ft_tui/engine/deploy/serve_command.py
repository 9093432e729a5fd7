"""The command line that will start a run's model server, checked before anything starts:
which backend (vLLM or `transformers serve`), the adapter or the merged model, host, port, API
key, environment. Nothing is started here; `deploy/serve.py` starts what this describes.

    vLLM          `vllm serve` — the LoRA adapter without merging (--enable-lora
                  --lora-modules NAME=PATH), or the merged model. Chosen by `auto` when vLLM
                  is installed and an NVIDIA GPU is present. Enforces --api-key.
    transformers  `transformers serve <merged folder>` (extra `serve`). It has no API-key
                  check, so it is only ever bound to a loopback address.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.deploy.artifacts import default_output, find_adapter, merged_ok
from sage_ft_tui.engine.deploy.net import free_port, is_loopback, is_wildcard, local_url, port_problem, url_host
from sage_ft_tui.engine.deploy.serve_info import refuse_if_served
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import read_json
from sage_ft_tui.engine.hardware.probe import snapshot
from sage_ft_tui.engine.models.tiny import is_tiny, resolve_model_name
from sage_ft_tui.engine.offline import OFFLINE, TELEMETRY_OFF, offline_env
from sage_ft_tui.engine.paths import resolve_run
from sage_ft_tui.engine.runs.layout import RunLayout

BACKENDS = ("auto", "vllm", "transformers")


VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vllm.config.lora.MaxLoRARanks


EXTRA_HINT = {"vllm": "pip install 'sage-ft-tui[vllm]'", "transformers": "pip install 'sage-ft-tui[serve]'"}


def find_program(name: str) -> Optional[str]:
    """An executable of this Python environment first, then PATH."""
    here = Path(sys.executable).parent / name
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which(name)


def vllm_available() -> bool:
    return find_program("vllm") is not None


def transformers_serve_available() -> bool:
    return all(find_spec(m) is not None for m in ("fastapi", "uvicorn", "pydantic", "openai", "transformers"))


def gpu_present() -> bool:
    try:
        return snapshot().has_gpu
    except Exception:
        return False


@dataclass
class ServeCommand:
    run: str  # the run folder
    backend: str
    mode: str  # adapter | merged
    model: str  # the name clients pass as `model`
    model_path: str
    host: str
    port: int
    cmd: list[str]
    env: dict = field(default_factory=dict)
    api_key: Optional[str] = None
    api_key_enforced: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        if is_wildcard(self.host):
            return f"http://{socket.gethostname()}:{self.port}"
        return f"http://{url_host(self.host)}:{self.port}"

    @property
    def local_url(self) -> str:
        return local_url(self.host, self.port)


def _adapter_rank(adapter: Path) -> int:
    cfg = read_json(adapter / "adapter_config.json", {}) or {}
    ranks = [int(cfg.get("r") or 8)] + [int(v) for v in (cfg.get("rank_pattern") or {}).values()]
    return max(ranks)


def vllm_lora_rank(r: int) -> int:
    for allowed in VLLM_LORA_RANKS:
        if r <= allowed:
            return allowed
    raise SageError(
        f"LoRA rank {r} is above vLLM's maximum ({VLLM_LORA_RANKS[-1]})",
        hint="serve the merged model instead: `sage-ft-tui merge RUN`, then serve --merged",
    )


def lora_module_arg(name: str, path: str, base_name: Optional[str] = None) -> str:
    """--lora-modules value: name=path, or the JSON form when the path contains '=' or ','."""
    if "=" in path or "," in path or "=" in name or base_name:
        d = {"name": name, "path": path}
        if base_name:
            d["base_model_name"] = base_name
        return json.dumps(d)
    return f"{name}={path}"


def vllm_command(
    model: str,
    *,
    host: str,
    port: int,
    served_name: str,
    adapter: Optional[str] = None,
    lora_name: Optional[str] = None,
    max_lora_rank: Optional[int] = None,
    gpu_memory_utilization: Optional[float] = None,
    revision: Optional[str] = None,
    trust_remote_code: bool = False,
    chat_template: Optional[str] = None,
    exe: Optional[str] = None,
) -> list[str]:
    """`vllm serve MODEL ...`. The API key travels in VLLM_API_KEY (kept out of `ps`)."""
    cmd = [
        exe or find_program("vllm") or "vllm",
        "serve",
        model,
        "--host",
        host.strip("[]"),
        "--port",
        str(port),
        "--served-model-name",
        served_name,
    ]
    if revision:
        cmd += ["--revision", revision]
    if trust_remote_code:
        cmd.append("--trust-remote-code")
    if gpu_memory_utilization is not None:
        cmd += ["--gpu-memory-utilization", f"{gpu_memory_utilization:g}"]
    if adapter:
        cmd += [
            "--enable-lora",
            "--lora-modules",
            lora_module_arg(lora_name or "adapter", adapter),
            "--max-lora-rank",
            str(max_lora_rank or 16),
        ]
    if chat_template:
        cmd += ["--chat-template", chat_template]
    return cmd


def transformers_command(
    model_path: str, *, host: str, port: int, device: str = "auto", exe: Optional[str] = None
) -> list[str]:
    """`transformers serve <folder>`: pinned to that one model (listed under its path)."""
    return [
        exe or find_program("transformers") or "transformers",
        "serve",
        model_path,
        "--host",
        host.strip("[]"),
        "--port",
        str(port),
        "--device",
        device,
        "--dtype",
        "auto",
        "--log-level",
        "info",
    ]


def _base_ref(cfg) -> str:
    name = cfg.model.name
    if is_tiny(name):
        return resolve_model_name(name)
    p = Path(name).expanduser()
    return str(p.resolve()) if p.exists() or name.startswith(("/", ".", "~")) else name


def serve_command(
    run: Path | str,
    *,
    backend: str = "auto",
    mode: Optional[str] = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: Optional[str] = None,
    gpu_memory_utilization: Optional[float] = None,
    device: str = "auto",
) -> ServeCommand:
    """Check everything that can be checked before starting anything."""
    run = resolve_run(run, "serve it")
    refuse_if_served(run)
    cfg = RunConfig.load(RunLayout(run).config)
    host = _check_options(backend, mode, host, port, api_key, gpu_memory_utilization)
    loopback = is_loopback(host)
    backend = _pick_backend(backend)
    if backend == "transformers" and not loopback:
        raise SageError(
            f"the transformers backend cannot require an API key, so it will not listen on {host}",
            kind="serve",
            hint="keep --host 127.0.0.1 and reach it through an SSH tunnel "
            "(ssh -L 8000:127.0.0.1:8000 server), or use --backend vllm with --api-key",
        )
    merged = default_output(run)
    if mode is None:
        mode = "merged" if backend == "transformers" or merged_ok(merged) else "adapter"
    if mode == "adapter" and backend == "transformers":
        raise SageError(
            "the transformers backend serves the merged model, not the bare adapter",
            kind="serve",
            hint=f"run `sage-ft-tui merge {run.name}` and serve --merged, or use --backend vllm",
        )
    port = _pick_port(host, port)
    if mode == "merged":
        _check_merged(run, merged, backend)
    if backend == "transformers":
        return _transformers_serve(run, merged, host, port, api_key, gpu_memory_utilization, device)
    return _vllm_serve(run, cfg, mode, merged, host, port, api_key, gpu_memory_utilization)


def _check_options(
    backend: str,
    mode: Optional[str],
    host: str,
    port: int,
    api_key: Optional[str],
    gpu_memory_utilization: Optional[float],
) -> str:
    """The flags on their own (before looking at what is installed); returns the host to bind."""
    if backend not in BACKENDS:
        raise SageError(
            f"--backend {backend!r} is not one of {', '.join(BACKENDS)}", hint="e.g. --backend transformers"
        )
    if mode not in (None, "adapter", "merged"):
        raise SageError(
            f"mode {mode!r}: use --adapter or --merged", hint="--adapter needs vLLM; --merged works everywhere"
        )
    if not (0 <= int(port) <= 65535):
        raise SageError(f"--port {port} is not a TCP port", hint="use 1-65535 (or 0 for any free port)")
    if gpu_memory_utilization is not None and not (0.0 < gpu_memory_utilization <= 1.0):
        raise SageError(
            f"--gpu-memory-utilization {gpu_memory_utilization} is out of range",
            hint="give a fraction of GPU memory, 0 < F <= 1 (e.g. 0.85)",
        )
    if api_key is not None and not api_key.strip():
        raise SageError("--api-key is empty", hint="give a non-empty key, or leave --api-key out on 127.0.0.1")
    host = host.strip() or "127.0.0.1"
    if not is_loopback(host) and not api_key:
        raise SageError(
            f"--host {host} would expose the model beyond this machine without an API key",
            hint="pass --api-key KEY as well, or keep the default --host 127.0.0.1 and use an SSH tunnel "
            "(ssh -L 8000:127.0.0.1:8000 server)",
        )
    return host


def _pick_backend(backend: str) -> str:
    """`auto` → vllm (installed + GPU) or transformers; a named backend must be installed."""
    if backend == "auto":
        if vllm_available() and gpu_present():
            return "vllm"
        if transformers_serve_available():
            return "transformers"
        if vllm_available():
            raise SageError(
                "vLLM is installed but no NVIDIA GPU was found, and the transformers server is not installed",
                kind="serve",
                hint=f"{EXTRA_HINT['transformers']} to serve on this machine",
            )
        raise SageError(
            "no serving backend is installed",
            kind="serve",
            hint=f"{EXTRA_HINT['transformers']} (CPU or GPU), or {EXTRA_HINT['vllm']} (NVIDIA GPU)",
        )
    if backend == "vllm" and not vllm_available():
        raise SageError(
            "vLLM is not installed (no `vllm` program found)",
            kind="serve",
            hint=f"{EXTRA_HINT['vllm']} on a machine with an NVIDIA GPU, or use --backend transformers",
        )
    if backend == "transformers" and not transformers_serve_available():
        missing = [m for m in ("fastapi", "uvicorn", "pydantic", "openai") if find_spec(m) is None]
        raise SageError(
            f"the transformers server needs {', '.join(missing)}, which are not installed",
            kind="serve",
            hint=EXTRA_HINT["transformers"],
        )
    return backend


def _pick_port(host: str, port: int) -> int:
    """0 → a free port now; any other must be free on `host`."""
    if port == 0:
        return free_port("127.0.0.1" if is_wildcard(host) or host == "localhost" else host)
    problem = port_problem(host, port)
    if problem:
        raise SageError(problem[0], kind="serve", hint=problem[1])
    return port


def _check_merged(run: Path, merged: Path, backend: str) -> None:
    name = run.name
    if not (merged / "config.json").is_file():
        raise SageError(
            f"run {name} has no merged model yet",
            where=str(merged),
            kind="serve",
            hint=f"run `sage-ft-tui merge {name}` first"
            + ("" if backend == "transformers" else ", or serve --adapter"),
        )
    if not merged_ok(merged):
        raise SageError(
            f"{merged} did not pass the merge self-check (or has no merge_report.json)",
            kind="serve",
            hint=f"merge again: `sage-ft-tui merge {name} --force`",
        )


def _server_env(offline: bool = False, cfg=None) -> dict[str, str]:
    """Telemetry off always; offline when what is served is a local folder (or the base is local)."""
    env = {"PYTHONUNBUFFERED": "1", **TELEMETRY_OFF, **(OFFLINE if offline else {})}
    return {**env, **offline_env(cfg)} if cfg is not None else env


def _transformers_serve(
    run: Path,
    merged: Path,
    host: str,
    port: int,
    api_key: Optional[str],
    gpu_memory_utilization: Optional[float],
    device: str,
) -> ServeCommand:
    notes: list[str] = []
    if gpu_memory_utilization is not None:
        notes.append("--gpu-memory-utilization applies to vLLM only; ignored")
    if api_key:
        notes.append("the transformers server does not check API keys; the key is not enforced (loopback only)")
    env = _server_env(offline=True)  # a local folder: nothing to fetch
    cmd = transformers_command(str(merged), host=host, port=port, device=device)
    return ServeCommand(
        str(run), "transformers", "merged", str(merged), str(merged), host, port, cmd, env, api_key, False, notes
    )


def _vllm_serve(
    run: Path,
    cfg,
    mode: str,
    merged: Path,
    host: str,
    port: int,
    api_key: Optional[str],
    gpu_memory_utilization: Optional[float],
) -> ServeCommand:
    name = run.name
    env = _server_env(offline=mode == "merged", cfg=None if mode == "merged" else cfg)
    if api_key:
        env["VLLM_API_KEY"] = api_key
    if mode == "merged":
        cmd = vllm_command(
            str(merged), host=host, port=port, served_name=name, gpu_memory_utilization=gpu_memory_utilization
        )
        return ServeCommand(str(run), "vllm", mode, name, str(merged), host, port, cmd, env, api_key, bool(api_key), [])
    adapter, _ = find_adapter(run)
    tmpl = adapter / "chat_template.jinja"
    cmd = vllm_command(
        _base_ref(cfg),
        host=host,
        port=port,
        served_name=f"{name}-base",
        adapter=str(adapter),
        lora_name=name,
        max_lora_rank=vllm_lora_rank(_adapter_rank(adapter)),
        gpu_memory_utilization=gpu_memory_utilization,
        revision=cfg.model.revision,
        trust_remote_code=cfg.model.trust_remote_code,
        chat_template=str(tmpl) if tmpl.is_file() else None,
    )
    return ServeCommand(str(run), "vllm", mode, name, str(adapter), host, port, cmd, env, api_key, bool(api_key), [])


__all__ = [
    "BACKENDS",
    "EXTRA_HINT",
    "ServeCommand",
    "serve_command",
    "vllm_command",
    "transformers_command",
    "lora_module_arg",
    "vllm_lora_rank",
    "vllm_available",
    "transformers_serve_available",
]
