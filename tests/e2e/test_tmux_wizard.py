"""The installed binary in tmux at 80×24, by keys only (each shown on screen before it is
pressed), offline: Home → Quickstart with the default choices → training completes →
Evaluate (base vs tuned on the rows held out by default) → merge → serve → a chat reply
arrives → stop → Export (GGUF) → a second run (the demo) → Compare the two; no process is
left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TMUX = shutil.which("tmux")
BIN = shutil.which("sage-ft-tui")

pytestmark = [
    pytest.mark.train,
    pytest.mark.tmux,
    pytest.mark.timeout(600),
    pytest.mark.skipif(TMUX is None, reason="tmux is not installed"),
    pytest.mark.skipif(BIN is None, reason="the sage-ft-tui console script is not installed"),
]


class Pane:
    def __init__(self, name: str, socket: Path):
        self.name, self.socket = name, str(socket)

    def tmux(self, *args: str) -> str:
        out = subprocess.run([TMUX, "-S", self.socket, *args], capture_output=True, text=True, timeout=30)
        return out.stdout

    def keys(self, *keys: str) -> None:
        for k in keys:
            self.tmux("send-keys", "-t", self.name, k)
            time.sleep(0.15)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.name, "-l", text)
        time.sleep(0.2)

    def alive(self) -> bool:
        """The session lives as long as its one command (the app) runs."""
        out = subprocess.run([TMUX, "-S", self.socket, "has-session", "-t", self.name], capture_output=True)
        return out.returncode == 0

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def wait(self, *needles: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if any(n in text for n in needles):
                return text
            time.sleep(0.3)
        raise AssertionError(f"none of {needles} on screen after {timeout:.0f}s:\n{text}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _ours(home: Path) -> list[int]:
    """Live processes started with this test's runs folder in their environment: the app and
    everything it launched (worker, merge, serve, the server) inherit it."""
    marker = f"SAGE_FT_HOME={home}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            found = marker in (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        if found and _alive(int(proc.name)):
            pids.append(int(proc.name))
    return pids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "(gone)"


def _stop_servers(home: Path) -> None:
    """Whatever happened on screen, no server of this test outlives it."""
    from sage_ft_tui.engine.deploy.serve import stop
    from sage_ft_tui.engine.deploy.serve_info import read_serve

    for run in home.iterdir() if home.is_dir() else []:
        if read_serve(run):
            try:
                stop(run, grace=5)
            except Exception:  # already gone
                pass


def test_quickstart_to_chat_by_keys_at_80x24(tmp_path, sage_home, sample_data, tiny_model):
    from sage_ft_tui.engine.deploy.serve_info import read_serve

    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(sample_data["instruction"], project / "train.jsonl")
    hf = tmp_path / "hf"  # an empty cache: nothing downloaded, so Quickstart must pick tiny-demo
    hf.mkdir()
    env = {
        "PYTHONPATH": str(REPO),  # the binary runs this checkout
        "SAGE_FT_HOME": str(sage_home),
        "HF_HUB_CACHE": str(hf),
        "HF_HUB_OFFLINE": "1",
        "SAGE_FT_DEMO_STEPS": "4",  # the second run, to compare with: short
        "TERM": "xterm-256color",
    }
    pane = Pane("wizard", tmp_path / "tmux.sock")
    cmd = " ".join(f"{k}={v}" for k, v in env.items()) + f" {BIN}"
    pane.tmux("new-session", "-d", "-s", pane.name, "-x", "80", "-y", "24", "-c", str(project), cmd)
    try:
        pane.wait("New fine-tune", timeout=60)
        pane.keys("C-p")  # the command palette: Quickstart by name
        pane.type("Quickstart instruction")
        pane.wait("Quickstart instruction")
        pane.keys("Enter")
        pane.wait("train.jsonl", timeout=60)
        pane.keys("Down", "Down", "Enter")  # past "..", the file under the project folder
        pane.wait("usable", timeout=120)
        pane.keys("C-n")  # → Hardware
        pane.wait("Recommended", timeout=60)
        pane.keys("C-n")  # → Review
        pane.wait("total steps", timeout=60)
        pane.keys("C-n")  # start
        pane.wait("Monitor", timeout=120)
        # the monitor's own footer offers Merge once it knows the run completed (train.log's
        # "completed at step" line can show before that, when m would still do nothing)
        pane.wait("m Merge", timeout=400)
        pane.wait("e Evaluate", timeout=30)  # a default run holds rows out: Evaluate is offered
        pane.keys("e")  # → Evaluate
        pane.wait("Scores", timeout=30)
        pane.wait("e Evaluate", timeout=30)  # its own footer
        pane.keys("e")
        pane.wait("^c Cancel", timeout=30)  # while it runs
        pane.wait("done:", timeout=300)  # "done: N examples, M prompts", the table beside it
        pane.keys("Escape")  # → Monitor
        pane.wait("m Merge", timeout=30)
        pane.keys("m")  # → Merge
        pane.wait("What to merge", timeout=30)
        pane.wait("m Merge", timeout=30)  # its footer shows the key
        pane.keys("m")
        pane.wait("self-check passed", timeout=300)
        pane.wait("v Serve it", timeout=30)
        pane.keys("v")  # → Serve
        pane.wait("Start server", timeout=30)
        pane.keys("C-g")
        pane.wait("ready", timeout=300)
        pane.keys("C-t")  # → Chat
        # typed as soon as the screen shows, as a user would: a message entered while the
        # screen is still connecting goes out once it is connected (the Serve screen's
        # "Server ready" toast is cleared on ctrl+t, so nothing covers Chat's box)
        pane.wait("Chat · ", timeout=60)
        pane.type("Add 2 and 3.")
        pane.keys("Enter")
        pane.wait("first token", "finished:", timeout=120)  # the reply's figures lead the status line
        pane.keys("Escape")  # back to Serve
        pane.wait("Stop server", timeout=30)
        pane.keys("C-x")
        pane.wait("stopped · port", timeout=120)  # Stop's own result, not a later "not serving"
        pane.keys("Escape")  # → Merge
        pane.wait("x Export it", timeout=30)
        pane.keys("x")  # → Export (GGUF q8_0 first in its list)
        pane.wait("What to write", timeout=30)
        pane.wait("x Export", timeout=30)
        pane.keys("x")
        pane.wait("Exported", timeout=300)  # with what it wrote and llama.cpp's check
        pane.keys("Escape", "Escape", "Escape")  # Export → Merge → Monitor → Home
        pane.wait("d Demo run", timeout=30)
        pane.keys("d")  # a second run
        pane.wait("Monitor · ", timeout=120)
        pane.wait("m Merge", timeout=300)  # completed
        pane.keys("Escape")  # → Home
        pane.wait("l All runs", timeout=30)
        pane.keys("l")  # → Runs, the newest run (the demo) selected
        pane.wait("p Compare", timeout=30)
        pane.keys("p")  # → Compare: it and the run before it
        pane.wait("train rows", timeout=60)  # the side-by-side table of the two
        pane.keys("C-q")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and pane.alive():
            time.sleep(0.3)
        assert not pane.alive(), "ctrl+q did not end the app"
        # before the clean-up below: nothing the app started may outlive it (the worker, the
        # merge and serve subprocesses, the server), and no serve.json is left behind
        deadline = time.monotonic() + 20
        while _ours(sage_home) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = {p: _cmdline(p) for p in _ours(sage_home)}
        assert not left, f"processes still running: {left}"
        assert not [r.name for r in sage_home.iterdir() if read_serve(r)], "a serve.json is left behind"
    finally:
        pane.tmux("kill-server")
        _stop_servers(sage_home)
    from sage_ft_tui.engine.runs.state import list_runs

    runs = list_runs(sage_home)  # newest first: the demo, then the quickstart
    assert len(runs) == 2 and all(r.state == "completed" and r.model == "tiny-demo" for r in runs), runs
    run = Path(runs[1].path)
    assert (run / "merged").is_dir()
    from sage_ft_tui.engine.runs.layout import RunLayout

    assert RunLayout(run).eval_report.is_file() and RunLayout(run).export_gguf("q8_0").is_file()
    assert not [r.pid for r in runs if r.pid and _alive(int(r.pid))], "a worker is still running"
