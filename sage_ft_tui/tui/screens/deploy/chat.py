"""Chat: a conversation with the served run, tokens streaming in as they arrive.

The `openai` client runs in a thread worker (engine.deploy.chat.ChatSession); each chunk comes
back as a ChatToken message. Settings (system prompt, temperature, max tokens) apply to
the next message; /reset or ctrl+r forgets the conversation. A message entered while the
screen is still connecting (the openai client takes a moment to import) stays in the box
and goes out as soon as the connection is made. `/image PATH` attaches a picture to the
next message (shown in the conversation as the picture itself, widgets/image.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Static

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.tui.screens.base import BaseScreen, TopBar
from sage_ft_tui.tui.screens.deploy.pick import no_run_error, pick_run, served_name
from sage_ft_tui.tui.screens.deploy.serve import ServeScreen
from sage_ft_tui.tui.widgets.image import ImageView


class ChatConnected(Message):
    def __init__(self, endpoint, error: Optional[SageError]):
        super().__init__()
        self.endpoint = endpoint
        self.error = error


class ChatToken(Message):
    def __init__(self, text: str):
        super().__init__()
        self.text = text


class ChatReplyDone(Message):
    def __init__(self, stats: dict, error: Optional[SageError]):
        super().__init__()
        self.stats = stats
        self.error = error


class ChatBubble(Static):
    """One message; the assistant's grows while it streams."""

    def __init__(self, role: str, text: str = "", **kw):
        super().__init__(classes=f"bubble {role}", **kw)
        self.role = role
        self.text = text

    def render(self) -> Text:
        t = Text()
        t.append(
            {"user": "you", "assistant": "model", "note": "·"}.get(self.role, self.role) + "  ",
            style="bold cyan" if self.role == "user" else ("bold green" if self.role == "assistant" else "dim"),
        )
        t.append(self.text or ("…" if self.role == "assistant" else ""))
        return t

    def add(self, piece: str) -> None:
        self.text += piece
        self.refresh(layout=True)


