"""Chat with a served run through the official `openai` client, streaming.

`ChatSession` keeps the conversation (system prompt, temperature, max tokens) and
streams one reply at a time; the terminal REPL and the TUI Chat screen both use it.
No torch, no transformers here: the model lives in the server process.

`/image PATH` attaches a picture to the next message: it goes out as an OpenAI content
part (`image_url` with a data URL) before the text, the way vLLM and `transformers serve`
take images. A served model whose config.json has no vision part is refused at once.
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator, Optional

from sage_ft_tui.engine.deploy.serve_info import read_serve, server_alive
from sage_ft_tui.engine.errors import SageError, clip
from sage_ft_tui.engine.models.family import is_vision
from sage_ft_tui.engine.paths import resolve_run

HELP = "commands: /image PATH (attach to the next message), /reset (forget the conversation), /system TEXT, /temp F, /max N, /exit"
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # a photo, not a film: a data URL this size already weighs 27 MB
SENT_AS_IS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


@dataclass
class ChatSettings:
    system: Optional[str] = None
    temperature: float = 0.7
    max_tokens: int = 256
    top_p: Optional[float] = None

    def validate(self) -> ChatSettings:
        if not (0.0 <= float(self.temperature) <= 2.0):
            raise SageError(f"temperature {self.temperature} is out of range", hint="use 0 to 2 (0 = greedy)")
        if int(self.max_tokens) < 1:
            raise SageError(f"max tokens {self.max_tokens} must be at least 1", hint="e.g. --max-tokens 256")
        if self.top_p is not None and not (0.0 < float(self.top_p) <= 1.0):
            raise SageError(f"top_p {self.top_p} is out of range", hint="use 0 < top_p <= 1")
        return self


@dataclass
class Endpoint:
    base_url: str
    model: str
    api_key: Optional[str] = None
    backend: str = ""
    run: str = ""
    model_path: str = ""  # the served folder (merged, or the base under an adapter): its config.json


@dataclass
class ChatImage:
    """A picture attached to a message: where it came from, its size, and the content part sent."""

    path: str
    width: int
    height: int
    part: dict


def load_image(path: Path | str) -> ChatImage:
    """The picture at `path` as an OpenAI `image_url` part (a data URL); one line when it is
    missing, unreadable, too large or not a picture. PNG, JPEG, WebP and GIF go as they are,
    any other format PIL reads is sent as PNG."""
    p = Path(path).expanduser()
    hint = "give the path of a PNG, JPEG or WebP picture: /image PATH"
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "does not exist"
        raise SageError(f"image {p} {what}", hint=hint, code="image_missing")
    try:
        data = p.read_bytes() if p.stat().st_size <= MAX_IMAGE_BYTES else None
    except OSError as e:
        raise SageError(f"cannot read image {p}: {e.strerror}", hint="check its permissions") from None
    if data is None:
        raise SageError(
            f"image {p} is larger than {MAX_IMAGE_BYTES // 1024 // 1024} MiB",
            hint="send a smaller copy (a few megapixels is what a vision model sees anyway)",
        )
    try:
        from PIL import Image, UnidentifiedImageError

        with Image.open(io.BytesIO(data)) as im:
            im.load()  # a cut file fails here, not on the server
            fmt, size = im.format or "", im.size
            mime = SENT_AS_IS.get(fmt)
            if mime is None:
                out = io.BytesIO()
                im.convert("RGBA" if "A" in im.getbands() else "RGB").save(out, "PNG")
                data, mime = out.getvalue(), "image/png"
    except ImportError:
        raise SageError("Pillow is not installed, which reads images", hint="pip install pillow") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise SageError(
            f"{p} is not a picture Pillow can read ({clip(str(e), 80)})", hint=hint, code="not_image"
        ) from None
    url = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    return ChatImage(str(p), size[0], size[1], {"type": "image_url", "image_url": {"url": url}})


def sees_images(ep: Endpoint) -> Optional[bool]:
    """Whether the served model takes pictures: its config.json names a vision part
    (`vision_config`, as Qwen2-VL, LLaVA, Idefics3/SmolVLM and Gemma-3 do). None: unknown
    (no folder to look at, e.g. a server we did not start)."""
    if not ep.model_path or not (Path(ep.model_path) / "config.json").is_file():
        return None
    return is_vision(Path(ep.model_path))


def refuse_if_text_only(ep: Endpoint) -> None:
    if sees_images(ep) is False:
        raise SageError(
            f"the model {ep.run or ep.model} serves is text-only: it cannot see images",
            hint="chat about images with a run trained on a vision-language model",
            code="text_only",
        )


def endpoint_for_run(run: Path | str) -> Endpoint:
    """The server a run is being served on (from serve.json), checked to be alive."""
    run = resolve_run(run, "chat with it")
    info = read_serve(run)
    if not info:
        raise SageError(
            f"run {run.name} is not being served",
            kind="serve",
            hint=f"start it with `sage-ft-tui serve {run.name}`, or pass --serve to `chat`",
            code="not_served",
        )
    if not server_alive(info):
        raise SageError(
            f"the server of run {run.name} is gone (pid {info.get('pid')} is not running)",
            kind="serve",
            hint=f"start it again: `sage-ft-tui serve {run.name}` (see {info.get('log')})",
            code="server_gone",
        )
    if info.get("state") != "ready":
        raise SageError(
            f"the server of run {run.name} is still starting",
            kind="serve",
            hint="wait for `sage-ft-tui serve --status` to say ready",
            code="server_starting",
        )
    return Endpoint(
        base_url=info["base_url"],
        model=info["model"],
        api_key=info.get("api_key"),
        backend=info.get("backend", ""),
        run=run.name,
        model_path=info.get("model_path") or "",
    )


def make_client(ep: Endpoint, timeout: float = 600.0):
    try:
        import openai
    except ImportError:
        raise SageError("the openai client is not installed", hint="pip install openai") from None
    return openai.OpenAI(base_url=ep.base_url, api_key=ep.api_key or "not-needed", timeout=timeout, max_retries=0)


def api_error(e: Exception, ep: Endpoint) -> SageError:
    """One line for a failed OpenAI-client request to `ep` (chat, and the eval judge)."""
    import openai

    if isinstance(e, openai.APIConnectionError):
        return SageError(
            f"cannot reach the server at {ep.base_url}",
            kind="serve",
            hint="is it running? `sage-ft-tui serve --status`",
        )
    if isinstance(e, openai.AuthenticationError):
        return SageError(
            "the server refused the API key", kind="serve", hint="serve again with the key you use, or fix serve.json"
        )
    if isinstance(e, openai.APIStatusError):
        detail = ""
        try:
            body = e.response.json()
            detail = body.get("detail") or (body.get("error") or {}).get("message") or ""
        except Exception:
            detail = e.response.text or ""
        return SageError(
            f"the server answered {e.status_code}: {clip(str(detail), 200) or e.message}",
            kind="serve",
            hint="see the server log (`sage-ft-tui serve --status` shows where)",
        )
    return SageError(
        f"chat request failed: {type(e).__name__}: {clip(str(e), 200)}",
        kind="serve",
        hint="see the server log (`sage-ft-tui serve --status` shows where)",
    )


@dataclass
class ChatSession:
    endpoint: Endpoint
    settings: ChatSettings = field(default_factory=ChatSettings)
    history: list = field(default_factory=list)  # user/assistant turns, no system message
    client: Any = None  # openai.OpenAI, made on first use
    last_stats: dict = field(default_factory=dict)
    images: list[ChatImage] = field(default_factory=list)  # attached to the next message

    def __post_init__(self):
        self.settings.validate()
        if self.client is None:
            self.client = make_client(self.endpoint)

    def messages(self, user: Optional[str] = None) -> list[dict]:
        msgs = [{"role": "system", "content": self.settings.system}] if self.settings.system else []
        msgs += self.history
        if user is not None:
            msgs.append({"role": "user", "content": self._content(user)})
        return msgs

    def _content(self, user: str):
        """The text alone, or the attached pictures' parts followed by the text's."""
        if not self.images:
            return user
        return [im.part for im in self.images] + [{"type": "text", "text": user}]

    def attach(self, path: Path | str) -> ChatImage:
        """Attach a picture to the next message (refused at once when the model is text-only)."""
        refuse_if_text_only(self.endpoint)
        image = load_image(path)
        self.images.append(image)
        return image

    def reset(self) -> None:
        self.history.clear()
        self.images.clear()

    def _kwargs(self, user: str) -> dict:
        kw = dict(
            model=self.endpoint.model,
            messages=self.messages(user),
            temperature=float(self.settings.temperature),
            max_tokens=int(self.settings.max_tokens),
        )
        if self.settings.top_p is not None:
            kw["top_p"] = float(self.settings.top_p)
        return kw

    def stream(self, user: str) -> Iterator[str]:
        """Yield the reply's text as it arrives; the turn is kept once the reply ends."""
        import openai

        if not user.strip():
            return
        t0 = time.perf_counter()
        first = None
        parts: list[str] = []
        finish = None
        attached = list(self.images)  # sent with this message; one attached while it streams waits
        content = self._content(user)
        try:
            stream = self.client.chat.completions.create(stream=True, **self._kwargs(user))
            try:
                for chunk in stream:
                    if not chunk.choices:
                        continue
                    ch = chunk.choices[0]
                    finish = ch.finish_reason or finish
                    text = ch.delta.content if ch.delta is not None else None
                    if text:
                        if first is None:
                            first = time.perf_counter() - t0
                        parts.append(text)
                        yield text
            finally:
                close = getattr(stream, "close", None)
                if close:
                    close()
        except openai.OpenAIError as e:
            raise api_error(e, self.endpoint) from None
        reply = "".join(parts)
        self.history += [{"role": "user", "content": content}, {"role": "assistant", "content": reply}]
        self.images = [im for im in self.images if all(im is not a for a in attached)]  # failed: all kept
        self.last_stats = {
            "first_token_s": first,
            "total_s": time.perf_counter() - t0,
            "chunks": len(parts),
            "finish_reason": finish,
        }

    def ask(self, user: str) -> str:
        return "".join(self.stream(user))


