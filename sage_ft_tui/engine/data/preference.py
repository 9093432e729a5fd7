"""Preference and GRPO rows: normalisation (with the reason a row is bad) and tokenization.

Shapes (auto-detected by formats.row_format as `pairs` / `kto`):
- pairs: `prompt` + `chosen` + `rejected`, each text or a message list (TRL's standard and
  conversational shapes; a prompt may be implicit in full chosen/rejected conversations,
  as in UltraFeedback-binarized); ShareGPT `conversations` with `chosen`/`rejected` turns
  (LLaMA-Factory's dpo demo); alpaca `instruction`/`input` with `chosen`/`rejected`;
  LLaMA-Factory v1 `chosen_messages`/`rejected_messages`; raw UltraFeedback `completions`
  with scores (best vs worst).
- kto: one answer with a boolean `label` (`prompt`/`completion`, `messages` or
  `conversations`, as in LLaMA-Factory's kto demo).
- grpo: a prompt (any SFT shape without its answer) and a reference answer column.

Normalised records: {"prompt": [msgs], "chosen": [msgs], "rejected": [msgs]} (pairs),
{"prompt": [msgs], "completion": [msgs], "label": bool} (kto), {"prompt": [msgs],
"answer": str} (grpo); each with "tools" when the row has them. Tokenization renders the
prompt once with the generation prompt, so chosen and rejected share its tokens exactly.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from sage_ft_tui.engine.data.formats import (
    SHAREGPT_ROLES,
    RowError,
    is_trained_answer,
    normalize,
    row_format,
)

LABEL_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
SCORE_KEYS = ("overall_score", "score", "rating")


def _turns(v: Any, name: str) -> list[dict]:
    """An answer or a prompt given as text, one ShareGPT/OpenAI turn, or a list of turns."""
    if v is None or (isinstance(v, str) and not v.strip()):
        raise RowError(f"missing answer {name!r}" if name != "prompt" else "empty prompt")
    if isinstance(v, str):
        return [{"role": "user" if name == "prompt" else "assistant", "content": v}]
    if isinstance(v, dict):
        v = [v]
    if not isinstance(v, list) or not v:
        raise RowError(f"field {name!r} must be text or a list of messages")
    msgs = []
    for t in v:
        if isinstance(t, dict) and "from" in t and "role" not in t:  # ShareGPT turn
            t = {"role": SHAREGPT_ROLES.get(str(t["from"]).lower(), str(t["from"])), "content": t.get("value")}
        msgs.append(t)
    try:
        # The messages normaliser checks roles and parts; it wants an answer, so give it one to drop.
        return normalize({"messages": msgs + [{"role": "assistant", "content": "-"}]}, "messages")["messages"][:-1]
    except RowError as e:
        raise RowError(f"{name}: {e}") from None


def _prompt(d: dict, system_prompt: Optional[str]) -> list[dict]:
    """The prompt messages of a preference/GRPO row (may be empty: an implicit prompt)."""
    if "conversations" in d:
        msgs = _turns(d["conversations"], "prompt")
    elif "messages" in d and "label" not in d:
        msgs = _turns(d["messages"], "prompt")
    elif "instruction" in d:
        ins = d.get("instruction")
        if not isinstance(ins, str) or not ins.strip():
            raise RowError("empty prompt")
        inp = d["input"] if isinstance(d.get("input"), str) else ""
        msgs = [{"role": "user", "content": f"{ins}\n\n{inp}" if inp.strip() else ins}]
    elif "question" in d:
        msgs = _turns(d.get("question"), "prompt")
    elif "prompt" in d:
        msgs = _turns(d.get("prompt"), "prompt")
    else:
        msgs = []
    sys_ = d.get("system") if isinstance(d.get("system"), str) and d["system"].strip() else system_prompt
    if sys_ and not (msgs and msgs[0]["role"] == "system"):
        msgs.insert(0, {"role": "system", "content": sys_})
    return msgs


def _split_implicit(chosen: list[dict], rejected: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """Full chosen/rejected conversations → (shared prompt, chosen answer, rejected answer)."""
    n = 0
    while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
        n += 1
    while n and chosen[n - 1]["role"] == "assistant":  # the answers start after the last shared question
        n -= 1
    return chosen[:n], chosen[n:], rejected[n:]


def _answer(msgs: list[dict], name: str) -> list[dict]:
    if not msgs or not any(is_trained_answer(m) for m in msgs):
        raise RowError(f"missing answer {name!r}")
    if msgs[0]["role"] != "assistant":
        raise RowError(f"{name!r} must start with the assistant's answer, not a {msgs[0]['role']} turn")
    return msgs


def _ultrafeedback(d: dict) -> tuple[Any, Any]:
    scored = []
    for c in d["completions"]:
        if not isinstance(c, dict):
            continue
        score = next((c[k] for k in SCORE_KEYS if isinstance(c.get(k), (int, float))), None)
        if score is None and isinstance(c.get("fine-grained_score"), (int, float)):
            score = c["fine-grained_score"]
        text = c.get("response") or c.get("text")
        if score is not None and isinstance(text, str) and text.strip():
            scored.append((float(score), text))
    if len(scored) < 2:
        raise RowError("fewer than two scored completions to compare")
    scored.sort(key=lambda s: s[0])
    if scored[0][0] == scored[-1][0]:
        raise RowError("every completion has the same score: no preference to learn")
    return scored[-1][1], scored[0][1]


def _tools(d: dict) -> dict:
    rec = normalize({"messages": [{"role": "assistant", "content": "-"}], "tools": d["tools"]}, "messages")
    return {"tools": rec["tools"]} if "tools" in rec else {}


def normalize_pair(d: Any, system_prompt: Optional[str] = None) -> dict:
    """A pairs row → {"prompt", "chosen", "rejected"(, "tools")}. Raises RowError."""
    if not isinstance(d, dict):
        raise RowError(f"a {type(d).__name__}, expected an object with fields")
    if "chosen_messages" in d or "rejected_messages" in d:
        chosen = _turns(d.get("chosen_messages"), "chosen")
        rejected = _turns(d.get("rejected_messages"), "rejected")
        prompt, chosen, rejected = _split_implicit(chosen, rejected)
    elif "completions" in d and "chosen" not in d:
        c, r = _ultrafeedback(d)
        prompt, chosen, rejected = _prompt(d, system_prompt), _turns(c, "chosen"), _turns(r, "rejected")
    else:
        if d.get("chosen") is None or d.get("chosen") == "":
            raise RowError("missing answer 'chosen'")
        if d.get("rejected") is None or d.get("rejected") == "":
            raise RowError("missing answer 'rejected'")
        prompt = _prompt(d, system_prompt)
        chosen, rejected = _turns(d["chosen"], "chosen"), _turns(d["rejected"], "rejected")
        if chosen[0]["role"] != "assistant" or rejected[0]["role"] != "assistant":
            shared, chosen, rejected = _split_implicit(chosen, rejected)  # UltraFeedback-binarized
            prompt = shared or prompt
    if chosen == rejected:
        raise RowError("chosen and rejected are the same answer")
    if not any(m["role"] == "user" and m["content"].strip() for m in prompt):
        raise RowError("empty prompt")
    rec = {"prompt": prompt, "chosen": _answer(chosen, "chosen"), "rejected": _answer(rejected, "rejected")}
    return rec | (_tools(d) if d.get("tools") is not None else {})


def _label(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in LABEL_WORDS:
        return LABEL_WORDS[v.strip().lower()]
    raise RowError(f"field 'label' must be true or false, got {v!r}")


def normalize_kto(d: Any, system_prompt: Optional[str] = None) -> dict:
    """A kto row → {"prompt", "completion", "label"(, "tools")}. Raises RowError."""
    if not isinstance(d, dict):
        raise RowError(f"a {type(d).__name__}, expected an object with fields")
    label = _label(d.get("label"))
    if "completion" in d:
        prompt = _prompt(d, system_prompt)
        completion = _turns(d.get("completion"), "completion")
    else:
        key = "messages" if "messages" in d else "conversations"
        conv = _turns(d.get(key), "prompt")
        cut = len(conv)
        while cut and conv[cut - 1]["role"] == "assistant":
            cut -= 1
        prompt, completion = conv[:cut], conv[cut:]
        sys_ = system_prompt if not (prompt and prompt[0]["role"] == "system") else None
        prompt = ([{"role": "system", "content": sys_}] if sys_ else []) + prompt
    if not any(m["role"] == "user" and m["content"].strip() for m in prompt):
        raise RowError("empty prompt")
    rec = {"prompt": prompt, "completion": _answer(completion, "completion"), "label": label}
    return rec | (_tools(d) if d.get("tools") is not None else {})


def normalize_prompt(d: Any, answer_field: str = "answer", system_prompt: Optional[str] = None) -> dict:
    """A GRPO row → {"prompt", "answer"(, "tools")}: the prompt of any SFT shape and the
    reference answer (the `answer_field` column, else the row's last assistant turn)."""
    if not isinstance(d, dict):
        raise RowError(f"a {type(d).__name__}, expected an object with fields")
    answer = d.get(answer_field)
    conv = _prompt(d, system_prompt)
    if answer is None:
        fmt = row_format(d)
        if fmt in ("alpaca", "qa", "prompt_completion", "sharegpt", "messages"):
            msgs = normalize(d, fmt, system_prompt)["messages"]
            answer = msgs[-1]["content"]
            conv = msgs[:-1]
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str) or not answer.strip():
        raise RowError(f"missing reference answer {answer_field!r}")
    while conv and conv[-1]["role"] == "assistant":
        conv = conv[:-1]
    if not any(m["role"] == "user" and m["content"].strip() for m in conv):
        raise RowError("empty prompt")
    return {"prompt": conv, "answer": answer} | (_tools(d) if d.get("tools") is not None else {})


