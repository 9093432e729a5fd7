"""`chat` through stdin against a real `transformers serve`, and the ChatSession API
(streaming, system prompt, /reset, errors) with the real openai client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.adapters import adapter_run, serving

pytestmark = pytest.mark.train

CLI = [sys.executable, "-m", "sage_ft_tui"]


def make_merged_run(home: Path, name: str, tiny_model: Path) -> Path:
    """A run with a real PEFT adapter (non-zero B) on the tiny model, merged."""
    return adapter_run(home, name, tiny_model, seed=7)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("chat-home")


@pytest.fixture(scope="module")
def env(home) -> dict:
    return {**os.environ, "SAGE_FT_HOME": str(home), "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def served(home, tiny_model):
    yield from serving(make_merged_run(home, "chatty", tiny_model))


def test_chat_through_stdin(served, env):
    run, info = served
    script = "Hello there!\n/system You are terse.\nWhat is 2+2?\n/temp 0\n/max 3\n/reset\nAgain?\n/temp 9\n/exit\nnever sent\n"
    p = subprocess.run(
        CLI + ["chat", str(run), "--max-tokens", "6", "--temperature", "0"],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert f"chatting with {run.name} at {info['base_url']}" in out
    assert out.count("assistant> ") == 3  # three questions; "never sent" comes after /exit
    assert "(system prompt set; conversation reset)" in out and "(conversation reset)" in out
    assert "(temp = 0.0)" in out and "(max = 3)" in out
    assert "error: temperature 9.0 is out of range" in out  # a bad setting is one line; the chat goes on
    assert "Traceback" not in p.stderr


def test_session_streams_keeps_history_and_resets(served):
    from sage_ft_tui.engine.deploy.chat import ChatSession, ChatSettings, endpoint_for_run

    run, info = served
    ep = endpoint_for_run(run)
    assert ep.model == info["model"] and ep.base_url == info["base_url"]
    s = ChatSession(ep, ChatSettings(system="Be brief.", temperature=0, max_tokens=6))
    pieces = list(s.stream("Hi!"))
    assert pieces and all(isinstance(x, str) for x in pieces)
    assert s.last_stats["first_token_s"] is not None and s.last_stats["finish_reason"] in ("stop", "length")
    assert [m["role"] for m in s.messages()] == ["system", "user", "assistant"]
    assert s.messages()[-1]["content"] == "".join(pieces)
    # Greedy: the same question in a fresh conversation gives the same answer, streamed or whole.
    s.reset()
    assert [m["role"] for m in s.messages()] == ["system"]
    assert s.ask("Hi!") == "".join(pieces)
    direct = s.client.chat.completions.create(
        model=ep.model,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}],
        temperature=0,
        max_tokens=6,
    )
    assert direct.choices[0].message.content == "".join(pieces)


def test_chat_errors_are_one_line(served, env, home):
    from sage_ft_tui.engine.deploy.chat import ChatSession, ChatSettings, Endpoint
    from sage_ft_tui.engine.errors import SageError

    run, info = served
    with pytest.raises(SageError, match="temperature 3"):
        ChatSettings(temperature=3).validate()
    bad = ChatSession(Endpoint(base_url="http://127.0.0.1:9/v1", model="x"), ChatSettings(max_tokens=2))
    with pytest.raises(SageError, match="cannot reach the server"):
        bad.ask("hi")
    wrong = ChatSession(Endpoint(base_url=info["base_url"], model="not-this-model"), ChatSettings(max_tokens=2))
    with pytest.raises(SageError, match="the server answered 400"):
        wrong.ask("hi")
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.runs.create import create_run

    idle = create_run(
        RunConfig.from_dict({"name": "idle", "task": "chat", "data": {"paths": ["x"]}}), home=home, prepare=False
    )
    p = subprocess.run(CLI + ["chat", str(idle)], input="hi\n", capture_output=True, text=True, env=env, timeout=60)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and "is not being served" in lines[0] and "--serve" in lines[0]


def test_chat_can_start_the_server_and_stops_it(served, home, env):
    import shutil

    from sage_ft_tui.engine.deploy import serve as sv

    run = home / "autostart"  # a merged run that is not being served: a copy of the served one
    shutil.copytree(served[0], run, ignore=shutil.ignore_patterns("serve.json", "serve.log"))
    p = subprocess.run(
        CLI + ["chat", str(run), "--serve", "--backend", "transformers", "--max-tokens", "4"],
        input="Hello\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert p.returncode == 0, p.stderr
    assert "server ready in" in p.stderr and p.stdout.count("assistant> ") == 1
    assert not (run / "serve.json").exists()  # started by chat, stopped on exit
    assert sv.status(run)[0]["state"] == "not serving"
