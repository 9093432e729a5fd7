"""Serve a run as an OpenAI-compatible endpoint, through a real server program.

    vLLM          `vllm serve` — the LoRA adapter without merging (--enable-lora
                  --lora-modules NAME=PATH), or the merged model. Chosen by `auto` when vLLM
                  is installed and an NVIDIA GPU is present. Enforces --api-key.
    transformers  `transformers serve <merged folder>` (extra `serve`). It has no API-key
                  check, so it is only ever bound to a loopback address.

The server runs detached (its own session and process group, so a dropped SSH
connection does not end it), logs to <run>/serve.log, and is described by
<run>/serve.json while it runs. `stop` ends the whole process group. Nothing is ever
installed at run time. This module imports neither torch nor transformers.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Callable, Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.deploy.merge import default_output, find_adapter, merged_ok
from sage_ft_tui.engine.errors import SageError, clip
from sage_ft_tui.engine.fsutil import atomic_write_json, read_json
from sage_ft_tui.engine.hardware.probe import snapshot
from sage_ft_tui.engine.models.tiny import is_tiny, resolve_model_name
from sage_ft_tui.engine.paths import resolve_run, runs_home
from sage_ft_tui.engine.proc import create_time, group_members, kill_group, pid_alive, spawn_detached
from sage_ft_tui.engine.runs.layout import RunLayout

BACKENDS = ("auto", "vllm", "transformers")
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vllm.config.lora.MaxLoRARanks
START_TIMEOUT = {"transformers": 180.0, "vllm": 900.0}
EXTRA_HINT = {"vllm": "pip install 'sage-ft-tui[vllm]'", "transformers": "pip install 'sage-ft-tui[serve]'"}


class ServeError(SageError):
    """A SageError that carries the last lines of the server's log."""

    def __init__(self, message: str, *, hint: str = "", log_tail: Optional[list[str]] = None, where=None):
        super().__init__(message, hint=hint, kind="serve", where=where)
        self.log_tail = list(log_tail or [])


# ---- small helpers ------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    h = host.strip().strip("[]").lower()
    if h in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _is_wildcard(host: str) -> bool:
    return host.strip().strip("[]") in ("0.0.0.0", "::", "")


def _url_host(host: str) -> str:
    h = host.strip().strip("[]")
    return f"[{h}]" if ":" in h else h


def local_url(host: str, port: int) -> str:
    """Where a client on this machine reaches the server."""
    if _is_wildcard(host):
        host = "::1" if ":" in host else "127.0.0.1"
    return f"http://{_url_host(host)}:{port}"


def port_problem(host: str, port: int) -> Optional[tuple[str, str]]:
    """None when we may bind host:port; else (what is wrong, what to do).

    In use (EADDRINUSE), not permitted (EACCES: a port below 1024 without root or
    CAP_NET_BIND_SERVICE) and an address that is not this machine's (EADDRNOTAVAIL) are
    different problems with different fixes."""
    import errno

    fam = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    h = host.strip("[]")
    if h == "localhost":
        h = "127.0.0.1"
    try:
        s = socket.socket(fam, socket.SOCK_STREAM)
    except OSError as e:
        return f"cannot open a socket for {host}: {e.strerror}", "use --host 127.0.0.1"
    with s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind((h, port))
        except PermissionError:
            return (
                f"port {port} on {host} may not be bound by this user (permission denied; ports below 1024 "
                "need root or CAP_NET_BIND_SERVICE)",
                "choose a port of 1024 or above (e.g. --port 8000, or --port 0 for any free one)",
            )
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is already in use",
                    "choose another --port (or --port 0 for any free one); `sage-ft-tui serve --status` lists our "
                    "servers",
                )
            if e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                return (
                    f"{host} is not an address of this machine (cannot bind to it)",
                    "use --host 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)",
                )
            if isinstance(e, socket.gaierror):
                return f"--host {host} is not a known host name or address", "use --host 127.0.0.1"
            return f"cannot bind {host}:{port}: {e.strerror or e}", "choose another --host or --port"
    return None


def port_free(host: str, port: int) -> bool:
    return port_problem(host, port) is None


def free_port(host: str = "127.0.0.1") -> int:
    fam = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host.strip("[]") if host != "localhost" else "127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> Optional[str]:
    """An executable of this Python environment first, then PATH."""
    here = Path(sys.executable).parent / name
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which(name)


def vllm_available() -> bool:
    return _bin("vllm") is not None


def transformers_serve_available() -> bool:
    return all(find_spec(m) is not None for m in ("fastapi", "uvicorn", "pydantic", "openai", "transformers"))


def gpu_present() -> bool:
    try:
        return snapshot().has_gpu
    except Exception:
        return False


