"""A conversation → training examples that are, token for token, what inference sees.

For each assistant turn the prompt is the template's render of the conversation so far
with the generation prompt (what a server sends the model), and the trained completion is
what the model must produce after it: the answer as the template renders it, up to and
including the family's end of turn (never a blind `eos_token`).

Consecutive turns share one example while each turn's prompt extends the text before it,
which is the case for most templates: the example is then exactly the template's render of
the whole conversation (`apply_chat_template`). Where a template renders history
differently from the live turn (Mistral's system prompt in the last user turn, reasoning
dropped from earlier turns), the turn starts a new example holding its own inference
prompt, so every answer is trained once, as it is seen when served.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional, Protocol

from sage_ft_tui.engine.data.chat_facts import SENTINEL, TemplateFacts


class Renders(Protocol):
    """What this module asks of a chat tokenizer (template.ChatTokenizer, which imports this
    module: a protocol here keeps the dependency one way)."""

    facts: TemplateFacts

    def render(self, messages: list[dict], add_generation_prompt: bool = False, tools=None, clock=None) -> str: ...


@dataclass
class Turn:
    prompt: str  # the inference prompt (generation prompt included)
    completion: str  # what the model produces: the answer and its end of turn
    raw: str  # the completion as the template renders it (no added end of turn)


@dataclass
class Example:
    text: str
    spans: list[tuple[int, int]] = field(default_factory=list)  # trained character spans
    turns: int = 0


def _tail_start(prompt: str, pre: str) -> int:
    """Where the answer starts when the template renders the prompt differently once
    answered (e.g. Mistral moves the system prompt): after the longest tail of the prompt
    found in `pre`, the rendered text before the answer (no answer text is searched)."""
    lo, hi = 0, len(prompt)
    while lo < hi:  # "prompt[-k:] occurs in pre" holds for every k up to some maximum
        k = (lo + hi + 1) // 2
        if prompt[-k:] in pre:
            lo = k
        else:
            hi = k - 1
    return pre.rfind(prompt[-lo:]) + lo if lo else len(pre)


_OPEN_TAG = re.compile(r"^\s*<([A-Za-z_]+)>\s*$")


def turn(tok: Renders, messages: list[dict], i: int, tools=None, end: Optional[int] = None) -> Turn:
    """messages[:i] as the prompt, messages[i:end] (ending with the answer) as what the
    model produces after it."""
    end = end or i + 1
    prompt = tok.render(messages[:i], add_generation_prompt=True, tools=tools) if i else ""
    rendered = tok.render(messages[:end], tools=tools)
    last = messages[end - 1]
    bare = {k: v for k, v in last.items() if k != "reasoning_content"}
    try:  # where the answer's own text starts: render it as a sentinel
        probe = tok.render([*messages[: end - 1], {**bare, "content": SENTINEL}], tools=tools)
    except Exception:
        probe = ""
    cut = probe.find(SENTINEL)
    pre = probe[:cut] if cut >= 0 and rendered.startswith(probe[:cut]) else rendered
    opened = ""
    if rendered.startswith(prompt):
        start = len(prompt)
    elif pre and prompt.startswith(pre) and _OPEN_TAG.match(prompt[len(pre) :]):
        # The generation prompt opens a block the rendered answer never shows (DeepSeek-R1's
        # "<think>\n"): the model writes the reasoning (or none) and closes it, then answers.
        start = len(pre)
        tag = _OPEN_TAG.match(prompt[len(pre) :]).group(1)  # type: ignore[union-attr]
        rendered = tok.render([*messages[: end - 1], bare], tools=tools)  # the reasoning goes in the block
        r = (last.get("reasoning_content") or "").strip()
        opened = (r + "\n" if r else "\n") + f"</{tag}>\n\n"
    else:
        start = _tail_start(prompt, pre)
    eot = tok.facts.end_of_turn
    stop = len(rendered.rstrip())
    if eot and not tok.facts.appended:
        p = rendered.rfind(eot)
        if p >= start:  # else this turn renders no end of turn (e.g. a tool call): to its end
            stop = p + len(eot)
    raw = opened + rendered[start:stop]
    completion = raw + eot if tok.facts.appended and eot else raw
    return Turn(prompt, completion, raw)


def examples(tok: Renders, messages: list[dict], tools=None, mask_reasoning: bool = False) -> list[Example]:
    """The training examples of one conversation (usually one)."""
    idx = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    out: list[Example] = []
    cur: Optional[Example] = None
    raw = ""  # the current example as the template renders it (without added ends of turn)
    for i in idx:
        t = turn(tok, messages, i, tools)
        if cur is None or not t.prompt.startswith(raw):
            cur = Example(t.prompt)
            out.append(cur)
            raw, delta = t.prompt, ""
        else:
            delta = t.prompt[len(raw) :]
        cur.text += delta
        s = len(cur.text)
        cur.text += t.completion
        raw += delta + t.raw
        cur.turns += 1
        if messages[i].get("train") is False:
            continue
        r = messages[i].get("reasoning_content") if mask_reasoning else None
        pos = cur.text.find(r, s) if r else -1
        if r and pos >= 0:
            cur.spans += [(a, b) for a, b in ((s, pos), (pos + len(r), len(cur.text))) if b > a]
        else:
            cur.spans.append((s, len(cur.text)))
    if out and len(out) == 1 and idx and idx[-1] == len(messages) - 1:
        # One example for the whole conversation: end it as the template does (e.g.
        # Phi's trailing "\n<|endoftext|>", Qwen's "\n"), so ids = apply_chat_template's.
        full = tok.render(messages, tools=tools)
        if full.startswith(raw) and not tok.facts.appended:
            out[0].text += full[len(raw) :]
    return out


def per_answer_note(n_rows: int, n_split: int, reason: Optional[str]) -> str:
    why = reason or "the template renders earlier turns differently from the live one"
    return (
        f"{n_split} of {n_rows} conversations are trained as one example per answer: {why}, "
        "so each answer is trained on the prompt a server sends the model"
    )


__all__ = ["Turn", "Example", "turn", "examples", "per_answer_note", "SENTINEL"]
