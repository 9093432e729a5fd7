"""Row formats: detect what a row is and turn it into a conversation or a plain text.

Formats: alpaca, qa, sharegpt, messages (OpenAI), prompt_completion, text. Detection
looks at the keys of the rows; `field_map` renames the file's columns to ours first.
Reading files into rows is readers.py's business.
"""

from __future__ import annotations

import json
import math
from typing import Any, Optional

from sage_ft_tui.engine.data.readers import Row

FORMATS = ("alpaca", "qa", "sharegpt", "messages", "prompt_completion", "text")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
}
MESSAGE_ROLES = ("system", "user", "assistant", "tool")


class RowError(ValueError):
    """A row that cannot be used; the message is the reason shown to the user."""


# ---- detection ------------------------------------------------------------------


def row_format(d: Any) -> Optional[str]:
    if not isinstance(d, dict):
        return None
    if "conversations" in d:
        return "sharegpt"
    if "messages" in d:
        return "messages"
    if "instruction" in d or ("output" in d and "input" in d):
        return "alpaca"
    if "question" in d:
        return "qa"
    if "prompt" in d or "completion" in d:
        return "prompt_completion"
    if "text" in d or "content" in d:
        return "text"
    return None


def apply_field_map(d: Any, field_map: dict[str, str]) -> Any:
    if not field_map or not isinstance(d, dict):
        return d
    out = dict(d)
    for ours, theirs in field_map.items():
        if theirs in out:
            out[ours] = out.pop(theirs)
    return out


def detect_format(rows: list[Row], sample: int = 200) -> tuple[Optional[str], dict[str, int]]:
    counts: dict[str, int] = {}
    for r in rows[:sample]:
        f = row_format(r.data)
        if f:
            counts[f] = counts.get(f, 0) + 1
    if not counts:
        return None, counts
    return max(counts, key=counts.get), counts


# ---- normalisation --------------------------------------------------------------


def _text(v: Any, name: str, required: bool = True) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        if required:
            raise RowError(f"missing field {name!r}")
        return ""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    if not isinstance(v, str):
        raise RowError(f"field {name!r} is {type(v).__name__}, expected text")
    if required and not v.strip():
        raise RowError(f"field {name!r} is empty")
    return v


def _need(d: dict, *keys: str) -> None:
    for k in keys:
        if k not in d:
            raise RowError(f"missing field {k!r}")


def normalize(d: Any, fmt: str, system_prompt: Optional[str] = None) -> dict:
    """One row → {"messages": [...], "tools": ...} or {"text": ...}. Raises RowError."""
    if not isinstance(d, dict):
        raise RowError(f"a {type(d).__name__}, expected an object with fields")
    if fmt == "text":
        key = "text" if "text" in d else "content"
        return {"text": _text(d.get(key), key)}
    if fmt == "alpaca":
        _need(d, "instruction", "output")
        msgs = []
        sys_ = _text(d.get("system"), "system", required=False) or system_prompt
        if sys_:
            msgs.append({"role": "system", "content": sys_})
        hist = d.get("history") or []
        if not isinstance(hist, list):
            raise RowError("field 'history' must be a list of [question, answer] pairs")
        for h in hist:
            if not (isinstance(h, (list, tuple)) and len(h) == 2):
                raise RowError("field 'history' must be a list of [question, answer] pairs")
            msgs += [
                {"role": "user", "content": _text(h[0], "history")},
                {"role": "assistant", "content": _text(h[1], "history")},
            ]
        user = _text(d.get("instruction"), "instruction")
        inp = _text(d.get("input"), "input", required=False)
        msgs.append({"role": "user", "content": f"{user}\n\n{inp}" if inp.strip() else user})
        msgs.append({"role": "assistant", "content": _text(d.get("output"), "output")})
        return {"messages": msgs}
    if fmt == "qa":
        _need(d, "question", "answer")
        q = _text(d.get("question"), "question")
        ctx = _text(d.get("context"), "context", required=False)
        msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
        msgs.append({"role": "user", "content": f"Context:\n{ctx}\n\nQuestion: {q}" if ctx.strip() else q})
        msgs.append({"role": "assistant", "content": _text(d.get("answer"), "answer")})
        return {"messages": msgs}
    if fmt == "prompt_completion":
        _need(d, "prompt", "completion")
        msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
        msgs += [
            {"role": "user", "content": _text(d.get("prompt"), "prompt")},
            {"role": "assistant", "content": _text(d.get("completion"), "completion")},
        ]
        return {"messages": msgs}
    if fmt == "sharegpt":
        conv = d.get("conversations")
        if not isinstance(conv, list) or not conv:
            raise RowError("field 'conversations' must be a non-empty list")
        msgs = []
        for i, turn in enumerate(conv):
            if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
                raise RowError(f"conversations[{i}] needs 'from' and 'value'")
            role = SHAREGPT_ROLES.get(str(turn["from"]).lower())
            if role is None:
                raise RowError(f"conversations[{i}]: unknown role {turn['from']!r}")
            msgs.append({"role": role, "content": _text(turn["value"], f"conversations[{i}].value")})
        if system_prompt and msgs[0]["role"] != "system":
            msgs.insert(0, {"role": "system", "content": system_prompt})
        return _checked({"messages": msgs, **_tools(d)})
    if fmt == "messages":
        raw = d.get("messages")
        if not isinstance(raw, list) or not raw:
            raise RowError("field 'messages' must be a non-empty list")
        msgs = []
        for i, m in enumerate(raw):
            if not isinstance(m, dict) or "role" not in m:
                raise RowError(f"messages[{i}] needs 'role' and 'content'")
            role = str(m["role"]).lower()
            if role == "developer":
                role = "system"
            if role not in MESSAGE_ROLES:
                raise RowError(f"messages[{i}]: unknown role {m['role']!r}")
            msgs.append({"role": role, "content": _content(m.get("content"), i)})
        if system_prompt and msgs[0]["role"] != "system":
            msgs.insert(0, {"role": "system", "content": system_prompt})
        return _checked({"messages": msgs, **_tools(d)})
    raise RowError(f"unknown format {fmt!r}")


def _content(c: Any, i: int) -> str:
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        parts = []
        for p in c:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and p.get("type") in ("text", "input_text", "output_text"):
                parts.append(_text(p.get("text"), f"messages[{i}].content.text"))
            else:
                kind = p.get("type") if isinstance(p, dict) else type(p).__name__
                raise RowError(f"messages[{i}]: content part of type {kind!r} is not supported (text only)")
        return "".join(parts)
    if c is None:
        raise RowError(f"messages[{i}]: missing 'content'")
    raise RowError(f"messages[{i}].content is {type(c).__name__}, expected text or a list of parts")


def _tools(d: dict) -> dict:
    t = d.get("tools")
    if t is None:
        return {}
    if isinstance(t, str):
        try:
            t = json.loads(t)
        except ValueError:
            raise RowError("field 'tools' is not valid JSON") from None
    if not isinstance(t, list):
        raise RowError("field 'tools' must be a list")
    return {"tools": json.dumps(t, ensure_ascii=False)}


def _checked(rec: dict) -> dict:
    msgs = rec["messages"]
    if not any(m["role"] == "assistant" and m["content"].strip() for m in msgs):
        raise RowError("no assistant answer to learn from")
    while msgs and msgs[-1]["role"] != "assistant":
        msgs.pop()  # a trailing question without an answer teaches nothing
    return rec
