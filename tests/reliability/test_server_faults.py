"""Server faults through the real `sage-ft-tui serve`, with a stand-in `transformers`
program (the backend is found next to the Python that runs the CLI, so a folder with a
`python` link and our `transformers` script puts the stand-in in place):

- port already in use (held by us before `serve`, and taken under the server at bind time)
- the server process dying while it starts, and after it was ready
- a start-up timeout, with a server that ignores SIGTERM and has a child of its own

Each: one clear error line with the server log's last lines, no serve.json left, and no
process of the server's group left behind."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.runs.create import create_run

from .conftest import REPO, group_alive, one_error_line, wait_until

FAKE = r'''#!{python}
"""Stand-in for `transformers serve MODEL --host H --port P ...`; FAKE_SERVE_MODE picks the fault."""
import http.server, json, os, signal, subprocess, sys, time
args = sys.argv[1:]
model, host, port = args[1], args[args.index("--host") + 1], int(args[args.index("--port") + 1])
mode = os.environ.get("FAKE_SERVE_MODE", "ok")
print(f"INFO loading {{model}}", flush=True)
with open(os.environ["FAKE_SERVE_PIDS"], "a") as fh:
    fh.write(f"{{os.getpid()}}\n")
if mode == "crash":
    print("INFO reading safetensors", flush=True)
    print("Traceback (most recent call last):", flush=True)
    print('  File "serve.py", line 1, in <module>', flush=True)
    print("RuntimeError: the weights file is corrupt (stand-in)", flush=True)
    sys.exit(1)
if mode == "bind":
    print(f"ERROR: [Errno 98] error while attempting to bind on address ('{{host}}', {{port}}): address already in use", flush=True)
    sys.exit(1)
if mode == "hang":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    with open(os.environ["FAKE_SERVE_PIDS"], "a") as fh:
        fh.write(f"{{child.pid}}\n")
    print("INFO still loading the model (stand-in that never gets ready)", flush=True)
    time.sleep(600)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"{{}}" if self.path == "/health" else json.dumps({{"data": [{{"id": model}}]}}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

srv = http.server.HTTPServer((host, port), H)
srv.timeout = 0.2
print("INFO Uvicorn running (stand-in)", flush=True)
until = time.time() + float(os.environ.get("FAKE_SERVE_DIE_AFTER", "600"))
while time.time() < until:
    srv.handle_request()
print("Killed (stand-in: the server died)", flush=True)
os._exit(137)
'''


@pytest.fixture
def stand_in(tmp_path) -> dict:
    """A bin folder whose `python` runs the CLI and whose `transformers` is the stand-in."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python").symlink_to(sys.executable)
    fake = bindir / "transformers"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    pids = tmp_path / "server_pids"
    pids.write_text("")
    # The symlinked interpreter no longer sits in a virtual environment (no pyvenv.cfg next to
    # it), so it would start without the venv's packages: hand it this process's import path.
    path = os.pathsep.join([str(REPO)] + [p for p in sys.path if p])
    return {"python": str(bindir / "python"), "pids": pids, "pythonpath": path}


@pytest.fixture
def merged_run(sage_home, tiny_model) -> Path:
    run = create_run(RunConfig.from_dict({"name": "srv", "task": "qa", "data": {"paths": ["x"]}}), prepare=False)
    merged = run / "merged"
    merged.mkdir()
    shutil.copy2(tiny_model / "config.json", merged / "config.json")
    (merged / "merge_report.json").write_text(json.dumps({"self_check": {"passed": True}}))
    return run