def log_tail(run: Path, n: int = 15, start: int = 0) -> list[str]:
    p = RunLayout(run).serve_log
    try:
        with open(p, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            begin = max(start, size - 64 * 1024)
            fh.seek(begin)
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    lines = [ln.rstrip() for ln in data.replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-n:]


def _http_get(url: str, api_key: Optional[str], timeout: float = 3.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (urllib.error.URLError, OSError, TimeoutError):
        return 0, b""


# ---- planning: which backend, which model, which command -------------------------------


@dataclass
class ServePlan:
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
        if _is_wildcard(self.host):
            return f"http://{socket.gethostname()}:{self.port}"
        return f"http://{_url_host(self.host)}:{self.port}"

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
        exe or _bin("vllm") or "vllm",
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
        exe or _bin("transformers") or "transformers",
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


def plan_serve(
    run: Path | str,
    *,
    backend: str = "auto",
    mode: Optional[str] = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: Optional[str] = None,
    gpu_memory_utilization: Optional[float] = None,
    device: str = "auto",
) -> ServePlan:
    """Check everything that can be checked before starting anything."""
    run = resolve_run(run, "serve it")
    _refuse_if_served(run)
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
        return _transformers_plan(run, merged, host, port, api_key, gpu_memory_utilization, device)
    return _vllm_plan(run, cfg, mode, merged, host, port, api_key, gpu_memory_utilization)


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
        return free_port("127.0.0.1" if _is_wildcard(host) or host == "localhost" else host)
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
    from sage_ft_tui.engine.offline import OFFLINE, TELEMETRY_OFF, offline_env

    env = {"PYTHONUNBUFFERED": "1", **TELEMETRY_OFF, **(OFFLINE if offline else {})}
    return {**env, **offline_env(cfg)} if cfg is not None else env


def _transformers_plan(
    run: Path,
    merged: Path,
    host: str,
    port: int,
    api_key: Optional[str],
    gpu_memory_utilization: Optional[float],
    device: str,
) -> ServePlan:
    notes: list[str] = []
    if gpu_memory_utilization is not None:
        notes.append("--gpu-memory-utilization applies to vLLM only; ignored")
    if api_key:
        notes.append("the transformers server does not check API keys; the key is not enforced (loopback only)")
    env = _server_env(offline=True)  # a local folder: nothing to fetch
    cmd = transformers_command(str(merged), host=host, port=port, device=device)
    return ServePlan(
        str(run), "transformers", "merged", str(merged), str(merged), host, port, cmd, env, api_key, False, notes
    )


def _vllm_plan(
    run: Path,
    cfg,
    mode: str,
    merged: Path,
    host: str,
    port: int,
    api_key: Optional[str],
    gpu_memory_utilization: Optional[float],
) -> ServePlan:
    name = run.name
    env = _server_env(offline=mode == "merged", cfg=None if mode == "merged" else cfg)
    if api_key:
        env["VLLM_API_KEY"] = api_key
    if mode == "merged":
        cmd = vllm_command(
            str(merged), host=host, port=port, served_name=name, gpu_memory_utilization=gpu_memory_utilization
        )
        return ServePlan(str(run), "vllm", mode, name, str(merged), host, port, cmd, env, api_key, bool(api_key), [])
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
    return ServePlan(str(run), "vllm", mode, name, str(adapter), host, port, cmd, env, api_key, bool(api_key), [])


# ---- serve.json -------------------------------------------------------------------------


def read_serve(run: Path) -> Optional[dict]:
    info = read_json(RunLayout(run).serve_info, None)
    return info if isinstance(info, dict) else None


def server_alive(info: Optional[dict]) -> bool:
    if not info:
        return False
    return pid_alive(info.get("pid"), info.get("create_time"))


def _write_serve(run: Path, info: dict) -> None:
    atomic_write_json(RunLayout(run).serve_info, info, mode=0o600)  # may hold the API key


def public(info: dict) -> dict:
    """serve.json without secrets, for printing."""
    out = {k: v for k, v in info.items() if k != "api_key"}
    out["api_key"] = "set" if info.get("api_key") else None
    return out


# ---- start / wait / stop -------------------------------------------------------------------


def _refuse_if_served(run: Path) -> None:
    old = read_serve(run)
    if old and server_alive(old):
        raise SageError(
            f"run {run.name} is already being served at {old.get('url')} (pid {old.get('pid')})",
            kind="serve",
            hint=f"use it, or stop it first: `sage-ft-tui serve --stop {run.name}`",
        )
    if old:
        (RunLayout(run).serve_info).unlink(missing_ok=True)  # stale: its server is gone


def start(
    plan: ServePlan, *, timeout: Optional[float] = None, on_wait: Optional[Callable[[float], None]] = None
) -> dict:
    """Start the server detached, wait until /health and /v1/models answer; returns serve.json."""
    run = resolve_run(plan.run)
    _refuse_if_served(run)

    exe = plan.cmd[0]
    if not (os.path.isabs(exe) and os.access(exe, os.X_OK)) and shutil.which(exe) is None:
        raise SageError(
            f"the {plan.backend} program {exe!r} was not found", kind="serve", hint=EXTRA_HINT.get(plan.backend, "")
        )
    log_path = RunLayout(run).serve_log
    with open(log_path, "ab") as fh:
        offset = fh.tell()
        shown = [c if not c.startswith("{") else c for c in plan.cmd]
        fh.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} sage-ft-tui serve: {' '.join(shown)}\n".encode())
        fh.flush()
        env = {**os.environ, **plan.env}
        try:
            proc = spawn_detached(plan.cmd, cwd=run, log=fh, env=env)
        except OSError as e:
            raise SageError(
                f"cannot start {exe}: {e.strerror}", kind="serve", hint=EXTRA_HINT.get(plan.backend, "")
            ) from None
    ctime = create_time(proc.pid)
    t0 = time.time()
    info = {
        "backend": plan.backend,
        "mode": plan.mode,
        "model": plan.model,
        "model_path": plan.model_path,
        "url": plan.url,
        "local_url": plan.local_url,
        "base_url": plan.local_url + "/v1",
        "host": plan.host,
        "port": plan.port,
        "pid": proc.pid,
        "pgid": proc.pid,
        "create_time": ctime,
        "log": str(log_path),
        "log_offset": offset,
        "state": "starting",
        "started": t0,
        "api_key": plan.api_key,
        "api_key_enforced": plan.api_key_enforced,
        "cmd": plan.cmd,
        "host_name": socket.gethostname(),
        "run": run.name,
        "notes": plan.notes,
    }
    _write_serve(run, info)
    limit = timeout if timeout is not None else START_TIMEOUT.get(plan.backend, 300.0)
    try:
        wait_ready(run, info, proc=proc, timeout=limit, on_wait=on_wait)
    except BaseException:
        kill_group(proc.pid, grace=5.0)
        try:
            proc.wait(timeout=5)
        except Exception:
            pass
        (RunLayout(run).serve_info).unlink(missing_ok=True)
        raise
    info.update(state="ready", ready=time.time(), startup_s=round(time.time() - t0, 3))
    _write_serve(run, info)
    return info


_FRAME = re.compile(r"^(Traceback \(most recent call last\):|\s+File \"|\s+[\^~]+\s*$|\s{4,}\S)")
_EXC = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)):\s*(.*)$")


