"""What a chat template does with a conversation, found by rendering probes (never by the
model's name): the token that ends an answer, where a system prompt goes, and whether
history renders differently from the live turn.

Where the template has no system role (it raises, or drops the text), the system prompt is
folded into the first user turn the way Gemma 3's own template does it, by a wrapper
around the template. The wrapped template is what training renders and what is saved with
the adapter and the merged model, so serving (transformers serve, vLLM, llama.cpp) folds
it the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

SENTINEL = "SAGEPROBE7"
SYSTEM_PROBE = "SAGESYSTEM7"

# Prepended to a template without a system role: a leading system message becomes the
# start of the first user turn ("system\n\nuser"), Gemma 3's convention.
SYSTEM_FOLD = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set _sage_sys = messages[0]['content'] if messages[0]['content'] is string "
    "else messages[0]['content'] | map(attribute='text') | join('') -%}"
    "{%- set _sage_rest = messages[1:] -%}"
    "{%- if _sage_rest and _sage_rest[0]['role'] == 'user' and _sage_rest[0]['content'] is string -%}"
    "{%- set messages = [{'role': 'user', 'content': _sage_sys + '\\n\\n' + _sage_rest[0]['content']}]"
    " + _sage_rest[1:] -%}"
    "{%- elif _sage_rest and _sage_rest[0]['role'] == 'user' -%}"
    "{%- set messages = [{'role': 'user', 'content': [{'type': 'text', 'text': _sage_sys + '\\n\\n'}]"
    " + _sage_rest[0]['content']}] + _sage_rest[1:] -%}"
    "{%- else -%}"
    "{%- set messages = [{'role': 'user', 'content': _sage_sys}] + _sage_rest -%}"
    "{%- endif -%}"
    "{%- endif -%}"
)
FOLD_MARK = "_sage_sys"

SYSTEM_NATIVE = "native"
SYSTEM_FOLDED = "folded into the first user turn"
SYSTEM_LAST_USER = "placed in the last user turn"


@dataclass(frozen=True)
class TemplateFacts:
    """What the template does, for the Model step, `doctor`, warnings and export."""

    end_of_turn: Optional[str]  # the token that ends an answer (trained with it)
    stop_tokens: tuple[str, ...]  # every token that ends generation
    system: str  # SYSTEM_NATIVE, SYSTEM_FOLDED or SYSTEM_LAST_USER
    system_fold: bool  # we fold it (the template has no system role)
    history: Optional[str]  # why earlier turns render differently from the live one
    appended: bool  # the template renders no end of turn: end_of_turn is added after answers

    def summary(self) -> str:
        eot = self.end_of_turn or "none"
        parts = [f"end of turn {eot}" + (" (added: the template has none)" if self.appended else "")]
        parts.append(f"system prompt {self.system}" + (" (by sage-ft-tui)" if self.system_fold else ""))
        if self.history:
            parts.append(self.history)
        return "; ".join(parts)


def lacks_system(render: Callable[..., str]) -> bool:
    """True when the template refuses a system message or renders nothing of it."""
    try:
        out = render(
            [{"role": "system", "content": SYSTEM_PROBE}, {"role": "user", "content": "hi"}],
            add_generation_prompt=True,
        )
    except Exception:
        return True
    return SYSTEM_PROBE not in out


def system_place(render: Callable[..., str]) -> str:
    """Where a (possibly folded) system prompt lands in a two-turn conversation."""
    conv = [
        {"role": "system", "content": SYSTEM_PROBE},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "u2"},
    ]
    try:
        out = render(conv, add_generation_prompt=True)
    except Exception:
        return SYSTEM_NATIVE
    pos, a1 = out.find(SYSTEM_PROBE), out.find("a1")
    if pos > a1 >= 0:
        return SYSTEM_LAST_USER
    folded = render(
        [{"role": "user", "content": SYSTEM_PROBE + "\n\nu1"}, *conv[2:]],
        add_generation_prompt=True,
    )
    return SYSTEM_FOLDED if folded == out else SYSTEM_NATIVE


def history_note(render: Callable[..., str]) -> Optional[str]:
    """Why a template renders an earlier answer differently from the live one, if it does."""
    conv = [
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1", "reasoning_content": "r1"},
        {"role": "user", "content": "u2"},
    ]
    try:
        live = render(conv[:2])
        later = render(conv, add_generation_prompt=True)
    except Exception:
        return None
    if "r1" in live and "r1" not in later:
        return "reasoning is dropped from earlier turns"
    return None


def stop_token_strings(eos_token: Optional[str], gen_eos_ids, id_to_token: Callable[[int], Optional[str]]) -> list:
    ids = gen_eos_ids if isinstance(gen_eos_ids, list) else [gen_eos_ids] if gen_eos_ids is not None else []
    out = [t for t in (id_to_token(int(i)) for i in ids) if t]
    if eos_token and eos_token not in out:
        out.append(eos_token)
    return out


def find_end_of_turn(suffix: str, stops: list[str], specials: list[str]) -> Optional[str]:
    """The first stop token after an answer's text; else the first special token there (a
    template's own end of turn that generation_config forgot); else None."""
    best: Optional[tuple[int, str]] = None
    for group in (stops, specials):
        for t in group:
            p = suffix.find(t)
            if p >= 0 and (best is None or p < best[0]):
                best = (p, t)
        if best:
            return best[1]
    return None


__all__ = [
    "TemplateFacts",
    "SYSTEM_FOLD",
    "FOLD_MARK",
    "SENTINEL",
    "SYSTEM_NATIVE",
    "SYSTEM_FOLDED",
    "SYSTEM_LAST_USER",
    "lacks_system",
    "system_place",
    "history_note",
    "stop_token_strings",
    "find_end_of_turn",
]
