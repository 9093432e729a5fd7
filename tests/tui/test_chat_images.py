"""The Chat screen's `/image PATH` through Pilot, against a real local HTTP server that keeps
each request (tests/chat_recorder.py) named by the run's serve.json: the picture shows in the
conversation, goes out with the next message as an `image_url` part, and a bad path or a
text-only model is one line under the conversation (the engine's tests cover each refusal)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tests.chat_recorder import REPLY, as_served, recorder

from .conftest import wait_for


def _served_run(home: Path, name: str, server: dict, vision: bool = True) -> Path:
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.runs.create import create_run

    run = create_run(RunConfig.from_dict({"name": name, "task": "chat", "data": {"paths": ["x"]}}), prepare=False)
    model = home / f"{name}-model"
    model.mkdir()
    cfg = {"model_type": "qwen2_vl", "vision_config": {"depth": 2}} if vision else {"model_type": "llama"}
    (model / "config.json").write_text(json.dumps(cfg))
    as_served(run, server, model)
    return run


def _app(run: Path, cwd: Path):
    from sage_ft_tui.tui.app import SageApp
    from sage_ft_tui.tui.screens.deploy.chat import ChatScreen

    return SageApp(cwd=str(cwd), initial=lambda app: [ChatScreen(str(run))])


async def _say(pilot, box, text: str) -> None:
    box.value = text
    box.focus()
    await pilot.press("enter")
    await pilot.pause()


async def test_image_is_shown_and_sent_with_the_next_message(sage_home, tmp_path, monkeypatch):
    from sage_ft_tui.tui.screens.deploy.chat import ChatBubble
    from sage_ft_tui.tui.widgets.image import ImageView

    monkeypatch.setenv("SAGE_FT_IMAGES", "halfcell")  # a picture, whatever the terminal here
    pics = tmp_path / "pics"
    pics.mkdir()
    Image.new("RGB", (120, 60), "red").save(pics / "red.png")
    with recorder(tmp_path) as server:
        run = _served_run(sage_home, "vlm-chat", server, vision=True)
        model = sage_home / "vlm-chat-model"
        app = _app(run, pics)
        async with app.run_test(size=(100, 34)) as pilot:
            screen = app.screen
            await wait_for(pilot, lambda: screen.endpoint is not None, timeout=20)
            box, err = screen.query_one("#chat-input"), screen.query_one("#error")
            await _say(pilot, box, "/image nowhere.png")
            assert err.display and "nowhere.png does not exist" in str(err.render())
            assert box.value == "/image nowhere.png" and not screen.query(ImageView)  # kept, to correct it
            await _say(pilot, box, "/image red.png")  # relative to the folder the app was started in
            assert not err.display and box.value == ""
            (view,) = screen.query(ImageView)
            assert view.shown == "picture"
            assert "[image 120×60 red.png]" in str(view.query_one(".image-caption").render())
            assert "1 image attached" in str(screen.query_one("#chat-status").render())
            assert server["requests"]() == []  # attached, not sent yet
            await _say(pilot, box, "What colour?")
            await wait_for(pilot, lambda: len(screen.query(ChatBubble)) == 2 and not screen.streaming, timeout=30)
            log = list(screen.query_one("#chat-log").children)
            assert [type(w).__name__ for w in log] == ["ImageView", "ChatBubble", "ChatBubble"]
            assert log[2].text == "".join(REPLY)
            (sent,) = server["requests"]()
            parts = sent["messages"][-1]["content"]
            assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
            assert parts[1] == {"type": "text", "text": "What colour?"}
            # the served folder is read at each /image: a text-only model refuses it in one line
            (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
            await _say(pilot, box, "/image red.png")
            assert "vlm-chat serves is text-only: it cannot see images" in str(err.render())
            assert len(screen.query(ImageView)) == 1 and len(server["requests"]()) == 1
            # an attached picture, then /reset: it is forgotten with the conversation, and so said
            (model / "config.json").write_text(json.dumps({"model_type": "qwen2_vl", "vision_config": {}}))
            await _say(pilot, box, "/image red.png")
            assert screen.session.images and "1 image attached" in str(screen.query_one("#chat-status").render())
            await _say(pilot, box, "/reset")
            assert screen.session.images == [] and not screen.query(ImageView)
            assert "attached" not in str(screen.query_one("#chat-status").render())
