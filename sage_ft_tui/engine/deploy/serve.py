"""A run's model server as a process: start what a `ServeCommand` describes detached (its own
session and process group, so a dropped SSH connection does not end it; log in <run>/serve.log,
described by <run>/serve.json while it runs), wait until /health and /v1/models answer, explain
a server that died while starting, stop the whole process group, list the servers we started.
Nothing is ever installed at run time. This module imports neither torch nor transformers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

from sage_ft_tui.engine.deploy.net import http_get, port_free
from sage_ft_tui.engine.deploy.serve_command import EXTRA_HINT, ServeCommand
from sage_ft_tui.engine.deploy.serve_info import public, read_serve, refuse_if_served, server_alive, write_serve
from sage_ft_tui.engine.errors import SageError, clip
from sage_ft_tui.engine.paths import resolve_run, runs_home
from sage_ft_tui.engine.proc import create_time, group_members, kill_group, spawn_detached
from sage_ft_tui.engine.runs.layout import RunLayout

START_TIMEOUT = {"transformers": 180.0, "vllm": 900.0}


class ServeError(SageError):
    """A SageError that carries the last lines of the server's log."""

    def __init__(self, message: str, *, hint: str = "", log_tail: Optional[list[str]] = None, where=None):
        super().__init__(message, hint=hint, kind="serve", where=where)
        self.log_tail = list(log_tail or [])


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


def start(
    command: ServeCommand, *, timeout: Optional[float] = None, on_wait: Optional[Callable[[float], None]] = None
) -> dict:
    """Start the server detached, wait until /health and /v1/models answer; returns serve.json."""
    run = resolve_run(command.run)
    refuse_if_served(run)

    exe = command.cmd[0]
    if not (os.path.isabs(exe) and os.access(exe, os.X_OK)) and shutil.which(exe) is None:
        raise SageError(
            f"the {command.backend} program {exe!r} was not found",
            kind="serve",
            hint=EXTRA_HINT.get(command.backend, ""),
        )
    log_path = RunLayout(run).serve_log
    with open(log_path, "ab") as fh:
        offset = fh.tell()
        fh.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} sage-ft-tui serve: {' '.join(command.cmd)}\n".encode())
        fh.flush()
        env = {**os.environ, **command.env}
        try:
            proc = spawn_detached(command.cmd, cwd=run, log=fh, env=env)
        except OSError as e:
            raise SageError(
                f"cannot start {exe}: {e.strerror}", kind="serve", hint=EXTRA_HINT.get(command.backend, "")
            ) from None
    ctime = create_time(proc.pid)
    t0 = time.time()
    info = {
        "backend": command.backend,
        "mode": command.mode,
        "model": command.model,
        "model_path": command.model_path,
        "url": command.url,
        "local_url": command.local_url,
        "base_url": command.local_url + "/v1",
        "host": command.host,
        "port": command.port,
        "pid": proc.pid,
        "pgid": proc.pid,
        "create_time": ctime,
        "log": str(log_path),
        "log_offset": offset,
        "state": "starting",
        "started": t0,
        "api_key": command.api_key,
        "api_key_enforced": command.api_key_enforced,
        "cmd": command.cmd,
        "host_name": socket.gethostname(),
        "run": run.name,
        "notes": command.notes,
    }
    write_serve(run, info)
    limit = timeout if timeout is not None else START_TIMEOUT.get(command.backend, 300.0)
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
    write_serve(run, info)
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
        code, _ = http_get(base + "/health", key, timeout=2.0)
        if code == 200:
            code, body = http_get(base + "/v1/models", key, timeout=5.0)
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
            code, _ = http_get(info["local_url"] + "/health", info.get("api_key"), timeout=2.0)
            state = (
                "ready"
                if code == 200
                else (
                    "starting" if info.get("state") == "starting" else f"not answering (/health: {code or 'no reply'})"
                )
            )
        out.append({**public(info), "run": r.name, "state": state})
    return out


__all__ = ["ServeError", "start", "wait_ready", "stop", "stopped_text", "status", "log_tail", "readable_tail"]