class ChatScreen(BaseScreen):
    WHERE = "Chat"
    DEFAULT_CSS = """
    ChatScreen #chat-settings { height: auto; padding: 0 1; }
    ChatScreen #chat-settings Input { width: 1fr; }
    ChatScreen .chat-label { color: $text-muted; padding: 0 1 0 1; }
    ChatScreen #chat-temp, ChatScreen #chat-max { width: 7; }
    ChatScreen #chat-log { height: 1fr; }
    ChatScreen .bubble { height: auto; margin: 0 0 1 0; }
    ChatScreen .bubble.note { color: $text-muted; }
    ChatScreen #chat-log ImageView { margin: 0 0 1 5; }
    ChatScreen #chat-status { height: auto; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back", id="nav.back"),
        Binding("ctrl+r", "reset", "Reset chat", id="chat.reset"),
        Binding("ctrl+g", "serve", "Start server", id="chat.serve"),  # ctrl+g, as on the Serve screen
    ]

    def __init__(self, run_dir: Optional[str] = None, **kw):
        super().__init__(**kw)
        self.run_dir = Path(run_dir) if run_dir else (Path(p) if (p := pick_run("served")) else None)
        self.session = None
        self.endpoint = None
        self.streaming = False
        self.connecting = False
        self._pending = False  # enter was pressed while connecting: send the box once connected
        self._bubble: Optional[ChatBubble] = None

    def compose(self) -> ComposeResult:
        name = self.run_dir.name if self.run_dir else "no run"
        yield TopBar(f"Chat · {name}", note="streaming via the openai client", id="topbar")
        with Horizontal(id="chat-settings", classes="panel") as h:
            h.border_title = "Settings (apply to the next message)"
            yield Label("System", classes="chat-label")
            yield Input(placeholder="system prompt (optional)", id="chat-system", compact=True)
            yield Label("Temperature", classes="chat-label")
            yield Input("0.7", placeholder="0.7", id="chat-temp", type="number", compact=True)
            yield Label("Max tokens", classes="chat-label")
            yield Input("256", placeholder="256", id="chat-max", type="integer", compact=True)
        with Vertical(classes="panel body") as v:
            v.border_title = "Conversation"
            yield VerticalScroll(id="chat-log")
            yield Static("", id="error", classes="error")
        yield Static("connecting…", id="chat-status")
        yield Input(
            placeholder="type a message · enter sends · /image PATH · /compare TEXT: base vs tuned · /reset · /exit",
            id="chat-input",
        )
        yield from self.footer()

    def on_mount(self) -> None:
        box = self.query_one("#chat-input", Input)
        box.cursor_blink = self.app.live  # static frames (snapshots) must not depend on the blink
        box.focus()
        if self.run_dir is None:
            self.say_error(no_run_error("chat with"))
            self._status("no run")
            return
        self.connect()

    def connect(self) -> None:
        run = self.run_dir
        self.connecting = True

        def job():
            from sage_ft_tui.engine.deploy.chat import endpoint_for_run, make_client

            ep = endpoint_for_run(run)
            make_client(ep)  # the openai client imports here, off the UI thread
            return ep

        # through the App's helper: a thread worker when live, inline (deterministic) in snapshots
        self.app.background(self, "chat.connect", job, lambda ep, err: self.on_chat_connected(ChatConnected(ep, err)))

    def on_chat_connected(self, message: ChatConnected) -> None:
        self.connecting = False
        pending, self._pending = self._pending, False
        if message.error is not None:
            self.say_error(message.error)
            self._status("not connected — ctrl+g: start the server")
            return
        self.say_error(None)
        self.endpoint = message.endpoint
        self.refresh_bindings()
        self._status(self._server_line())
        if pending:
            self.send(self.query_one("#chat-input", Input))

    # ---- sending -------------------------------------------------------------------
    def _settings(self):
        from sage_ft_tui.engine.deploy.chat import ChatSettings

        sys_prompt = self.query_one("#chat-system", Input).value.strip() or None
        try:
            temp = float(self.query_one("#chat-temp", Input).value or "0.7")
            mx = int(self.query_one("#chat-max", Input).value or "256")
        except ValueError:
            raise SageError("temperature and max tokens must be numbers", hint="e.g. 0.7 and 256") from None
        return ChatSettings(system=sys_prompt, temperature=temp, max_tokens=mx).validate()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "chat-input":
            self.send(event.input)

    def send(self, box: Input) -> None:
        """Send what the message box holds (or run its /command)."""
        text = box.value.strip()
        if not text:
            return
        if text in ("/exit", "/quit"):
            self.action_back()
            return
        if text == "/reset":
            box.value = ""
            self.action_reset()
            return
        if text.startswith("/compare "):
            box.value = ""
            self.compare_base_tuned(text[len("/compare ") :].strip())
            return
        if text == "/image" or text.startswith("/image "):
            if self.attach_image(text[len("/image") :].strip()):
                box.value = ""  # on an error the path stays, to be corrected
            return
        if self.streaming:
            self.app.bell()
            return
        if self.endpoint is None and self.connecting:
            self._pending = True  # the text stays in the box until it is sent
            self._status("connecting… the message goes out once connected")
            return
        if self.endpoint is None:
            self.say_error(SageError("not connected to a server", code="not_served"))
            return
        try:
            settings = self._settings()
        except SageError as e:
            self.say_error(e)
            return
        self.say_error(None)
        box.value = ""
        from sage_ft_tui.engine.deploy.chat import ChatSession

        if self.session is None:
            self.session = ChatSession(self.endpoint, settings)
        else:
            if settings.system != self.session.settings.system:
                attached = list(self.session.images)
                self.session.reset()  # a new system prompt starts a new conversation …
                self.session.images = attached  # … and the pictures just attached still go with this message
                self._note("system prompt changed: new conversation")
            self.session.settings = settings
        log = self.query_one("#chat-log", VerticalScroll)
        log.mount(ChatBubble("user", text))
        self._bubble = ChatBubble("assistant", "")
        log.mount(self._bubble)
        log.scroll_end(animate=False)
        self.streaming = True
        self._status("generating…")
        session = self.session

        def job() -> None:
            try:
                for piece in session.stream(text):
                    self.post_message(ChatToken(piece))
                self.post_message(ChatReplyDone(dict(session.last_stats), None))
            except SageError as e:
                self.post_message(ChatReplyDone({}, e))
            except Exception as e:  # never let a worker error kill the UI
                self.post_message(ChatReplyDone({}, SageError(f"{type(e).__name__}: {e}", kind="internal")))

        self.run_worker(job, thread=True, name="chat-stream", exclusive=True, exit_on_error=False)

    def attach_image(self, arg: str) -> bool:
        """`/image PATH`: the picture goes with the next message; one line when it cannot."""
        if not arg:
            self.say_error(SageError("/image needs the path of a picture", hint="e.g. /image receipt.png"))
            return False
        if self.endpoint is None:
            self.say_error(SageError("not connected to a server", code="not_served"))
            return False
        path = Path(arg).expanduser()
        path = path if path.is_absolute() else self.app.cwd / path
        try:
            if self.session is None:
                from sage_ft_tui.engine.deploy.chat import ChatSession

                self.session = ChatSession(self.endpoint, self._settings())
            image = self.session.attach(path)
        except SageError as e:
            self.say_error(e)
            return False
        self.say_error(None)
        log = self.query_one("#chat-log", VerticalScroll)
        log.mount(ImageView(image.path))
        log.scroll_end(animate=False)
        n = len(self.session.images)
        self._status(f"{n} image{'s' if n > 1 else ''} attached: sent with your next message")
        return True

    def on_chat_token(self, message: ChatToken) -> None:
        if self._bubble is not None:
            self._bubble.add(message.text)
            self.query_one("#chat-log", VerticalScroll).scroll_end(animate=False)

    def on_chat_reply_done(self, message: ChatReplyDone) -> None:
        self.streaming = False
        if message.error is not None:
            self.say_error(message.error)
            if self._bubble is not None and not self._bubble.text:
                self._bubble.remove()
            self._bubble = None
            self._status("request failed")
            return
        s = message.stats
        if self._bubble is not None and not self._bubble.text:
            self._bubble.text = "(empty reply)"
            self._bubble.refresh()
        self._bubble = None
        ft = s.get("first_token_s")
        # the figures first: a long model path must never push them off the line
        self._status(
            f"first token {ft * 1000:.0f} ms · {s.get('total_s', 0):.2f}s · {s.get('finish_reason')} · "
            f"{self._model_label()}"
            if ft is not None
            else f"finished: {s.get('finish_reason')} · {self._model_label()}"
        )

    def _server_line(self) -> str:
        return f"{self.endpoint.backend} · {self.endpoint.base_url} · model {self._model_label()}"

    def _model_label(self) -> str:
        return served_name(str(self.endpoint.model) if self.endpoint is not None else "", self.run_dir)

    # ---- actions ---------------------------------------------------------------------
    def action_reset(self) -> None:
        if self.streaming:
            self.app.bell()
            return
        if self.session is not None:
            self.session.reset()
            self._status(self._server_line())  # no "image attached" left over
        self.query_one("#chat-log", VerticalScroll).remove_children()
        self._note("conversation reset")

    def action_serve(self) -> None:
        """Start the run's server: the Serve screen opens and starts it (ctrl+t comes back)."""
        if self.run_dir is None:
            return
        self.app.push_screen(ServeScreen(str(self.run_dir), start=True))

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action == "serve":  # only while no server answers: connected, there is nothing to start
            return self.endpoint is None and self.run_dir is not None
        return super().check_action(action, parameters)

    def on_screen_resume(self) -> None:
        if self.endpoint is None and self.run_dir is not None:
            self.connect()  # back from the Serve screen: the server may be up now

    def compare_base_tuned(self, question: str) -> None:
        """`/compare TEXT`: the base's and the tuned model's answers side by side (no server needed)."""
        if self.run_dir is None or not question:
            return
        from sage_ft_tui.tui.widgets.side_by_side import SideBySide, ask_both_job

        log = self.query_one("#chat-log", VerticalScroll)
        log.mount(ChatBubble("user", question))
        self._note("base vs tuned: loading both (adapter on the base, no server)…")
        run = str(self.run_dir)

        def job() -> None:
            answers, err = ask_both_job(run, question)
            self.app.call_from_thread(self._show_side_by_side, answers, err, SideBySide)

        self.run_worker(job, thread=True, name="chat-compare", exclusive=False, exit_on_error=False)

    def _show_side_by_side(self, answers, err, widget) -> None:
        if err is not None:
            self.say_error(err)
            return
        log = self.query_one("#chat-log", VerticalScroll)
        log.mount(widget(answers))
        log.scroll_end(animate=False)

    def _note(self, text: str) -> None:
        self.query_one("#chat-log", VerticalScroll).mount(ChatBubble("note", text))

    def _status(self, text: str) -> None:
        self.query_one("#chat-status", Static).update(text)
