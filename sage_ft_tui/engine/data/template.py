"""Chat-template rendering and tokenization without torch or transformers.

A model folder's tokenizer.json (the `tokenizers` library) and its Jinja chat template,
rendered the way transformers renders it. The same code builds the training data in the
worker and the preview in the TUI, so what the user sees is what the model gets.

The loss mask is exact: the conversation is rendered once, the character spans of the
assistant turns are found by rendering growing prefixes, and tokens are marked by their
offsets in the one tokenization of the whole string.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.data.chat_facts import (
    FOLD_MARK,
    SENTINEL,
    SYSTEM_FOLD,
    TemplateFacts,
    find_end_of_turn,
    history_note,
    lacks_system,
    stop_token_strings,
    system_place,
)
from sage_ft_tui.engine.data.images import content_parts
from sage_ft_tui.engine.data.turns import examples, turn
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.models.family import is_vision

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


def _reads_parts(template: str) -> bool:
    """True when the template drops string content but renders it given as a text part."""
    conv = [{"role": "user", "content": SENTINEL}]
    try:
        as_string = _compile(template).render(messages=conv, add_generation_prompt=True, bos_token="", eos_token="")
        if SENTINEL in as_string:
            return False
        as_parts = _compile(template).render(
            messages=content_parts(conv), add_generation_prompt=True, bos_token="", eos_token=""
        )
    except Exception:  # a template that refuses the probe renders strings as it will
        return False
    return SENTINEL in as_parts


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
        self.model_template = tmpl
        self.template = tmpl or FALLBACK_TEMPLATE
        self.template_source = "model" if tmpl else "fallback"
        self.gen_eos_ids = json.loads(gen.read_text()).get("eos_token_id") if gen.exists() else None
        self.fim_tokens = {k: self.tok.token_to_id(k) for k in ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")}
        self.tool_format = "auto"
        # Vision templates (LLaVA, Idefics3, ...) read content only as a list of parts: a plain
        # string renders as nothing. Such a template, and any vision-language model's (whose
        # images are parts: Gemma 3's template reads both), gets parts (images.content_parts).
        self.parts = is_vision(d) or _reads_parts(self.template)
        if FOLD_MARK not in self.template and lacks_system(self._render_raw):
            self.template = SYSTEM_FOLD + self.template
        self.support = template_support(self.template, self.bos_token or "", self.eos_token or "")
        self.facts = self._facts()

    def _render_raw(self, messages: list[dict], add_generation_prompt: bool = False) -> str:
        return _compile(self.template).render(
            messages=content_parts(messages) if self.parts else messages,
            tools=None,
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token or "",
            eos_token=self.eos_token or "",
        )

    def _facts(self) -> TemplateFacts:
        stops = stop_token_strings(self.eos_token, self.gen_eos_ids, self.tok.id_to_token)
        specials = [t.content for t in self.tok.get_added_tokens_decoder().values() if t.special]
        conv = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": SENTINEL}]
        eot: Optional[str] = None
        try:
            out = self._render_raw(conv)
            p = out.find(SENTINEL)
            eot = find_end_of_turn(out[p + len(SENTINEL) :], stops, specials) if p >= 0 else None
        except Exception:  # a template that refuses the probe: keep the tokenizer's EOS
            pass
        appended = eot is None
        if appended:
            eot = self.eos_token
        if eot and eot not in stops:
            stops.append(eot)
        facts = TemplateFacts(
            end_of_turn=eot,
            stop_tokens=tuple(stops),
            system=system_place(self._render_raw),
            system_fold=self.template.startswith(SYSTEM_FOLD),
            history=history_note(self._render_raw),
            appended=appended,
        )
        if facts.history is None:  # any other way earlier answers render unlike the live one
            self.facts = facts
            probe = [{"role": r, "content": f"{r[0]}{n}"} for n in (1, 2) for r in ("user", "assistant")]
            try:
                if len(self.examples(probe)) > 1:
                    facts = dataclasses.replace(facts, history="earlier answers render unlike the live one")
            except SageError:
                pass
        return facts

    def describe(self) -> TemplateFacts:
        """What the template does (end of turn, stop tokens, system prompt, history)."""
        return self.facts

    @property
    def serving_template(self) -> Optional[str]:
        """The template to save with the adapter/merged model when it is not the model's own
        (the fallback, or the model's with the system fold), else None."""
        return None if self.template == self.model_template else self.template

    def with_tool_format(self, tool_format: str) -> ChatTokenizer:
        """This tokenizer rendering tools per `tool_format` (auto: the template's own
        support where it has it, else JSON text; template: always the template; json:
        always the text form)."""
        if tool_format not in TOOL_FORMATS:
            raise SageError(f"unknown tool format {tool_format!r}", hint=f"choose one of: {', '.join(TOOL_FORMATS)}")
        if tool_format == self.tool_format:
            return self
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
    def render(self, messages: list[dict], add_generation_prompt: bool = False, tools=None, clock=None) -> str:
        """`clock`: stands in for the template's strftime_now (e.g. to find where it writes the date)."""
        messages = _plain(messages)
        extra = {"strftime_now": clock} if clock else {}
        if self.tool_format != "template":
            sup = self.support if self.tool_format == "auto" else TemplateSupport(False, False, False, False)
            messages, tools = as_text(messages, tools, sup)
        if self.parts:
            messages = content_parts(messages)
        try:
            return _compile(self.template).render(
                messages=messages,
                tools=tools,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token or "",
                eos_token=self.eos_token or "",
                **extra,
            )
        except Exception as e:  # jinja errors, raise_exception() in templates
            raise SageError(
                f"the chat template refused this conversation: {e}",
                kind="data",
                hint="check the roles and their order (e.g. user/assistant alternating)",
            ) from None

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def examples(self, messages: list[dict], tools=None, mask_reasoning: bool = False):
        """The conversation as training examples (engine.data.turns): text + trained spans."""
        return examples(self, messages, tools, mask_reasoning)  # render() plains them; "train" is read here

    def _encode(self, text: str, spans: list[tuple[int, int]]) -> Encoded:
        enc = self.tok.encode(text, add_special_tokens=False)
        mask = [0] * len(enc.ids)
        si = 0
        for ti, (a, b) in enumerate(enc.offsets):
            while si < len(spans) and a >= spans[si][1]:
                si += 1
            if si < len(spans) and spans[si][0] <= a < spans[si][1] and b > a:
                mask[ti] = 1
        return Encoded(enc.ids, mask)

    def encode_examples(self, messages: list[dict], tools=None, mask_reasoning: bool = False) -> list[Encoded]:
        return [self._encode(e.text, e.spans) for e in self.examples(messages, tools, mask_reasoning)]

    def encode_conversation(self, messages: list[dict], tools=None, mask_reasoning: bool = False) -> Encoded:
        """The conversation as one sequence: the last example, which holds every turn as
        inference sees it (with only its own answers trained when the template splits)."""
        return self.encode_examples(messages, tools, mask_reasoning)[-1]

    def completion(self, prompt: list[dict], answer: list[dict], tools=None) -> tuple[str, str]:
        """(inference prompt, what the model produces after it: `answer` and its end of turn)."""
        msgs = _plain(prompt + answer)
        t = turn(self, msgs, len(prompt), tools, end=len(msgs))
        return t.prompt, t.completion

    def encode_text(self, text: str) -> Encoded:
        ids = self.encode(text)
        if self.eos_id is not None:
            ids.append(self.eos_id)
        return Encoded(ids, [1] * len(ids))

    def segments(self, messages: list[dict], tools=None, mask_reasoning: bool = False) -> list[tuple[str, bool]]:
        """(text, trained) pieces of the rendered conversation, for previews; examples
        after the first are introduced by a separator line."""
        out: list[tuple[str, bool]] = []
        for n, enc in enumerate(self.encode_examples(messages, tools, mask_reasoning)):
            if n:
                out.append((f"\n── example {n + 1}: the next answer with its own prompt ──\n", False))
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
