"""A stand-in OpenAI chat server that keeps what it is sent: a real HTTP server in its own
process (its own session, as `serve` starts one), answering /health, /v1/models and a
streamed /v1/chat/completions with a fixed reply, and writing every request body as one
JSON line to a file. `recorder()` starts it; `as_served()` writes the run's serve.json the
way `deploy.serve.start` does, so `endpoint_for_run`, the Chat screen, `serve --stop` and the
tests' cleanup sweep all treat it as the run's server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPLY = ["I see ", "a red square."]

SCRIPT = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port, log, model, reply = int(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def _json(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self._json({} if self.path == "/health" else {"object": "list", "data": [{"id": model, "object": "model"}]})
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(log, "ab") as fh:
            fh.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i, piece in enumerate(reply):
            last = i == len(reply) - 1
            chunk = {"id": "r", "object": "chat.completion.chunk", "created": 0, "model": model,
                     "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": "stop" if last else None}]}
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")

HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


@contextmanager
def recorder(folder: Path, model: str = "served") -> Iterator[dict]:
    """Start the stand-in; yields {port, pid, base_url, model, requests (a function)}; stopped on exit."""
    from sage_ft_tui.engine.deploy.net import free_port
    from sage_ft_tui.engine.proc import kill_group

    port, log = free_port(), Path(folder) / "requests.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(port), str(log), model, json.dumps(REPLY)],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the recording chat server did not start") from None
                time.sleep(0.05)

        def requests() -> list[dict]:
            return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []

        yield {
            "port": port,
            "pid": proc.pid,
            "base_url": f"http://127.0.0.1:{port}/v1",
            "model": model,
            "requests": requests,
        }
    finally:
        kill_group(proc.pid, grace=1.0)
        proc.wait(5)


def as_served(run: Path, server: dict, model_path: Path) -> None:
    """serve.json for `run` naming the stand-in, as `deploy.serve.start` writes it once ready."""
    from sage_ft_tui.engine.fsutil import atomic_write_json
    from sage_ft_tui.engine.proc import create_time
    from sage_ft_tui.engine.runs.layout import RunLayout

    url = f"http://127.0.0.1:{server['port']}"
    info = {
        "backend": "transformers",
        "mode": "merged",
        "model": server["model"],
        "model_path": str(model_path),
        "url": url,
        "local_url": url,
        "base_url": server["base_url"],
        "host": "127.0.0.1",
        "port": server["port"],
        "pid": server["pid"],
        "pgid": server["pid"],
        "create_time": create_time(server["pid"]),
        "state": "ready",
        "run": run.name,
    }
    atomic_write_json(RunLayout(run).serve_info, info, mode=0o600)