def serve(stand_in, *args, mode="ok", env=None, timeout=120):
    import subprocess

    e = {
        **os.environ,
        "PYTHONPATH": stand_in["pythonpath"],
        "FAKE_SERVE_MODE": mode,
        "FAKE_SERVE_PIDS": str(stand_in["pids"]),
        **(env or {}),
    }
    return subprocess.run(
        [stand_in["python"], "-m", "sage_ft_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=e,
        stdin=subprocess.DEVNULL,
    )


def _no_orphans(stand_in) -> None:
    import psutil

    pids = [int(x) for x in stand_in["pids"].read_text().split()]
    assert pids, "the stand-in never started"

    def gone():
        return all(not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE for p in pids)

    try:
        wait_until(gone, 20, f"server processes {pids} to be gone")
    finally:
        for p in pids:
            try:
                os.kill(p, 9)
            except OSError:
                pass


SERVE_LINES = ("starting ", "  last lines of the server log:", "  | ")


def _tail_shown(p, *lines) -> None:
    assert "last lines of the server log" in p.stderr, p.stderr
    for ln in lines:
        assert f"  | {ln}" in p.stderr, p.stderr


def test_port_already_in_use_is_refused_before_starting(stand_in, merged_run):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = serve(stand_in, "serve", "srv", "--backend", "transformers", "--port", str(port))
    line = one_error_line(p, SERVE_LINES)
    assert f"port {port} on 127.0.0.1 is already in use" in line and "--port 0" in line
    assert stand_in["pids"].read_text() == "" and not (merged_run / "serve.json").exists()


def test_port_taken_at_bind_time_names_the_port(stand_in, merged_run):
    p = serve(stand_in, "serve", "srv", "--backend", "transformers", "--port", "0", mode="bind")
    line = one_error_line(p, SERVE_LINES)
    assert "is already in use" in line and "exited with code 1" in line and "serve.log" in line
    _tail_shown(p, "INFO loading")
    assert not (merged_run / "serve.json").exists()
    _no_orphans(stand_in)


def test_server_dying_while_starting_shows_the_log(stand_in, merged_run):
    p = serve(stand_in, "serve", "srv", "--backend", "transformers", "--port", "0", mode="crash")
    line = one_error_line(p, SERVE_LINES)
    assert "exited with code 1 while starting" in line and "RuntimeError: the weights file is corrupt" in line
    _tail_shown(p, "INFO reading safetensors")
    assert "  |   File " not in p.stderr  # traceback frames stay in the log, not on screen
    assert not (merged_run / "serve.json").exists()
    _no_orphans(stand_in)


def test_startup_timeout_kills_the_whole_group(stand_in, merged_run):
    t0 = time.time()
    p = serve(stand_in, "serve", "srv", "--backend", "transformers", "--port", "0", "--timeout", "3", mode="hang")
    line = one_error_line(p, SERVE_LINES)
    assert "was not ready within 3s" in line and "--timeout" in line
    _tail_shown(p, "INFO still loading the model (stand-in that never gets ready)")
    assert not (merged_run / "serve.json").exists()
    _no_orphans(stand_in)  # the server ignored SIGTERM, and its child too: both were killed
    assert time.time() - t0 < 60


def test_server_dying_after_ready_is_reported_and_cleaned_up(stand_in, merged_run):
    p = serve(
        stand_in,
        "serve",
        "srv",
        "--backend",
        "transformers",
        "--port",
        "0",
        "--json",
        mode="ok",
        env={"FAKE_SERVE_DIE_AFTER": "4"},
    )
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout.strip().splitlines()[-1])
    assert info["host"] == "127.0.0.1" and info["api_key"] is None
    wait_until(lambda: group_alive(info["pgid"]) == [], 30, "the stand-in to die")
    st = serve(stand_in, "serve", "--status", "srv", "--json")
    assert st.returncode == 0 and "dead (server process gone)" in st.stdout, st.stdout + st.stderr
    chat = serve(stand_in, "chat", "srv")
    line = one_error_line(chat)
    assert "server of run srv is gone" in line and "sage-ft-tui serve srv" in line and "serve.log" in line, line
    stop = serve(stand_in, "serve", "--stop", "srv")
    assert stop.returncode == 0 and "was not running" in stop.stdout, stop.stdout + stop.stderr
    assert not (merged_run / "serve.json").exists()
    _no_orphans(stand_in)
