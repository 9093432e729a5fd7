"""The after-training job screens while a job runs and once it is done: Evaluate offers Cancel
while it runs; Export's note follows the chosen format and "done" comes with its details;
Serve offers Stop while a start waits for the server, and shows a running server's own port
when reopened. Real processes: the eval job, and a small HTTP server standing in for a model
server (a real process in its own group, described by a real serve.json)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from . import factory
from .conftest import footer_keys, wait_for

HTTP = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = sys.argv[2] == "ready"
        self.send_response(200 if ok else 503); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server(run, state: str) -> tuple[subprocess.Popen, int]:
    """A process answering /health (200 when `state` is ready, 503 while starting) and the
    serve.json the engine writes for it."""
    from sage_ft_tui.engine.deploy.serve_info import write_serve
    from sage_ft_tui.engine.proc import create_time

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", HTTP, str(port), state], start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    write_serve(
        run,
        {
            "backend": "transformers",
            "mode": "merged",
            "model": run.name,
            "url": url,
            "local_url": url,
            "base_url": url + "/v1",
            "host": "127.0.0.1",
            "port": port,
            "pid": proc.pid,
            "pgid": proc.pid,
            "create_time": create_time(proc.pid),
            "state": state,
            "started": time.time(),
            "api_key": None,
            "api_key_enforced": False,
            "run": run.name,
        },
    )
    return proc, port


async def test_evaluate_offers_cancel_while_it_runs(world):
    from sage_ft_tui.engine.runs.layout import RunLayout
    from sage_ft_tui.tui.routes import ROUTES

    run = world / "runs" / factory.DONE
    rows = RunLayout(run).eval_data
    rows.parent.mkdir(parents=True, exist_ok=True)
    rows.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n')
    app = factory.make_app("home", world)
    app.live = True  # the job runs in its worker, as in the app
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(ROUTES["eval"][0](str(run)))
        await pilot.pause()
        assert "Cancel" not in {d for d, _, _ in footer_keys(app.screen)}
        await pilot.press("e")
        keys = footer_keys(app.screen)
        assert "Cancel" in {d for d, _, _ in keys} and all(i for _, _, i in keys), keys
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not app.screen.running, timeout=60)
        assert "Cancel" not in {d for d, _, _ in footer_keys(app.screen)}


async def test_export_note_follows_the_choice_and_done_comes_with_details(world):
    from textual.widgets import Select

    from sage_ft_tui.tui.routes import ROUTES
    from sage_ft_tui.tui.screens.deploy.export import ExportFinished, ExportProgress

    app = factory.make_app("home", world)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(ROUTES["export"][0](str(world / "runs" / factory.DONE)))
        await pilot.pause()
        screen = app.screen
        note = lambda: str(screen.query_one("#exp-result").render())  # noqa: E731
        assert "q8_0" in note() and "q4_k_m" not in note(), note()
        screen.query_one("#exp-choice", Select).value = "gguf:f16"
        await pilot.pause()
        assert "f16" in note() and "q4_k_m" not in note(), note()
        screen.query_one("#exp-choice", Select).value = "gguf:q4_k_m"
        await pilot.pause()
        assert "q4_k_m" in note()
        # the job's records as they arrive: written first, "done" only with what was written
        screen.post_message(ExportProgress("done", {"path": "/x/run-q8_0.gguf"}))
        await pilot.pause()
        stage = str(screen.query_one("#exp-stage").render())
        assert "done" not in stage and "run-q8_0.gguf" in stage, stage
        entry = {"format": "gguf", "path": "/x/run-q8_0.gguf", "bytes": 1024, "quant": "q8_0", "arch": "llama"}
        screen.post_message(ExportFinished({"export": entry}, None))
        await pilot.pause()
        assert str(screen.query_one("#exp-stage").render()) == "done"
        assert "Exported" in str(screen.query_one("#exp-result").render())


async def test_serve_shows_a_running_servers_port_and_stop_while_starting(world):
    from textual.widgets import Input

    from sage_ft_tui.engine.deploy.serve_info import read_serve
    from sage_ft_tui.tui.routes import ROUTES
    from sage_ft_tui.tui.screens.deploy.job import JobScreen

    run = world / "runs" / factory.DONE
    proc, port = _server(run, "ready")
    try:
        app = factory.make_app("home", world)
        app.live = True  # the screen polls the server, as in the app
        async with app.run_test(size=(100, 30)) as pilot:
            app.push_screen(ROUTES["serve"][0](str(run)))
            assert isinstance(app.screen, JobScreen)  # the after-training screens' one job base, Serve too
            await wait_for(pilot, lambda: app.screen.row.get("state") == "ready", timeout=30)
            await pilot.pause()
            assert app.screen.query_one("#serve-port", Input).value == str(port)
    finally:
        proc.terminate()
        proc.wait(10)
    run.joinpath("serve.json").unlink(missing_ok=True)

    proc, port = _server(run, "starting")  # up, not answering yet: a start waits for it
    try:
        app = factory.make_app("home", world)
        app.live = True
        async with app.run_test(size=(100, 30)) as pilot:
            app.push_screen(ROUTES["serve"][0](str(run)))
            screen = app.screen
            await wait_for(pilot, lambda: "pid" in screen.row, timeout=30)
            screen.running = True  # what Start sets while its job waits for /health
            screen.refresh_bindings()
            await pilot.pause()
            keys = {d for d, _, _ in footer_keys(screen)}
            assert "Stop server" in keys and "Start server" not in keys, keys
            await pilot.press("ctrl+x")
            await wait_for(pilot, lambda: proc.poll() is not None and not read_serve(run), timeout=30)
            assert screen.stopped_start
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
