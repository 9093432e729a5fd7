"""GRPO reward functions: the built-in verifiable rewards and `file.py:function` loading.

A reward function takes TRL's keyword arguments (`prompts`, `completions`, and every
other dataset column, here `answer`) and returns one float per completion. Its name is
what the event stream logs it under (`reward_<name>`). Torch-free.
"""

from __future__ import annotations

import importlib.util
import math
import re
import unicodedata
from pathlib import Path
from typing import Callable, Optional

from sage_ft_tui.engine.errors import SageError

BUILTIN_REWARDS = ("exact_match", "number_match", "format", "length")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")


def final_answer(completion: str) -> str:
    """The answer part of a completion: <answer>…</answer>, \\boxed{…}, after '####', else all of it."""
    for pat in (_ANSWER_TAG, _BOXED):
        found = pat.findall(completion)
        if found:
            return found[-1]
    if "####" in completion:
        return completion.rsplit("####", 1)[1]
    return completion


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().strip()
    text = re.sub(r"\s+", " ", text)
    return text.strip(" .!?;:'\"`")


def _number(text: str) -> Optional[float]:
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def _text(c) -> str:
    # conversational completions are [{"role": "assistant", "content": ...}]
    if isinstance(c, list):
        return "".join(m.get("content") or "" for m in c if isinstance(m, dict))
    return str(c)


def exact_match(completions, answer, **_) -> list[float]:
    return [float(normalise(final_answer(_text(c))) == normalise(str(a))) for c, a in zip(completions, answer)]


def number_match(completions, answer, **_) -> list[float]:
    out = []
    for c, a in zip(completions, answer):
        got, want = _number(final_answer(_text(c))), _number(str(a))
        out.append(float(got is not None and want is not None and math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)))
    return out


def format_reward(pattern: str) -> Callable:
    rx = re.compile(pattern)

    def format(completions, **_) -> list[float]:  # noqa: A001 - the name is what the events log
        return [float(rx.fullmatch(_text(c).strip()) is not None) for c in completions]

    return format


def length_penalty(target: int) -> Callable:
    def length(completions, **_) -> list[float]:
        return [-min(1.0, max(0, len(_text(c)) - target) / target) for c in completions]

    return length


def _split_spec(spec: str) -> tuple[Path, str]:
    path, _, fn = spec.rpartition(":")
    if not path or not fn.isidentifier():
        raise SageError(
            f"reward {spec!r}: expected a built-in ({', '.join(BUILTIN_REWARDS)}) or FILE.py:FUNCTION",
            hint="e.g. --reward exact_match or --reward my_rewards.py:score",
            kind="config",
        )
    return Path(path).expanduser(), fn


def check_reward(spec: str) -> None:
    """Refuse a reward the worker could not load, without running the user's file."""
    if spec in BUILTIN_REWARDS:
        return
    path, fn = _split_spec(spec)
    if not path.is_file():
        raise SageError(f"reward {spec!r}: no file {path}", hint="give the path of a Python file", kind="config")
    if not re.search(rf"^\s*(async\s+)?def\s+{re.escape(fn)}\s*\(|^{re.escape(fn)}\s*=", path.read_text(), re.M):
        raise SageError(
            f"reward {spec!r}: {path} defines no function {fn!r}",
            hint=f"define def {fn}(completions, answer, **kwargs) -> list[float] in {path.name}",
            kind="config",
        )


def load_reward(spec: str, *, format_regex: str = r"(?s).*\S", target_length: int = 200) -> Callable:
    """A built-in reward by name, or the function `fn` of the Python file in 'file.py:fn'."""
    if spec == "exact_match":
        return exact_match
    if spec == "number_match":
        return number_match
    if spec == "format":
        return format_reward(format_regex)
    if spec == "length":
        return length_penalty(target_length)
    check_reward(spec)
    path, fn_name = _split_spec(spec)
    mod_name = f"sage_user_rewards_{abs(hash(str(path.resolve())))}"
    try:
        loader = importlib.util.spec_from_file_location(mod_name, path)
        assert loader is not None and loader.loader is not None
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    except Exception as e:
        raise SageError(
            f"reward {spec!r}: {path} failed to load: {type(e).__name__}: {e}",
            hint="fix the file (run it with python to see the error)",
            kind="config",
        ) from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise SageError(f"reward {spec!r}: {fn_name} is not a function", hint="point at a function", kind="config")
    return fn


def reward_name(fn: Callable) -> str:
    return getattr(fn, "__name__", type(fn).__name__)
