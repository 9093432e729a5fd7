"""Pilot tests of the Chat, Serve and Merge screens against real processes: a real
`transformers serve` (one per module), the real openai client, a real merge subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters import adapter_run, serving

from .conftest import footer_keys, wait_for

pytestmark = pytest.mark.train


def _merged_run(home: Path, name: str, tiny_model: Path, merge: bool = True) -> Path:
    return adapter_run(home, name, tiny_model, seed=3, merge=merge)


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model):
    yield from serving(_merged_run(tmp_path_factory.mktemp("tui-chat"), "tui-chat", tiny_model))


def _app(screen_factory):
    from sage_ft_tui.tui.app import SageApp

    return SageApp(initial=lambda app: [screen_factory()])


async def test_chat_screen_streams_a_reply(served):
    from sage_ft_tui.engine.deploy.chat import ChatSession, ChatSettings, endpoint_for_run
    from sage_ft_tui.tui.screens.deploy.chat import ChatBubble, ChatScreen

    run, info = served
    expected = ChatSession(endpoint_for_run(run), ChatSettings(temperature=0, max_tokens=8)).ask("Hello there")
    app = _app(lambda: ChatScreen(str(run)))
    async with app.run_test(size=(100, 34)) as pilot:
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_for(pilot, lambda: screen.endpoint is not None, timeout=30)
        status = str(screen.query_one("#chat-status").render())
        assert info["base_url"] in status and f"model {Path(run).name}" in status  # our merged folder: the run's name
        screen.query_one("#chat-temp").value = "0"
        screen.query_one("#chat-max").value = "8"
        screen.query_one("#chat-input").focus()
        await pilot.press(*"Hello there")
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(screen.query(ChatBubble)) == 2 and not screen.streaming, timeout=60)
        bubbles = list(screen.query(ChatBubble))
        assert [b.role for b in bubbles] == ["user", "assistant"]
        assert bubbles[0].text == "Hello there"
        assert bubbles[1].text == (expected or "(empty reply)")  # greedy: what the client gets directly
        assert "first token" in str(screen.query_one("#chat-status").render())
        assert screen.session.history[-1] == {"role": "assistant", "content": expected}
        # /reset forgets the conversation
        await pilot.press(*"/reset")
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert screen.session.history == []
        assert [b.role for b in screen.query(ChatBubble)] == ["note"]


async def test_chat_screen_sends_what_was_entered_while_connecting(served, monkeypatch):
    """Enter pressed before the screen has connected (the openai client is still importing;
    a user who types at once after ctrl+t) loses nothing and says nothing wrong: the message
    stays in the box and goes out as soon as the connection is made."""
    import threading

    from sage_ft_tui.engine.deploy import chat as engine_chat
    from sage_ft_tui.tui.screens.deploy.chat import ChatBubble, ChatScreen

    run, _ = served
    real, gate = engine_chat.endpoint_for_run, threading.Event()

    def slow_endpoint(r):  # the real look-up, held until the message is entered
        gate.wait(30)
        return real(r)

    monkeypatch.setattr(engine_chat, "endpoint_for_run", slow_endpoint)
    app = _app(lambda: ChatScreen(str(run)))
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            screen.query_one("#chat-max").value = "2"
            box, status = screen.query_one("#chat-input"), screen.query_one("#chat-status")
            await pilot.press(*"hi", "enter")
            await pilot.pause(0.1)
            assert screen.endpoint is None and box.value == "hi"  # not sent yet, and not lost
            assert not screen.query_one("#error").display  # no "not connected to a server"
            assert "goes out once connected" in str(status.render())
            gate.set()
            await wait_for(pilot, lambda: len(screen.query(ChatBubble)) == 2 and not screen.streaming, timeout=60)
            assert [(b.role, b.text) for b in screen.query(ChatBubble)][0] == ("user", "hi")
            assert box.value == "" and "first token" in str(status.render())
    finally:
        gate.set()


async def test_chat_screen_without_a_server_says_so(tmp_path, tiny_model):
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.runs.create import create_run
    from sage_ft_tui.tui.screens.deploy.chat import ChatScreen

    run = create_run(RunConfig.from_dict({"name": "idle", "task": "chat", "data": {"paths": ["x"]}}), prepare=False)
    app = _app(lambda: ChatScreen(str(run)))
    async with app.run_test(size=(100, 34)) as pilot:
        screen = app.screen
        err = screen.query_one("#error")
        await wait_for(pilot, lambda: err.display, timeout=15)
        assert "is not being served" in str(err.render())
        # the way forward is this app's key, not the command line's `sage-ft-tui serve` / --serve
        assert "ctrl+g starts the server" in str(err.render()) and "--serve" not in str(err.render())
        await pilot.press(*"hi")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert "not connected" in str(err.render())
        # ctrl+g, as on the Serve screen: Serve opens and starts this run's server at once
        await pilot.press("ctrl+g")
        serve = app.screen
        assert type(serve).__name__ == "ServeScreen" and serve.run_dir == run
        await wait_for(pilot, lambda: not serve.start_at_once and (serve.running or serve.query_one("#error").display))


async def test_serve_screen_shows_the_running_server(served):
    from sage_ft_tui.engine.deploy.serve_info import read_serve
    from sage_ft_tui.tui.screens.deploy.chat import ChatScreen
    from sage_ft_tui.tui.screens.deploy.job import JobFinished
    from sage_ft_tui.tui.screens.deploy.serve import ServeScreen

    run, info = served
    app = _app(lambda: ServeScreen(str(run)))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.row.get("state") == "ready", timeout=20)
        text = str(screen.query_one("#serve-state").render())
        assert info["url"] in text and info["model"] in text
        await wait_for(pilot, lambda: screen.query_one("#serve-log").line_count > 0, timeout=10)
        assert screen.check_action("chat", ()) is True and screen.check_action("start", ()) is False
        # the footer at 80 columns: what works now, nothing dimmed, nothing cut
        await pilot.pause()
        keys = footer_keys(screen)
        shown = [d for d, _, _ in keys]
        assert shown.index("Chat") < shown.index("Stop server") and "Start server" not in shown, keys
        assert all(not dim and inside for _, dim, inside in keys), keys
        # "Server ready" as the start job reports it (this server's serve.json): the run's
        # name, not the merged folder's path, and a toast that does not outlive the screen
        screen.post_message(JobFinished(read_serve(run), None))  # the start job's result record
        await wait_for(pilot, lambda: len(app._notifications) == 1, timeout=5)
        toast = next(iter(app._notifications))
        assert toast.title == "Server ready" and run.name in toast.message and "/merged" not in toast.message
        assert len(toast.message) < 60 and toast.timeout <= 5
        await pilot.press("ctrl+t")
        assert isinstance(app.screen, ChatScreen)
        await pilot.pause()
        assert not list(app._notifications)  # nothing sits over Chat's status line and message box


async def test_merge_screen_runs_a_real_merge(sage_home, tiny_model):
    """Serve on an unmerged run says how to go on from there (ctrl+b), which opens Merge."""
    from sage_ft_tui.tui.screens.deploy.merge import MergeScreen
    from sage_ft_tui.tui.screens.deploy.serve import ServeScreen

    run = _merged_run(sage_home, "to-merge", tiny_model, merge=False)
    app = _app(lambda: ServeScreen(str(run)))
    async with app.run_test(size=(110, 34)) as pilot:
        serve = app.screen
        serve.query_one("#serve-backend").value = "transformers"  # it serves merged models only
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: serve.query_one("#error").display, timeout=60)
        err = str(serve.query_one("#error").render())
        assert "no merged model" in err and "ctrl+b merges it first" in err and "sage-ft-tui merge" not in err
        await pilot.press("ctrl+b")
        screen = app.screen
        assert isinstance(screen, MergeScreen) and screen.run_dir == run
        assert screen.query_one("#merge-source").value == ""  # the final adapter
        await pilot.click("#merge-go")
        await wait_for(pilot, lambda: screen.report is not None or screen.query_one("#error").display, timeout=120)
        assert not screen.query_one("#error").display, str(screen.query_one("#error").render())
        assert screen.report and screen.report["self_check"]["passed"]
        assert "self-check passed" in str(screen.query_one("#merge-result").render())
        assert (run / "merged" / "model.safetensors").exists()
        # merging again without "replace" is refused, and says how
        await pilot.click("#merge-go")
        await wait_for(pilot, lambda: screen.query_one("#error").display, timeout=60)
        assert "already exists" in str(screen.query_one("#error").render())


async def test_serve_screen_stop_shows_its_result(served):
    """Stop says what it did ("stopped · port N freed") and keeps saying it after the next
    poll finds nothing serving. Last in this module: it stops the module's server."""
    from sage_ft_tui.engine.deploy.serve_info import read_serve
    from sage_ft_tui.tui.screens.deploy.serve import ServeScreen

    run, info = served
    app = _app(lambda: ServeScreen(str(run)))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.row.get("state") == "ready", timeout=20)
        await pilot.press("ctrl+x")

        def state() -> str:
            return str(screen.query_one("#serve-state").render())

        await wait_for(pilot, lambda: "stopped" in state(), timeout=60)
        assert f"stopped · port {info['port']} freed" in state() and read_serve(run) is None
        # a poll has found nothing serving since (its row names the run; Stop's own does not)
        await wait_for(pilot, lambda: screen.row == {"run": run.name, "state": "not serving"}, timeout=10)
        await pilot.pause()
        assert f"stopped · port {info['port']} freed" in state()
        assert "not serving" not in state() and "checking" not in state()
        shown = [d for d, _, _ in footer_keys(screen)]
        assert "Start server" in shown and "Stop server" not in shown and "Chat" not in shown