def readable_tail(lines: list[str], n: int = 12) -> list[str]:
    """The log's last lines without Python traceback frames (the full log keeps them)."""
    return [ln for ln in lines if not _FRAME.match(ln)][-n:]


def _last_exception(lines: list[str]) -> Optional[str]:
    for ln in reversed(lines):
        m = _EXC.match(ln.strip())
        if m:
            return clip(f"{m.group(1)}: {m.group(3)}", 240)
    return None


def _diagnose(tail: list[str], info: dict) -> Optional[tuple[str, str]]:
    text = "\n".join(tail).lower()
    if "errno 13" in text and "bind" in text:
        return (
            f"port {info['port']} on {info['host']} may not be bound by this user (permission denied)",
            "choose a port of 1024 or above (or --port 0 for any free one)",
        )
    if "address already in use" in text or "errno 98" in text:
        return (
            f"port {info['port']} on {info['host']} is already in use",
            "choose another --port (or --port 0 for any free one)",
        )
    if "out of memory" in text:
        return (
            "the server ran out of GPU memory while starting",
            "lower --gpu-memory-utilization, serve a smaller model, or free the GPU",
        )
    if "no module named" in text:
        mod = next((ln for ln in tail if "No module named" in ln), "").split("No module named")[-1].strip(" '\"")
        return (f"the server is missing the Python module {mod!r}", EXTRA_HINT.get(info["backend"], ""))
    return None


