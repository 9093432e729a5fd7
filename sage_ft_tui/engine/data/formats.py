"""Row formats: detect what a row is and turn it into a conversation or a plain text.

Formats: alpaca, qa, sharegpt, messages (OpenAI, and LLaMA-Factory v1 parts with `value`),
prompt_completion, text; and the preference shapes `pairs` (chosen/rejected) and `kto`
(a boolean `label`), normalised by engine/data/preference.py. Detection looks at the keys
of the rows; `field_map` renames the file's columns to ours first.

A normalised message is {"role", "content"} plus, when present, "tool_calls" (a JSON
string: Arrow cannot hold arguments of varying shape), "reasoning_content", "name",
"tool_call_id", and "train": false for a turn whose `loss_weight` is 0. A row with images
keeps `images` (its references as given, in order; images.resolve_row_images makes them
absolute paths and checks them) and one "<image>" in the text per image: LLaMA-Factory's
placeholders are kept, an OpenAI image part becomes one where it stood.
Reading files into rows is readers.py's business.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Optional

from sage_ft_tui.engine.data.images import IMAGE_PART_TYPES, IMAGE_PLACEHOLDER, raw_images
from sage_ft_tui.engine.data.rows import Row, shown

SFT_FORMATS = ("alpaca", "qa", "sharegpt", "messages", "prompt_completion", "text")
# Preference rows: prompt + chosen + rejected (pairs), or prompt + completion + label (kto).
PREFERENCE_FORMATS = ("pairs", "kto")
# Every preference row holds one of these keys (see row_format); the inspector skips its
# per-row preference check on rows that hold none.
PREFERENCE_KEYS = ("chosen", "chosen_messages", "completions", "label")
FORMATS = SFT_FORMATS + PREFERENCE_FORMATS
TEXT_PART_TYPES = ("text", "input_text", "output_text")
REASONING_PART_TYPES = ("reasoning", "thinking")
TOOL_CALL_PART_TYPES = ("tool_call", "function_call")
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
    if ("chosen" in d and "rejected" in d) or ("chosen_messages" in d and "rejected_messages" in d):
        return "pairs"
    if isinstance(d.get("completions"), list) and ("instruction" in d or "prompt" in d):
        return "pairs"  # UltraFeedback: scored completions per prompt
    if "label" in d and any(k in d for k in ("completion", "messages", "conversations")):
        return "kto"
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
    return max(counts, key=lambda k: counts[k]), counts


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
    """One row → {"messages": [...], "tools": ..., "images": [...]} or {"text": ...}. Raises RowError."""
    if not isinstance(d, dict):
        raise RowError(f"a {type(d).__name__}, expected an object with fields")
    parts: list = []  # images given as content parts, in order
    rec = _normalize(d, fmt, system_prompt, parts)
    listed = raw_images(d)
    if listed and parts:
        raise RowError("images are given both as content parts and in 'images'; give each image once")
    images = parts or listed
    if images:
        if "messages" not in rec:
            raise RowError(f"images need a conversation; a {fmt} row is plain text")
        rec["images"] = images
    return rec


def _normalize(d: dict, fmt: str, system_prompt: Optional[str], images: list) -> dict:
    one = _NORMALIZERS.get(fmt)
    if one is None:
        raise RowError(f"unknown format {fmt!r}")
    return one(d, system_prompt, images)


def _from_text(d: dict, system_prompt: Optional[str], images: list) -> dict:
    key = "text" if "text" in d else "content"
    return {"text": _text(d.get(key), key)}


def _from_alpaca(d: dict, system_prompt: Optional[str], images: list) -> dict:
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


def _from_qa(d: dict, system_prompt: Optional[str], images: list) -> dict:
    _need(d, "question", "answer")
    q = _text(d.get("question"), "question")
    ctx = _text(d.get("context"), "context", required=False)
    msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
    msgs.append({"role": "user", "content": f"Context:\n{ctx}\n\nQuestion: {q}" if ctx.strip() else q})
    msgs.append({"role": "assistant", "content": _text(d.get("answer"), "answer")})
    return {"messages": msgs}


def _from_prompt_completion(d: dict, system_prompt: Optional[str], images: list) -> dict:
    _need(d, "prompt", "completion")
    msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
    msgs += [
        {"role": "user", "content": _text(d.get("prompt"), "prompt")},
        {"role": "assistant", "content": _text(d.get("completion"), "completion")},
    ]
    return {"messages": msgs}


def _from_sharegpt(d: dict, system_prompt: Optional[str], images: list) -> dict:
    conv = d.get("conversations")
    if not isinstance(conv, list) or not conv:
        raise RowError("field 'conversations' must be a non-empty list")
    msgs = []
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise RowError(f"conversations[{i}] needs 'from' and 'value'")
        role = SHAREGPT_ROLES.get(str(turn["from"]).lower())
        if role is None:
            raise RowError(f"conversations[{i}]: unknown role {shown(turn['from'])!r}")
        if str(turn["from"]).lower() == "function_call":
            call = _tool_call(turn["value"], f"conversations[{i}]")
            msgs.append({"role": "assistant", "content": "", "tool_calls": json.dumps([call], ensure_ascii=False)})
            continue
        msg = {"role": role, "content": _text(turn["value"], f"conversations[{i}].value")}
        _loss_weight(turn, msg, f"conversations[{i}]")
        msgs.append(msg)
    if system_prompt and msgs[0]["role"] != "system":
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return _checked({"messages": msgs, **_tools(d)})


def _from_messages(d: dict, system_prompt: Optional[str], images: list) -> dict:
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
            raise RowError(f"messages[{i}]: unknown role {shown(m['role'])!r}")
        msgs.append(_message(m, role, i, images))
    if system_prompt and msgs[0]["role"] != "system":
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return _checked({"messages": msgs, **_tools(d)})


# an SFT format → how one of its rows becomes a record (images: content parts found, in order)
_NORMALIZERS: dict[str, Callable[[dict, Optional[str], list], dict]] = {
    "text": _from_text,
    "alpaca": _from_alpaca,
    "qa": _from_qa,
    "prompt_completion": _from_prompt_completion,
    "sharegpt": _from_sharegpt,
    "messages": _from_messages,
}


def _message(m: dict, role: str, i: int, images: list) -> dict:
    """One OpenAI / LLaMA-Factory v1 message: text, reasoning and tool-call parts kept apart;
    an image part becomes IMAGE_PLACEHOLDER in the text and its reference goes to `images`."""
    where = f"messages[{i}]"
    calls: list[dict] = []
    reasoning: list[str] = []
    c = m.get("content")
    if isinstance(c, list):
        text = []
        for j, p in enumerate(c):
            kind = p.get("type") if isinstance(p, dict) else None
            if isinstance(p, str):
                text.append(p)
            elif kind in TEXT_PART_TYPES:  # OpenAI parts carry `text`, LLaMA-Factory v1 parts `value`
                text.append(_text(p.get("text", p.get("value")), f"{where}.content[{j}]", required=False))
            elif kind in REASONING_PART_TYPES:
                reasoning.append(_text(p.get("value", p.get("text")), f"{where}.content[{j}]", required=False))
            elif kind in TOOL_CALL_PART_TYPES:
                calls.append(_tool_call(p.get("value", p.get("function")), f"{where}.content[{j}]"))
            elif kind in IMAGE_PART_TYPES:
                ref = p.get("image_url", p.get("image", p.get("url", p.get("path", p.get("value")))))
                if ref is None:
                    raise RowError(f"{where}.content[{j}]: an image part with no image_url")
                text.append(IMAGE_PLACEHOLDER)
                images.append(ref)
            else:
                kind = kind if isinstance(p, dict) else type(p).__name__
                raise RowError(
                    f"{where}: content part of type {shown(kind)!r} is not supported (text, image, reasoning and tool_call only)"
                )
        content = "".join(text)
    elif isinstance(c, str):
        content = c
    elif c is None and (m.get("tool_calls") or role == "assistant" and m.get("function_call")):
        content = ""  # OpenAI: an assistant turn that only calls tools has null content
    elif c is None:
        raise RowError(f"{where}: missing 'content'")
    else:
        raise RowError(f"{where}.content is {type(c).__name__}, expected text or a list of parts")
    raw_calls = m.get("tool_calls") or ([m["function_call"]] if m.get("function_call") else [])
    if raw_calls and not isinstance(raw_calls, list):
        raise RowError(f"{where}.tool_calls must be a list")
    calls += [_tool_call(tc, f"{where}.tool_calls[{k}]") for k, tc in enumerate(raw_calls)]
    for key in ("reasoning_content", "reasoning", "thinking"):
        if isinstance(m.get(key), str) and m[key].strip():
            reasoning.append(m[key])
    msg: dict = {"role": role, "content": content}
    if calls:
        if role != "assistant":
            raise RowError(f"{where}: only assistant turns can call tools, not {shown(role)!r}")
        msg["tool_calls"] = json.dumps(calls, ensure_ascii=False)
    if reasoning:
        msg["reasoning_content"] = "\n".join(reasoning)
    for key in ("name", "tool_call_id"):
        if isinstance(m.get(key), str):
            msg[key] = m[key]
    _loss_weight(m, msg, where)
    return msg


def _tool_call(v: Any, where: str) -> dict:
    """{"name", "arguments"} from a v1 part value, an OpenAI tool call or a ShareGPT function_call."""
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            raise RowError(f"{where}: the tool call is not valid JSON") from None
    if isinstance(v, dict) and isinstance(v.get("function"), dict):
        v = v["function"]  # OpenAI: {"type": "function", "function": {...}}
    if not isinstance(v, dict) or not isinstance(v.get("name"), str) or not v["name"]:
        raise RowError(f"{where}: a tool call needs a 'name' and 'arguments'")
    args = v.get("arguments", v.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            raise RowError(f"{where}: the arguments of tool call {shown(v['name'])!r} are not valid JSON") from None
    return {"name": v["name"], "arguments": args}


def _loss_weight(turn: dict, msg: dict, where: str) -> None:
    """LLaMA-Factory's per-turn `loss_weight`: 0 masks the turn (other values train it)."""
    w = turn.get("loss_weight")
    if w is None:
        return
    if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
        raise RowError(f"{where}.loss_weight must be a number >= 0, got {shown(w)!r}")
    if msg["role"] == "assistant" and w == 0:
        msg["train"] = False


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


def is_trained_answer(m: dict) -> bool:
    """An assistant turn with something to learn (text or a tool call) that is not masked."""
    return m["role"] == "assistant" and m.get("train", True) and bool(m["content"].strip() or m.get("tool_calls"))


def _checked(rec: dict) -> dict:
    msgs = rec["messages"]
    if not any(is_trained_answer(m) for m in msgs):
        masked = any(m["role"] == "assistant" and m.get("train") is False for m in msgs)
        raise RowError("every assistant turn has loss_weight 0" if masked else "no assistant answer to learn from")
    while msgs and msgs[-1]["role"] != "assistant":
        msgs.pop()  # a trailing question without an answer teaches nothing
    return rec
