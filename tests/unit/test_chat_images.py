"""Chat with a picture (issue 25 item 5): the chat client sends `/image PATH` as an OpenAI
`image_url` content part (a data URL) before the text, through the real `openai` client, to a
real local HTTP server that keeps each request (tests/chat_recorder.py); bad pictures and a
text-only served model are one line each, and nothing is sent."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from sage_ft_tui.engine.deploy.chat import ChatSession, ChatSettings, Endpoint, load_image, repl
from sage_ft_tui.engine.deploy.net import free_port
from sage_ft_tui.engine.errors import SageError
from tests.chat_recorder import REPLY, recorder


def _model_dir(root: Path, vision: bool) -> Path:
    """A served folder's config.json: a VLM's names its vision part, a text model's does not."""
    d = root / ("vlm" if vision else "text")
    d.mkdir(exist_ok=True)
    cfg = {"model_type": "qwen2_vl", "vision_config": {"depth": 2}} if vision else {"model_type": "llama"}
    (d / "config.json").write_text(json.dumps(cfg))
    return d


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with recorder(tmp_path_factory.mktemp("chat-rec")) as srv:
        yield srv


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pics")
    im = Image.new("RGB", (64, 32), "red")
    im.save(d / "red.png")
    im.save(d / "red.bmp")  # not sent as is: converted to PNG
    raw = (d / "red.png").read_bytes()
    (d / "cut.png").write_bytes(raw[: len(raw) // 2])
    (d / "notes.txt").write_text("not a picture\n")
    return {p.stem if p.suffix != ".bmp" else "bmp": p for p in d.iterdir()}


def _session(server, model_path: Path) -> ChatSession:
    ep = Endpoint(base_url=server["base_url"], model=server["model"], model_path=str(model_path))
    return ChatSession(ep, ChatSettings(temperature=0, max_tokens=8))


def test_an_attached_picture_goes_out_as_an_image_url_part(server, pictures, tmp_path):
    s = _session(server, _model_dir(tmp_path, vision=True))
    im = s.attach(pictures["red"])
    assert (im.width, im.height) == (64, 32)
    before = len(server["requests"]())
    assert s.ask("What colour is it?") == "".join(REPLY)
    sent = server["requests"]()[before:]
    assert len(sent) == 1 and sent[0]["stream"] is True
    image_part, text_part = sent[0]["messages"][-1]["content"]
    assert text_part == {"type": "text", "text": "What colour is it?"}
    url = image_part["image_url"]["url"]
    assert image_part["type"] == "image_url" and url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == pictures["red"].read_bytes()  # the file, byte for byte
    # sent once: the next message is text alone, and the history keeps the picture for the model
    assert s.images == []
    s.ask("And now?")
    last = server["requests"]()[-1]["messages"]
    assert last[-1] == {"role": "user", "content": "And now?"}
    assert last[0]["content"][0] == image_part and last[1] == {"role": "assistant", "content": "".join(REPLY)}


def test_a_picture_attached_while_a_reply_streams_waits_and_a_failed_request_keeps_it(server, pictures, tmp_path):
    s = _session(server, _model_dir(tmp_path, vision=True))
    s.attach(pictures["red"])
    reply = s.stream("first")
    assert next(reply) == REPLY[0]  # the request has gone out with red.png
    later = s.attach(pictures["bmp"])
    assert "".join(reply) == "".join(REPLY[1:])
    assert [p["type"] for p in server["requests"]()[-1]["messages"][-1]["content"]] == ["image_url", "text"]
    assert s.images == [later]  # for the next message, not lost with the one sent
    dead = ChatSession(Endpoint(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m"), ChatSettings())
    dead.attach(pictures["red"])
    with pytest.raises(SageError, match="cannot reach the server"):
        dead.ask("hello?")
    assert len(dead.images) == 1 and dead.history == []  # the next try sends it again


def test_a_format_servers_may_not_take_is_sent_as_png(pictures):
    part = load_image(pictures["bmp"]).part
    data = part["image_url"]["url"]
    assert data.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))) as back:
        assert back.format == "PNG" and back.size == (64, 32) and back.getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize(
    "name, says",
    [
        ("nowhere.png", "does not exist"),
        ("folder", "is a folder"),
        ("notes", "is not a picture Pillow can read"),
        ("cut", "is not a picture Pillow can read"),
    ],
)
def test_what_is_not_a_picture_is_one_line_and_nothing_is_sent(server, pictures, tmp_path, name, says):
    s = _session(server, _model_dir(tmp_path, vision=True))
    path = pictures.get(name, tmp_path / name)
    if name == "folder":
        path.mkdir()
    before = len(server["requests"]())
    with pytest.raises(SageError) as e:
        s.attach(path)
    line = e.value.oneline()
    assert says in line and str(path) in line and "\n" not in line and "/image PATH" in line
    assert s.images == [] and len(server["requests"]()) == before


def test_a_text_only_model_is_refused_politely(server, pictures, tmp_path):
    s = _session(server, _model_dir(tmp_path, vision=False))
    with pytest.raises(SageError) as e:
        s.attach(pictures["red"])
    assert "text-only: it cannot see images" in e.value.message and "vision-language" in e.value.hint
    assert s.images == []
    # unknown (a server we did not start: no folder to read): the picture is sent, the server decides
    unknown = ChatSession(Endpoint(base_url=server["base_url"], model="m"), ChatSettings())
    assert unknown.attach(pictures["red"]).width == 64


def test_the_terminal_chat_takes_image_and_says_what_it_attached(server, pictures, tmp_path):
    s = _session(server, _model_dir(tmp_path, vision=True))
    out = io.StringIO()
    lines = f"/image {tmp_path / 'gone.png'}\n/image {pictures['red']}\nWhat is it?\n"
    assert repl(s, io.StringIO(lines), out, show_prompt=False) == 1
    text = out.getvalue()
    assert "error: image" in text and "gone.png does not exist" in text
    assert "(image 64×32 red.png goes with your next message)" in text
    assert server["requests"]()[-1]["messages"][-1]["content"][0]["type"] == "image_url"