def _apply_command(line: str, session: ChatSession, out: IO[str]) -> Optional[bool]:
    """A /command: True to go on, False to exit, None when `line` is not a command."""
    if not line.startswith("/"):
        return None
    cmd, _, arg = line.partition(" ")
    cmd = cmd.lower()
    arg = arg.strip()
    if cmd in ("/exit", "/quit", "/q"):
        return False
    if cmd == "/reset":
        session.reset()
        out.write("(conversation reset)\n")
    elif cmd == "/image":
        try:
            im = session.attach(arg)
            out.write(f"(image {im.width}×{im.height} {Path(im.path).name} goes with your next message)\n")
        except SageError as e:
            out.write(e.oneline() + "\n")
    elif cmd == "/help":
        out.write(HELP + "\n")
    elif cmd == "/system":
        session.settings.system = arg or None
        session.reset()
        out.write(f"(system prompt {'set' if arg else 'cleared'}; conversation reset)\n")
    elif cmd in ("/temp", "/temperature", "/max"):
        try:
            if cmd == "/max":
                n = int(arg)
                ChatSettings(max_tokens=n).validate()
                session.settings.max_tokens = n
                out.write(f"({cmd[1:]} = {n})\n")
            else:
                t = float(arg)
                ChatSettings(temperature=t).validate()
                session.settings.temperature = t
                out.write(f"({cmd[1:]} = {t})\n")
        except (ValueError, SageError) as e:
            msg = e.oneline() if isinstance(e, SageError) else f"error: {cmd} needs a number, got {arg!r}"
            out.write(msg + "\n")
    else:
        out.write(f"unknown command {cmd}; {HELP}\n")
    out.flush()
    return True


def repl(session: ChatSession, inp: IO[str], out: IO[str], *, prompt: str = "you> ", show_prompt: bool = True) -> int:
    """The terminal chat. Returns the number of replies. Ends on /exit or end of input."""
    replies = 0
    out.write(
        f"chatting with {session.endpoint.run or session.endpoint.model} at {session.endpoint.base_url} — {HELP}\n"
    )
    out.flush()
    while True:
        if show_prompt:
            out.write(prompt)
            out.flush()
        line = inp.readline()
        if not line:
            if show_prompt:
                out.write("\n")
            break
        line = line.strip()
        if not line:
            continue
        res = _apply_command(line, session, out)
        if res is False:
            break
        if res is True:
            continue
        out.write("assistant> ")
        out.flush()
        for piece in session.stream(line):
            out.write(piece)
            out.flush()
        out.write("\n")
        out.flush()
        replies += 1
    return replies


__all__ = [
    "ChatImage",
    "ChatSettings",
    "ChatSession",
    "Endpoint",
    "endpoint_for_run",
    "load_image",
    "make_client",
    "refuse_if_text_only",
    "repl",
    "sees_images",
    "HELP",
]
