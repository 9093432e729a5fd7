"""train the demo → merge → self-check → `serve` (transformers backend, free port) → the
real `openai` client lists the model and chats (streaming and not) → `serve --stop`.

One server for the module; every command runs as a real subprocess of the CLI."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.train

CLI = [sys.executable, "-m", "sage_ft_tui"]


def cli(args, env, timeout=300, input=None):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, env=env, timeout=timeout, input=input)


def one_error_line(p) -> str:
    assert p.returncode != 0, p.stdout + p.stderr
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith(("starting ", "note: "))]
    assert lines and lines[0].startswith("error: "), p.stderr
    assert all(not ln.startswith("error: ") for ln in lines[1:]), p.stderr
    return lines[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve-home")


@pytest.fixture(scope="module")
def env(home) -> dict:
    return {**os.environ, "SAGE_FT_HOME": str(home), "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def trained(home, env, tiny_model) -> Path:
    """The real demo, trained a few steps by the real worker, then merged by the CLI."""
    from sage_ft_tui.engine.recipes.demo import demo_config
    from sage_ft_tui.engine.runs.control import launch
    from sage_ft_tui.engine.runs.create import create_run
    from sage_ft_tui.engine.runs.state import wait_for_end

    old = os.environ.get("SAGE_FT_HOME")
    os.environ["SAGE_FT_HOME"] = str(home)
    try:
        run = create_run(demo_config(max_steps=4, name="served"), home=home)
        launch(run)
        assert wait_for_end(run, timeout=300) == "completed", (run / "train.log").read_text()[-2000:]
    finally:
        if old is None:
            os.environ.pop("SAGE_FT_HOME", None)
        else:
            os.environ["SAGE_FT_HOME"] = old
    assert (run / "adapter" / "adapter_model.safetensors").exists()
    p = cli(["merge", str(run), "--json"], env)
    assert p.returncode == 0, p.stderr
    events = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert events[-1]["event"] == "result" and events[-1]["report"]["self_check"]["passed"]
    assert [e["stage"] for e in events if e["event"] == "progress"][0] == "resolve"
    return run


@pytest.fixture(scope="module")
def server(trained, env):
    t0 = time.time()
    p = cli(["serve", str(trained), "--port", "0", "--backend", "transformers", "--json"], env)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout.strip().splitlines()[-1])
    info["_wall"] = time.time() - t0
    yield info
    cli(["serve", "--stop", str(trained)], env)  # no-op when a test already stopped it


def test_serve_json_and_loopback(server, trained):
    assert server["backend"] == "transformers" and server["mode"] == "merged" and server["state"] == "ready"
    assert server["host"] == "127.0.0.1" and server["url"].startswith("http://127.0.0.1:")
    assert server["model"] == str(trained / "merged")
    on_disk = json.loads((trained / "serve.json").read_text())
    assert on_disk["pid"] == server["pid"] and oct((trained / "serve.json").stat().st_mode & 0o777) == "0o600"
    assert (trained / "serve.log").read_text().count("Uvicorn running") >= 1


def test_openai_client_lists_and_chats(server):
    import openai

    c = openai.OpenAI(base_url=server["base_url"], api_key="unused", max_retries=0, timeout=120)
    ids = [m.id for m in c.models.list().data]
    assert server["model"] in ids
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Give me a tip for Python."}]
    r = c.chat.completions.create(model=server["model"], messages=msgs, max_tokens=8, temperature=0)
    assert isinstance(r.choices[0].message.content, str) and r.choices[0].finish_reason in ("stop", "length")
    assert r.usage is None or r.usage.completion_tokens <= 8
    chunks, finish = [], None
    for ch in c.chat.completions.create(model=server["model"], messages=msgs, max_tokens=8, temperature=0, stream=True):
        if ch.choices:
            chunks.append(ch.choices[0].delta.content or "")
            finish = ch.choices[0].finish_reason or finish
    assert finish in ("stop", "length")
    assert "".join(chunks) == r.choices[0].message.content  # greedy: same text either way


def test_status(server, trained, env):
    p = cli(["serve", "--status", "--json"], env)
    rows = json.loads(p.stdout)
    row = next(r for r in rows if r["run"] == trained.name)
    assert row["state"] == "ready" and row["pid"] == server["pid"] and row["api_key"] is None
    p = cli(["serve", "--status"], env)
    assert f"{trained.name}: ready" in p.stdout and server["url"] in p.stdout


def test_second_server_and_busy_port_refused(server, trained, env):
    line = one_error_line(cli(["serve", str(trained), "--port", "0"], env))
    assert "already being served" in line and "--stop" in line
    other = _copy_run(trained, "other")
    line = one_error_line(cli(["serve", str(other), "--port", str(server["port"])], env))
    assert f"port {server['port']} on 127.0.0.1 is already in use" in line and "--port" in line
    assert not (other / "serve.json").exists()


def test_stop_leaves_no_process(server, trained, env):
    import psutil

    pid = server["pid"]
    assert psutil.pid_exists(pid)
    p = cli(["serve", "--stop", str(trained)], env)
    assert p.returncode == 0 and f"stopped · port {server['port']} freed" in p.stdout, p.stdout + p.stderr
    time.sleep(0.2)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    def members():  # live processes of the server's group (a zombie awaiting its reaper is dead)
        out = []
        for proc in psutil.process_iter(["status"]):
            try:
                if os.getpgid(proc.pid) == server["pgid"] and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    out.append(proc.pid)
            except OSError:
                pass
        return out

    assert members() == []
    assert not (trained / "serve.json").exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server["port"]), timeout=1).close()
    line = one_error_line(cli(["serve", "--stop", str(trained)], env))
    assert "not being served" in line


# ---- refusals that start nothing ------------------------------------------------------


def test_network_bind_rules(trained, env):
    line = one_error_line(cli(["serve", str(trained), "--host", "0.0.0.0", "--port", "0"], env))
    assert "without an API key" in line and "--api-key" in line
    line = one_error_line(
        cli(
            ["serve", str(trained), "--host", "0.0.0.0", "--api-key", "k", "--backend", "transformers", "--port", "0"],
            env,
        )
    )
    assert "cannot require an API key" in line and "127.0.0.1" in line
    line = one_error_line(cli(["serve", str(trained), "--backend", "transformers", "--adapter", "--port", "0"], env))
    assert "merged model" in line and "merge" in line
    line = one_error_line(cli(["serve", str(trained), "--port", "70000"], env))
    assert "not a TCP port" in line
    line = one_error_line(cli(["serve", "--stop"], env))
    assert "--stop needs the run" in line
    assert not (trained / "serve.json").exists()


def test_missing_backends_name_the_extra(trained, monkeypatch):
    from sage_ft_tui.engine.deploy import serve_command as sc
    from sage_ft_tui.engine.deploy.serve_command import serve_command
    from sage_ft_tui.engine.errors import SageError

    monkeypatch.setattr(sc, "find_program", lambda name: None)
    with pytest.raises(SageError) as e:
        serve_command(trained, backend="vllm")
    assert "pip install 'sage-ft-tui[vllm]'" in e.value.hint
    monkeypatch.setattr(sc, "find_spec", lambda m: None if m in ("fastapi", "uvicorn") else object())
    with pytest.raises(SageError) as e:
        serve_command(trained, backend="transformers")
    assert "fastapi, uvicorn" in e.value.message and "pip install 'sage-ft-tui[serve]'" in e.value.hint
    with pytest.raises(SageError) as e:
        serve_command(trained, backend="auto")
    assert "no serving backend" in e.value.message and "[serve]" in e.value.hint and "[vllm]" in e.value.hint


def test_needs_a_merged_model(env, home, tiny_model):
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.runs.create import create_run

    run = create_run(
        RunConfig.from_dict({"name": "unmerged", "task": "qa", "data": {"paths": ["x"]}}), home=home, prepare=False
    )
    line = one_error_line(cli(["serve", str(run), "--backend", "transformers", "--port", "0"], env))
    assert "no merged model yet" in line and "sage-ft-tui merge unmerged" in line


# ---- a server that dies, and one that is too slow --------------------------------------


def _copy_run(src: Path, name: str) -> Path:
    dst = src.parent / name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("serve.json", "serve.log", "checkpoints", "data"))
    return dst


def test_crash_at_start_shows_the_log(trained, env):
    run = _copy_run(trained, "broken")
    cfg = json.loads((run / "merged" / "config.json").read_text())
    cfg["model_type"] = "no-such-architecture"
    (run / "merged" / "config.json").write_text(json.dumps(cfg))
    p = cli(["serve", str(run), "--port", "0", "--backend", "transformers"], env)
    line = one_error_line(p)
    assert "exited with code 1 while starting (ValueError: " in line and "no-such-architecture" in line
    assert "serve.log" in line
    assert "last lines of the server log" in p.stderr and "  | " in p.stderr
    assert not (run / "serve.json").exists()


def test_start_timeout_kills_the_group(trained, env):
    import psutil

    run = _copy_run(trained, "slow")
    before = {p.pid for p in psutil.process_iter()}
    p = cli(["serve", str(run), "--port", "0", "--backend", "transformers", "--timeout", "1"], env)
    line = one_error_line(p)
    assert "was not ready within 1s" in line and "--timeout" in line
    assert not (run / "serve.json").exists()
    time.sleep(0.3)
    leftovers = [
        q
        for q in psutil.process_iter(["pid", "cmdline", "status"])
        if q.pid not in before
        and str(run) in " ".join(q.info["cmdline"] or [])
        and q.info["status"] != psutil.STATUS_ZOMBIE
    ]
    assert leftovers == []
