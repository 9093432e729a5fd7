"""An Ollama Modelfile for a GGUF export, derived from the model's own chat template.

Ollama templates are Go templates, not Jinja. Nothing here knows a model family: the chat
template is rendered (through `engine.data.template.ChatTokenizer.render`, the renderer
training used) with marker messages, and the text around each marker gives

- the prefix before the first turn, with and without a system message (a default system
  prompt, a header, the BOS — the BOS is left out when llama.cpp adds it, so the prompt
  Ollama tokenizes has exactly one);
- each role's wrapping, and the generation prompt after the last user turn;
- where the family puts the system prompt: its own turn at the start, folded into the
  first user turn (templates without a system role) or into the last one (Mistral) — that
  is where the `{{ if .System }}` branch goes;
- the `PARAMETER stop` lines: the family's end of turn and stop tokens, as the chat
  template module finds them (`ChatTokenizer.describe()`).

Text a template takes from the clock (`strftime_now`, e.g. Llama 3.2's "Today Date:"
line) cannot be expressed in Ollama's template language: that line is left out rather
than frozen at the export day. The Go template is then rendered (engine.export.gotemplate,
with Ollama's own values) for conversations with and without a system message and must
equal the chat template's render; a template that does not is not written."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.export import gotemplate

_S, _U1, _A1, _U2, _A2, _U3 = "SAGEsysQ", "SAGEu1Q", "SAGEa1Q", "SAGEu2Q", "SAGEa2Q", "SAGEu3Q"
_CLOCK = "SAGEclockQ"


def _msgs(*pairs: tuple[str, str]) -> list[dict]:
    return [{"role": r, "content": c} for r, c in pairs]


@dataclass
class Derived:
    template: Optional[str]  # the Go template, None when the chat template cannot be expressed
    stop: list[str]
    system: str  # where the system prompt goes: "own turn" | "first user turn" | "last user turn" | "dropped"
    notes: list[str] = field(default_factory=list)


class _Renderer:
    """chat.render with the clock's text found and its lines removed, and the BOS that
    llama.cpp adds taken off the front."""

    def __init__(self, chat, add_bos: bool):
        self.chat = chat
        self.bos = chat.bos_token if add_bos and chat.bos_token else ""
        self.clock: Optional[str] = None
        self.notes: list[str] = []
        self._find_clock()

    def _find_clock(self) -> None:
        try:
            msgs = _msgs(("user", _U1))
            real = self.chat.render(msgs, add_generation_prompt=True)
            marked = self.chat.render(msgs, add_generation_prompt=True, clock=lambda fmt: _CLOCK)
        except Exception:
            return
        if _CLOCK not in marked or marked == real:
            return
        head, tail = marked.split(_CLOCK, 1)
        tail = tail.split(_CLOCK, 1)[0]
        if real.startswith(head) and tail:
            end = real.find(tail, len(head))
            if end > len(head):
                self.clock = real[len(head) : end]
                self.notes.append(
                    "the chat template writes today's date; Ollama's templates have no clock, so that line is left out"
                )

    def __call__(self, messages: list[dict], gen: bool) -> str:
        text = self.chat.render(messages, add_generation_prompt=gen)
        if self.clock:
            text = "\n".join(ln for ln in text.split("\n") if self.clock not in ln)
        if self.bos and text.startswith(self.bos):
            text = text[len(self.bos) :]
        return text


def _split(text: str, markers: list[str]) -> Optional[list[str]]:
    """The text around `markers`, which must occur once each and in order."""
    out, pos = [], 0
    for m in markers:
        i = text.find(m, pos)
        if i < 0 or text.count(m) != 1:
            return None
        out.append(text[pos:i])
        pos = i + len(m)
    out.append(text[pos:])
    return out


def _go(text: str) -> str:
    """Literal text in a Go template ("{{" is the only thing that needs quoting)."""
    return text.replace("{{", '{{ "{{" }}')


def stop_tokens(chat) -> list[str]:
    """The family's end of turn first, then every other token that ends generation
    (engine.data.template's TemplateFacts, the owner of both)."""
    facts = chat.describe()
    out = [facts.end_of_turn] if facts.end_of_turn else []
    return out + [t for t in facts.stop_tokens if t not in out]


def derive(chat, add_bos: bool) -> Derived:
    """The Go template and stop tokens for `chat` (engine.data.template.ChatTokenizer);
    `add_bos`: whether llama.cpp adds the BOS itself (the GGUF's add_bos_token).

    The template is built from four texts of a five-turn render (no system message, with
    the generation prompt): before the first user message (P0), between a user message
    and the answer (G1), between an answer and the next user message (G2), and after the
    last user message (G5); then, from the same render with a system message, where the
    system prompt went (before the first user message, or into the last one)."""
    stop = stop_tokens(chat)
    r = _Renderer(chat, add_bos)
    notes = list(r.notes)
    if chat.describe().appended:
        notes.append(
            f"the chat template writes no end of turn; training added {stop[0] if stop else 'none'} after answers"
        )
    turns = [("user", _U1), ("assistant", _A1), ("user", _U2), ("assistant", _A2), ("user", _U3)]
    try:
        ns = r(_msgs(*turns), True)
    except SageError as e:
        return Derived(None, stop, "dropped", notes + [f"the chat template does not render a plain conversation: {e}"])
    parts = _split(ns, [_U1, _A1, _U2, _A2, _U3])
    if parts is None:
        return Derived(None, stop, "dropped", notes + ["the chat template does not show each message once, in order"])
    p0, g1, g2, g3, g4, g5 = parts
    if g1 != g3 or g2 != g4:
        return Derived(
            None, stop, "dropped", notes + ["the chat template wraps turns differently along a conversation"]
        )

    # Where the system prompt goes.
    system, w0, fold_last = "dropped", None, None
    try:
        ws: Optional[str] = r(_msgs(("system", _S), *turns), True)
    except SageError:
        ws = None
    from_u1, from_u3 = ns[ns.find(_U1) :], ns[ns.find(_U3) :]
    if ws is not None and ws.count(_S) == 1:
        s_at, u1_at = ws.find(_S), ws.find(_U1)
        if s_at < u1_at and ws[u1_at:] == from_u1:
            w0 = ws[:u1_at]
            system = "first user turn" if w0.startswith(p0) else "own turn"
        elif ws.startswith(ns[: ns.find(_U3)]) and ws.endswith(from_u3) and s_at > ws.find(_A2):
            system, fold_last = "last user turn", ws[s_at + len(_S) : ws.find(_U3)]
        else:
            notes.append("the chat template puts the system message where a Modelfile template cannot")
            return Derived(None, stop, "dropped", notes)
    if system == "dropped":
        notes.append("the chat template shows no system message, so the Modelfile has no system branch")

    first_user = f"{_go(p0)}"
    if w0 is not None:
        head, tail = w0.split(_S, 1)
        first_user = (
            f"{{{{ if $.System }}}}{_go(head)}{{{{ $.System }}}}{_go(tail)}{{{{ else }}}}{_go(p0)}{{{{ end }}}}"
        )
    t = [
        "{{ range $i, $_ := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}",
        '{{ if eq .Role "user" }}',
        f"{{{{ if or (eq $i 0) (and $.System (eq $i 1)) }}}}{first_user}{{{{ else }}}}{_go(g2)}{{{{ end }}}}",
    ]
    if fold_last is not None:
        t.append(f"{{{{ if and $.System $last }}}}{{{{ $.System }}}}{_go(fold_last)}{{{{ end }}}}")
    t.append(f"{{{{ .Content }}}}{{{{ if $last }}}}{_go(g5)}{{{{ end }}}}")
    t.append(f'{{{{ else if eq .Role "assistant" }}}}{_go(g1)}{{{{ .Content }}}}{{{{ end }}}}{{{{ end }}}}')
    go = "".join(t)
    derived = Derived(go, stop, system, notes)
    bad = mismatches(chat, go, add_bos, system != "dropped", renderer=r)
    if bad:
        derived.template = None
        derived.notes.append(f"the derived template did not render like the chat template: {bad[0]}")
    return derived


PROBE_CONVERSATIONS = [
    _msgs(("user", "What is the capital of France?")),
    _msgs(("user", "Hi!"), ("assistant", "Hello. How can I help?"), ("user", "Name three colours.")),
    _msgs(
        ("system", "You are terse."),
        ("user", "Hi!"),
        ("assistant", "Hello."),
        ("user", "Count to three."),
        ("assistant", "1, 2, 3."),
        ("user", "And back?"),
    ),
    _msgs(("system", "Answer in French."), ("user", "Good morning")),
]


def mismatches(chat, go: str, add_bos: bool, with_system: bool = True, renderer=None) -> list[str]:
    """Where the Go template `go`, given Ollama's values, renders unlike the chat template
    (with the BOS llama.cpp adds and the clock line taken off, as in `derive`)."""
    r = renderer or _Renderer(chat, add_bos)
    out = []
    for conv in PROBE_CONVERSATIONS:
        if not with_system and any(m["role"] == "system" for m in conv):
            continue
        want = r(conv, True)
        try:
            got = gotemplate.render(go, gotemplate.ollama_values(conv))
        except (ValueError, KeyError, TypeError) as e:
            return [f"the Go template does not evaluate: {e}"]
        if got != want:
            i = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            out.append(
                f"{len(conv)}-message conversation differs at character {i}: {got[i : i + 40]!r} vs {want[i : i + 40]!r}"
            )
    return out


def modelfile(gguf_name: str, derived: Derived) -> str:
    """The Modelfile text: FROM the GGUF beside it, the template, the stop tokens."""
    if derived.template is None:
        raise ValueError("no template")
    if '"""' in derived.template:
        raise ValueError('the template holds """')
    lines = [f"FROM ./{gguf_name}", "", f'TEMPLATE """{derived.template}"""', ""]
    lines += [f"PARAMETER stop {json.dumps(s, ensure_ascii=False)}" for s in derived.stop]
    return "\n".join(lines) + "\n"