def wait_ready(
    run: Path,
    info: dict,
    *,
    proc: Optional[subprocess.Popen] = None,
    timeout: float = 180.0,
    on_wait: Optional[Callable[[float], None]] = None,
) -> None:
    base = info["local_url"]
    key = info.get("api_key")
    deadline = time.time() + timeout
    t0 = time.time()
    while True:
        rc = proc.poll() if proc is not None else (None if server_alive(info) else -1)
        if rc is not None:
            time.sleep(0.2)
            raw = log_tail(run, 60, start=int(info.get("log_offset") or 0))
            tail = readable_tail(raw)
            diag = _diagnose(raw, info)
            if diag:
                raise ServeError(
                    diag[0] + f" (the {info['backend']} server exited with code {rc})",
                    hint=f"{diag[1]}; full log: {info['log']}",
                    log_tail=tail,
                )
            exc = _last_exception(raw)
            raise ServeError(
                f"the {info['backend']} server exited with code {rc} while starting" + (f" ({exc})" if exc else ""),
                hint=f"see the log's last lines below; full log: {info['log']}",
                log_tail=tail,
            )
        code, _ = _http_get(base + "/health", key, timeout=2.0)
        if code == 200:
            code, body = _http_get(base + "/v1/models", key, timeout=5.0)
            if code == 200:
                try:
                    ids = [m.get("id") for m in json.loads(body or b"{}").get("data", [])]
                except ValueError:
                    ids = []
                if info["model"] in ids:
                    return
                if time.time() > deadline:
                    raise ServeError(
                        f"the server answers but does not list the model {info['model']!r} (it lists {ids})",
                        hint=f"see {info['log']}",
                        log_tail=log_tail(run, 15, int(info.get("log_offset") or 0)),
                    )
            elif code in (401, 403):
                raise ServeError("the server refused our API key on /v1/models", hint=f"see {info['log']}")
        if time.time() > deadline:
            tail = readable_tail(log_tail(run, 60, start=int(info.get("log_offset") or 0)))
            raise ServeError(
                f"the {info['backend']} server was not ready within {timeout:.0f}s",
                where=info["local_url"],
                hint=f"give it longer with --timeout, or see the log's last lines below; full log: {info['log']}",
                log_tail=tail,
            )
        if on_wait:
            on_wait(time.time() - t0)
        time.sleep(0.25)


def stop(run: Path | str, *, grace: float = 10.0) -> dict:
    run = resolve_run(run)
    info = read_serve(run)
    if not info:
        raise SageError(
            f"run {run.name} is not being served (no serve.json)",
            kind="serve",
            hint="`sage-ft-tui serve --status` lists running servers",
        )
    alive = server_alive(info)
    pgid = int(info.get("pgid") or info.get("pid") or 0)
    left: list[int] = []
    if alive and pgid:
        if not kill_group(pgid, grace=grace):
            left = group_members(pgid)
    elif pgid and group_members(pgid) and info.get("create_time") is None:
        kill_group(pgid, grace=grace)
    (RunLayout(run).serve_info).unlink(missing_ok=True)
    if left:
        raise SageError(
            f"processes {left} of the server did not stop",
            kind="serve",
            hint=f"kill them by hand: kill -9 {' '.join(map(str, left))}",
        )
    res = {**public(info), "state": "stopped" if alive else "was not running"}
    port = info.get("port")
    if isinstance(port, int) and port > 0:
        res["port_freed"] = port_free(str(info.get("host") or "127.0.0.1"), port)
    return res


def stopped_text(res: dict) -> str:
    """Stop's result in a few words, e.g. "stopped · port 8000 freed" (the CLI and the Serve screen)."""
    text = str(res.get("state") or "stopped")
    if "port_freed" in res:
        port = res.get("port")
        text += f" · port {port} freed" if res["port_freed"] else f" · port {port} still in use (another program?)"
    return text


def status(run: Optional[Path | str] = None, *, probe: bool = True) -> list[dict]:
    """Every server we started (or the one of `run`), with a live state."""
    if run is not None:
        runs = [resolve_run(run)]
    else:
        home = runs_home()
        runs = sorted(p for p in home.iterdir() if (RunLayout(p).serve_info).is_file()) if home.is_dir() else []
    out = []
    for r in runs:
        info = read_serve(r)
        if not info:
            if run is not None:
                out.append({"run": r.name, "state": "not serving"})
            continue
        state = info.get("state", "?")
        if not server_alive(info):
            state = "dead (server process gone)"
        elif probe:
            code, _ = _http_get(info["local_url"] + "/health", info.get("api_key"), timeout=2.0)
            state = (
                "ready"
                if code == 200
                else (
                    "starting" if info.get("state") == "starting" else f"not answering (/health: {code or 'no reply'})"
                )
            )
        out.append({**public(info), "run": r.name, "state": state})
    return out


__all__ = [
    "ServePlan",
    "ServeError",
    "plan_serve",
    "start",
    "stop",
    "stopped_text",
    "status",
    "read_serve",
    "server_alive",
    "vllm_command",
    "transformers_command",
    "lora_module_arg",
    "vllm_lora_rank",
    "is_loopback",
    "log_tail",
    "free_port",
    "port_free",
    "port_problem",
]
