"""An Ollama Modelfile for a GGUF export. Ollama templates are Go templates, not Jinja, so
the model's own chat template is rendered here with placeholder messages to find each
role's wrapping text, and those pieces become a Go template (the Jinja original is also in
the GGUF itself, as `tokenizer.chat_template`, which llama.cpp uses)."""

from __future__ import annotations

import json

_MARK = {"system": "\x00SYS\x00", "user": "\x00USR\x00", "assistant": "\x00AST\x00"}


def _wrap(chat, messages: list[dict], role: str) -> tuple[str, str]:
    """(text before, text after) the content of the last message of `messages`."""
    before = chat.render(messages[:-1]) if len(messages) > 1 else ""
    whole = chat.render(messages)
    if not whole.startswith(before) or _MARK[role] not in whole:
        raise ValueError("template not prefix-stable")
    piece = whole[len(before) :]
    pre, post = piece.split(_MARK[role], 1)
    return pre, post


def go_template(chat) -> str:
    """A Go template equivalent to `chat` (engine.data.template.ChatTokenizer) for
    system/user/assistant turns and the generation prompt."""
    user = [{"role": "user", "content": _MARK["user"]}]
    u_pre, u_post = _wrap(chat, user, "user")
    a_pre, a_post = _wrap(chat, user + [{"role": "assistant", "content": _MARK["assistant"]}], "assistant")
    gen = chat.render(user, add_generation_prompt=True)[len(chat.render(user)) :]
    parts = [f'{{{{- range .Messages }}}}{{{{ if eq .Role "user" }}}}{_go(u_pre)}{{{{ .Content }}}}{_go(u_post)}']
    try:
        s_pre, s_post = _wrap(chat, [{"role": "system", "content": _MARK["system"]}], "system")
        parts.append(f'{{{{ else if eq .Role "system" }}}}{_go(s_pre)}{{{{ .Content }}}}{_go(s_post)}')
    except Exception:
        pass  # a template that refuses system messages
    parts.append(f'{{{{ else if eq .Role "assistant" }}}}{_go(a_pre)}{{{{ .Content }}}}{_go(a_post)}{{{{ end }}}}')
    parts.append(f"{{{{ end }}}}{_go(gen)}")
    return "".join(parts)


def _go(text: str) -> str:
    # Go template text is literal except for "{{"; none of the chat markers contain it.
    return text.replace("{{", '{{ "{{" }}')


def modelfile(gguf_name: str, chat, stop: list[str]) -> str:
    """The Modelfile text: FROM the GGUF beside it, the template, the stop tokens."""
    lines = [f"FROM ./{gguf_name}", "", f'TEMPLATE """{go_template(chat)}"""', ""]
    lines += [f"PARAMETER stop {json.dumps(s)}" for s in stop]
    return "\n".join(lines) + "\n"
