"""Chat-template rendering and tokenization without torch or transformers.

A model folder's tokenizer.json (the `tokenizers` library) and its Jinja chat template,
rendered the way transformers renders it. The same code builds the training data in the
worker and the preview in the TUI, so what the user sees is what the model gets.

The loss mask is exact: the conversation is rendered once, the character spans of the
assistant turns are found by rendering growing prefixes, and tokens are marked by their
offsets in the one tokenization of the whole string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.errors import SageError

# Used when a model has no chat template: alpaca-style prompts, so qa/instruction data
# still trains a base model (the chat task refuses instead). Saved with the adapter.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### Instruction:\n' + message['content'] + '\n\n### Response:\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + '\n\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt and messages[-1]['role'] != 'assistant' %}{% endif %}"
)


def _jinja_env():
    import jinja2
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):
        # {% generation %}...{% endgeneration %}: transformers' marker for assistant text.
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

        def _render(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        from datetime import datetime

        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


@lru_cache(maxsize=32)
def _compile(template: str):
    return _jinja_env().from_string(template)


# When the template cannot render tools, tool calls or reasoning, they become text in the
# Hermes/Qwen convention (the one most open tool-calling models were trained on).
TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags."
)
TOOL_CALL_TEXT = "<tool_call>\n{call}\n</tool_call>"
TOOL_RESULT_TEXT = "<tool_response>\n{content}\n</tool_response>"
THINK_TEXT = "<think>\n{reasoning}\n</think>\n\n"
TOOL_FORMATS = ("auto", "template", "json")


@dataclass(frozen=True)
class TemplateSupport:
    """What a chat template renders itself (read from its source)."""

    tools: bool
    tool_calls: bool
    tool_role: bool
    reasoning: bool


def template_support(template: str, bos: str = "", eos: str = "") -> TemplateSupport:
    """Probe the template: render each feature with a marker and see whether it shows up."""

    def shows(marker: str, messages: list[dict], tools=None) -> bool:
        try:
            out = _compile(template).render(
                messages=messages, tools=tools, add_generation_prompt=False, bos_token=bos, eos_token=eos
            )
        except Exception:  # a template that refuses the shape cannot render it either
            return False
        return marker in out

    user = {"role": "user", "content": "hi"}
    call = {"type": "function", "function": {"name": "CALL_PROBE", "arguments": {}}}
    # the name at both levels: templates read OpenAI's {"function": {...}} or a flat schema
    schema = {"name": "SCHEMA_PROBE", "description": "", "parameters": {}}
    tool = {"type": "function", **schema, "function": schema}
    return TemplateSupport(
        tools=shows("SCHEMA_PROBE", [user], [tool]),
        tool_calls=shows("CALL_PROBE", [user, {"role": "assistant", "content": "", "tool_calls": [call]}]),
        tool_role=shows(
            "RESULT_PROBE",
            [
                user,
                {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "content": "RESULT_PROBE"},
            ],
        ),
        reasoning=shows(
            "THINK_PROBE", [user, {"role": "assistant", "content": "x", "reasoning_content": "THINK_PROBE"}]
        ),
    )


def _plain(messages: list[dict]) -> list[dict]:
    """Messages as templates expect them: no null fields (Arrow fills absent keys with
    None), tool calls decoded from their JSON string into OpenAI's shape."""
    out = []
    for m in messages:
        m = {k: v for k, v in m.items() if v is not None and k != "train"}
        if isinstance(m.get("tool_calls"), str):
            m["tool_calls"] = [
                {"type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in json.loads(m["tool_calls"])
            ]
        out.append(m)
    return out


def as_text(messages: list[dict], tools, support: TemplateSupport) -> tuple[list[dict], None]:
    """Tools, tool calls, tool results and reasoning the template cannot render, as text."""
    out = []
    for m in messages:
        m = dict(m)
        if m.get("tool_calls") and not support.tool_calls:
            calls = [
                TOOL_CALL_TEXT.format(call=json.dumps(c["function"], ensure_ascii=False)) for c in m.pop("tool_calls")
            ]
            m["content"] = "\n".join(([m["content"]] if m["content"] else []) + calls)
        if m.get("reasoning_content") and not support.reasoning:
            m["content"] = THINK_TEXT.format(reasoning=m.pop("reasoning_content")) + m["content"]
        if m["role"] == "tool" and not support.tool_role:
            m = {"role": "user", "content": TOOL_RESULT_TEXT.format(content=m["content"])}
        out.append(m)
    if tools and not support.tools:
        text = TOOLS_PREAMBLE.format(tools="\n".join(json.dumps(t, ensure_ascii=False) for t in tools))
        if out and out[0]["role"] == "system":
            out[0] = {**out[0], "content": out[0]["content"] + "\n\n" + text}
        else:
            out.insert(0, {"role": "system", "content": text})
        tools = None
    return out, tools


def _token_str(v) -> Optional[str]:
    if v is None:
        return None
    if isinstance(v, dict):
        return v.get("content")
    return str(v)


@dataclass
class Encoded:
    input_ids: list[int]
    completion_mask: list[int]


class ChatTokenizer:
    """tokenizer.json + chat template of a model folder."""

    def __init__(self, model_dir: str | Path):
        from tokenizers import Tokenizer

        d = Path(model_dir)
        tj = d / "tokenizer.json"
        if not tj.exists():
            raise SageError(
                f"{d}: no tokenizer.json", hint="use a model with a fast tokenizer (tokenizer.json)", kind="model"
            )
        self.dir = d
        self.tok = Tokenizer.from_file(str(tj))
        cfg = {}
        if (d / "tokenizer_config.json").exists():
            cfg = json.loads((d / "tokenizer_config.json").read_text(encoding="utf-8"))
        special = {}
        if (d / "special_tokens_map.json").exists():
            special = json.loads((d / "special_tokens_map.json").read_text(encoding="utf-8"))
        self.eos_token = _token_str(cfg.get("eos_token") or special.get("eos_token"))
        self.bos_token = _token_str(cfg.get("bos_token") or special.get("bos_token"))
        self.pad_token = _token_str(cfg.get("pad_token") or special.get("pad_token"))
        gen = d / "generation_config.json"
        if self.eos_token is None and gen.exists():
            eos_id = json.loads(gen.read_text()).get("eos_token_id")
            eos_id = eos_id[0] if isinstance(eos_id, list) else eos_id
            if eos_id is not None:
                self.eos_token = self.tok.id_to_token(int(eos_id))
        self.eos_id = self.tok.token_to_id(self.eos_token) if self.eos_token else None
        tmpl = None
        if (d / "chat_template.jinja").exists():
            tmpl = (d / "chat_template.jinja").read_text(encoding="utf-8")
        elif (d / "chat_template.json").exists():
            tmpl = json.loads((d / "chat_template.json").read_text()).get("chat_template")
        else:
            tmpl = cfg.get("chat_template")
        if isinstance(tmpl, list):  # named templates: take "default"
            tmpl = next((t["template"] for t in tmpl if t.get("name") == "default"), tmpl[0]["template"])
        self.has_template = bool(tmpl)
        self.template = tmpl or FALLBACK_TEMPLATE
        self.template_source = "model" if tmpl else "fallback"
        self.fim_tokens = {k: self.tok.token_to_id(k) for k in ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")}
        self.support = template_support(self.template, self.bos_token or "", self.eos_token or "")
        self.tool_format = "auto"

    def with_tool_format(self, tool_format: str) -> ChatTokenizer:
        """This tokenizer rendering tools per `tool_format` (auto: the template's own
        support where it has it, else JSON text; template: always the template; json:
        always the text form)."""
        if tool_format not in TOOL_FORMATS:
            raise SageError(f"unknown tool format {tool_format!r}", hint=f"choose one of: {', '.join(TOOL_FORMATS)}")
        if tool_format == self.tool_format:
            return self
        import copy

        other = copy.copy(self)
        other.tool_format = tool_format
        return other

    def unsupported(self, messages: list[dict], tools=None) -> list[str]:
        """What of this conversation the template cannot render itself (rendered as text)."""
        if self.tool_format == "template":
            return []
        sup = self.support if self.tool_format == "auto" else TemplateSupport(False, False, False, False)
        out = []
        if tools and not sup.tools:
            out.append("tool schemas")
        if any(m.get("tool_calls") for m in messages) and not sup.tool_calls:
            out.append("tool calls")
        if any(m["role"] == "tool" for m in messages) and not sup.tool_role:
            out.append("tool results")
        if any(m.get("reasoning_content") for m in messages) and not sup.reasoning:
            out.append("reasoning")
        return out

    # ---- rendering ------------------------------------------------------------------
    def render(self, messages: list[dict], add_generation_prompt: bool = False, tools=None) -> str:
        messages = _plain(messages)
        if self.tool_format != "template":
            sup = self.support if self.tool_format == "auto" else TemplateSupport(False, False, False, False)
            messages, tools = as_text(messages, tools, sup)
        try:
            return _compile(self.template).render(
                messages=messages,
                tools=tools,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token or "",
                eos_token=self.eos_token or "",
            )
        except Exception as e:  # jinja errors, raise_exception() in templates
            raise SageError(
                f"the chat template refused this conversation: {e}",
                kind="data",
                hint="check the roles and their order (e.g. user/assistant alternating)",
            ) from None

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def assistant_spans(self, messages: list[dict], tools=None) -> tuple[str, list[tuple[int, int]]]:
        """The rendered conversation and the character spans of assistant turns."""
        full = self.render(messages, tools=tools)
        spans: list[tuple[int, int]] = []
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            before = self.render(messages[:i], add_generation_prompt=True, tools=tools) if i else ""
            upto = full if i == len(messages) - 1 else self.render(messages[: i + 1], tools=tools)
            if not full.startswith(upto) or not upto.startswith(before):
                # Template is not prefix-stable (e.g. it drops earlier reasoning): locate the content.
                pos = full.find(m["content"], spans[-1][1] if spans else 0)
                if pos < 0:
                    raise SageError(
                        "the chat template hides an assistant turn",
                        kind="data",
                        hint="use a template that renders every assistant message",
                    )
                start, end = pos, pos + len(m["content"])
                if self.eos_token and full.startswith(self.eos_token, end):
                    end += len(self.eos_token)
            else:
                start, end = len(before), len(upto)
            spans.append((start, end))
        return full, spans

    def trained_spans(
        self, messages: list[dict], tools=None, mask_reasoning: bool = False
    ) -> tuple[str, list[tuple[int, int]]]:
        """The rendered conversation (EOS ending every answer) and the character spans that
        are trained: the assistant turns, less those with loss_weight 0 and, with
        `mask_reasoning`, less each turn's reasoning text."""
        text, spans = self.assistant_spans(messages, tools)
        # EOS ends every answer: add it where the template leaves it out.
        if self.eos_token:
            fixed, shift, new_spans = [], 0, []
            last = 0
            for s, e in spans:
                seg = text[s:e]
                fixed.append(text[last:s])
                if self.eos_token not in seg:
                    seg = seg.rstrip("\n") + self.eos_token + seg[len(seg.rstrip("\n")) :]
                new_spans.append((s + shift, s + shift + len(seg)))
                shift += len(seg) - (e - s)
                fixed.append(seg)
                last = e
            fixed.append(text[last:])
            text, spans = "".join(fixed), new_spans
        answers = [m for m in messages if m["role"] == "assistant"]
        out = []
        for m, (s, e) in zip(answers, spans):
            if m.get("train") is False:
                continue
            r = m.get("reasoning_content") if mask_reasoning else None
            pos = text.find(r, s, e) if r else -1
            if r and pos >= 0:
                out += [(a, b) for a, b in ((s, pos), (pos + len(r), e)) if b > a]
            else:
                out.append((s, e))
        return text, out

    def encode_conversation(self, messages: list[dict], tools=None, mask_reasoning: bool = False) -> Encoded:
        text, spans = self.trained_spans(messages, tools, mask_reasoning)
        enc = self.tok.encode(text, add_special_tokens=False)
        mask = [0] * len(enc.ids)
        si = 0
        for ti, (a, b) in enumerate(enc.offsets):
            while si < len(spans) and a >= spans[si][1]:
                si += 1
            if si < len(spans) and spans[si][0] <= a < spans[si][1] and b > a:
                mask[ti] = 1
        return Encoded(enc.ids, mask)

    def encode_text(self, text: str) -> Encoded:
        ids = self.encode(text)
        if self.eos_id is not None:
            ids.append(self.eos_id)
        return Encoded(ids, [1] * len(ids))

    def segments(self, messages: list[dict], tools=None, mask_reasoning: bool = False) -> list[tuple[str, bool]]:
        """(text, trained) pieces of the rendered conversation, for previews."""
        enc = self.encode_conversation(messages, tools, mask_reasoning)
        out: list[tuple[str, bool]] = []
        run: list[int] = []
        flag = None
        for tid, m in zip(enc.input_ids, enc.completion_mask):
            if flag is not None and bool(m) != flag:
                out.append((self.tok.decode(run, skip_special_tokens=False), flag))
                run = []
            flag = bool(m)
            run.append(tid)
        if run:
            out.append((self.tok.decode(run, skip_special_tokens=False), bool(flag)))
        return out


@lru_cache(maxsize=8)
def chat_tokenizer(model_dir: str) -> ChatTokenizer:
    return ChatTokenizer(model_dir)