# ---- tokenization ------------------------------------------------------------------------


def _tools_of(rec: dict):
    return json.loads(rec["tools"]) if rec.get("tools") else None


def prompt_text(tok, rec: dict) -> str:
    """The prompt as the model sees it before answering (with the generation prompt)."""
    return tok.render(rec["prompt"], add_generation_prompt=True, tools=_tools_of(rec))


def completion_text(tok, rec: dict, answer: list[dict]) -> str:
    """What the model produces after the inference prompt when `answer` is given: the answer
    as the template renders it and the family's end of turn, never any prompt text."""
    return tok.completion(rec["prompt"], answer, tools=_tools_of(rec))[1]


def encode_preference(tok, rec: dict) -> dict:
    """Token ids for TRL: prompt_ids + chosen_ids/rejected_ids (pairs) or completion_ids + label (kto)."""
    prompt_ids = tok.encode(prompt_text(tok, rec))
    if "completion" in rec:
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": tok.encode(completion_text(tok, rec, rec["completion"])),
            "label": bool(rec["label"]),
        }
    return {
        "prompt_ids": prompt_ids,
        "chosen_ids": tok.encode(completion_text(tok, rec, rec["chosen"])),
        "rejected_ids": tok.encode(completion_text(tok, rec, rec["rejected"])),
    }


def sequence_lengths(tok, rec: dict) -> tuple[int, int]:
    """(tokens of the longest prompt+answer sequence, scored tokens) of a record."""
    if "answer" in rec:
        n = len(tok.encode(prompt_text(tok, rec)))
        return n, 0
    enc = encode_preference(tok, rec)
    answers = [v for k, v in enc.items() if k in ("chosen_ids", "rejected_ids", "completion_ids")]
    return len(enc["prompt_ids"]) + max(len(a) for a in answers), sum(len(a) for a in answers)


def preview_pair(tok, rec: dict) -> dict:
    """The rendered prompt and each answer, for the Data step's side-by-side preview."""
    out: dict[str, Any] = {"prompt": prompt_text(tok, rec)}
    for key in ("chosen", "rejected", "completion"):
        if key in rec:
            out[key] = completion_text(tok, rec, rec[key])
    if "label" in rec:
        out["label"] = bool(rec["label"])
    if "answer" in rec:
        out["answer"] = rec["answer"]
    return out
