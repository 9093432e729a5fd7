"""GRPO reward functions: the built-in verifiable rewards and `file.py:function` loading.

A reward function takes TRL's keyword arguments (`prompts`, `completions`, and every
other dataset column, here `answer`) and returns one float per completion. Its name is
what the event stream logs it under (`reward_<name>`). Torch-free.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import math
import re
import subprocess
import sys
import traceback
import unicodedata
from pathlib import Path
from typing import Any, Callable, Optional

from sage_ft_tui.engine.data.rows import shown
from sage_ft_tui.engine.errors import SageError, clip

# The built-in rewards and what each scores, in one line (the wizard's Method step shows it).
REWARD_HELP: dict[str, str] = {
    "exact_match": "1 when the final answer (<answer>, \\boxed{}, after ####) equals the reference, else 0",
    "number_match": "1 when the last number of the final answer equals the reference's number, else 0",
    "format": "1 when the whole completion matches the format pattern (format_regex), else 0",
    "length": "0 up to the target length (target_length characters), down to -1 at twice that length",
}
BUILTIN_REWARDS: tuple[str, ...] = tuple(REWARD_HELP)
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


def last_number(text: str) -> Optional[float]:
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
        got, want = last_number(final_answer(_text(c))), last_number(str(a))
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
            f"reward {shown(spec)!r}: expected a built-in ({', '.join(BUILTIN_REWARDS)}) or FILE.py:FUNCTION",
            hint="e.g. --reward exact_match or --reward my_rewards.py:score",
            kind="config",
        )
    return Path(path).expanduser(), fn


def check_format_regex(pattern: str) -> None:
    """Refuse a grpo.format_regex that does not compile (the format reward would fail mid-run)."""
    try:
        re.compile(pattern)
    except re.error as e:
        at = f" at position {e.pos}" if e.pos is not None else ""
        raise SageError(
            f"grpo.format_regex {shown(pattern)!r} is not a valid regular expression ({e.msg}{at})",
            hint="fix the pattern (Python `re` syntax; the whole completion must match it)",
            kind="config",
        ) from None


def check_reward(spec: str) -> None:
    """Refuse a reward the worker could not load, without running the user's file: the file
    exists, compiles, and defines the function."""
    if spec in BUILTIN_REWARDS:
        return
    path, fn = _split_spec(spec)
    if not path.is_file():
        raise SageError(f"reward {spec!r}: no file {path}", hint="give the path of a Python file", kind="config")
    try:
        source = path.read_text(encoding="utf-8")
        compile(source, str(path), "exec")
    except SyntaxError as e:
        raise SageError(
            f"reward {spec!r}: {path}:{e.lineno}: syntax error ({e.msg})",
            hint=f"fix line {e.lineno} of {path.name} (python {path.name} shows it)",
            kind="config",
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise SageError(f"reward {spec!r}: cannot read {path} ({e})", hint="check the file", kind="config") from None
    if not re.search(rf"^\s*(async\s+)?def\s+{re.escape(fn)}\s*\(|^{re.escape(fn)}\s*=", source, re.M):
        raise SageError(
            f"reward {spec!r}: {path} defines no function {fn!r}",
            hint=f"define def {fn}(completions, answer, **kwargs) -> list[float] in {path.name}",
            kind="config",
        )


def _user_line(exc: BaseException, path: Path) -> Optional[int]:
    """The line of `path` where `exc` was raised (the deepest frame in the user's file)."""
    line = None
    for fr in traceback.extract_tb(exc.__traceback__):
        if Path(fr.filename).resolve() == path:
            line = fr.lineno
    return line


def load_reward(spec: str, *, format_regex: str = r"(?s).*\S", target_length: int = 200) -> Callable:
    """A built-in reward by name, or the function `fn` of the Python file in 'file.py:fn',
    wrapped by `guard` (its failures and bad values become one SageError line)."""
    if spec == "exact_match":
        return exact_match
    if spec == "number_match":
        return number_match
    if spec == "format":
        check_format_regex(format_regex)
        return format_reward(format_regex)
    if spec == "length":
        return length_penalty(target_length)
    check_reward(spec)
    path, fn_name = _split_spec(spec)
    path = path.resolve()
    mod_name = f"sage_user_rewards_{abs(hash(str(path)))}"
    try:
        loader = importlib.util.spec_from_file_location(mod_name, path)
        assert loader is not None and loader.loader is not None
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    except (Exception, SystemExit) as e:
        line = _user_line(e, path) or getattr(e, "lineno", None)
        at = f"{path}:{line}" if line else str(path)
        raise SageError(
            f"reward {spec!r}: {at} failed to load: {_exc_text(e)}",
            hint="fix the file (python " + path.name + " shows the error)",
            kind="config",
        ) from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise SageError(
            f"reward {spec!r}: {fn_name} in {path} is not a function", hint="point at a function", kind="config"
        )
    return guard(fn, spec, path)


def _exc_text(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        return f"it called sys.exit({shown(e.code)})"
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {clip(text, 120)}" if text else type(e).__name__


def guard(fn: Callable, spec: str, path: Path) -> Callable:
    """`fn` as TRL calls it, with its failures and bad values (None, strings, NaN, the wrong
    count) turned into one SageError naming the file, the function, the line and the value."""
    name = getattr(fn, "__name__", spec)
    code = getattr(fn, "__code__", None)
    def_line = code.co_firstlineno if code is not None else None
    at_def = f"{path}:{def_line}" if def_line else str(path)
    hint = f"return one number per completion from {name}, e.g. [1.0 if ok(c) else 0.0 for c in completions]"

    def failed(e: BaseException) -> SageError:
        line = _user_line(e, path)
        at = f"{path}:{line}" if line else at_def
        return SageError(
            f"reward {name} ({at}) failed: {_exc_text(e)}",
            hint=f"fix {path.name} (it is called with completions, answer, prompts and **kwargs)",
            kind="config",
        )

    def checked(out: Any, n: int) -> list:
        if out is None:
            raise SageError(f"reward {name} ({at_def}) returned None, not a list of {n} numbers", hint=hint)
        if isinstance(out, (str, bytes, dict)) or not hasattr(out, "__len__"):
            raise SageError(
                f"reward {name} ({at_def}) returned {type(out).__name__} {shown(repr(out))}, not a list of {n} numbers",
                hint=hint,
            )
        vals = list(out)
        if len(vals) != n:
            raise SageError(
                f"reward {name} ({at_def}) returned {len(vals)} value{'s' if len(vals) != 1 else ''} for {n} completions",
                hint=hint,
            )
        for i, v in enumerate(vals):
            if v is None:
                continue  # TRL: None means "does not apply to this completion"
            bad = isinstance(v, (str, bytes))
            if not bad:
                try:
                    x = float(v)
                except (TypeError, ValueError):
                    bad = True
            if bad:
                raise SageError(
                    f"reward {name} ({at_def}) returned {shown(repr(v))} ({type(v).__name__}) for completion {i}, "
                    "not a number",
                    hint=hint,
                )
            if not math.isfinite(x):
                raise SageError(
                    f"reward {name} ({at_def}) returned {x} for completion {i}: rewards must be finite numbers",
                    hint=f"make {name} return a finite number (or None where it does not apply)",
                )
        return vals

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def guarded_async(*args, **kw):
            try:
                out = await fn(*args, **kw)
            except (Exception, SystemExit) as e:
                raise failed(e) from None
            return checked(out, len(kw.get("completions") or (args[0] if args else [])))

        return guarded_async

    @functools.wraps(fn)
    def guarded(*args, **kw):
        try:
            out = fn(*args, **kw)
        except (Exception, SystemExit) as e:
            raise failed(e) from None
        return checked(out, len(kw.get("completions") or (args[0] if args else [])))

    return guarded


def reward_name(fn: Callable) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


# ---- the check at start: each user reward imported and called on one sample -------------

PROBE_TIMEOUT_S = 120.0
OTHER_COMPLETION = "I do not know."  # a second completion of the sample, so a reward of the wrong length shows


def probe_rewards(
    specs: list[str],
    sample: dict,
    *,
    format_regex: str = r"(?s).*\S",
    timeout: float = PROBE_TIMEOUT_S,
) -> None:
    """Import every FILE.py:FUNCTION reward and call it on `sample` ({"prompt", "answer",
    and any other columns}) with two completions (the reference answer and another), as
    TRL would, in a child process: its import, sys.exit, a hang (`timeout`) or a crash
    cannot touch the caller (the TUI never imports torch; a reward may). Raises SageError."""
    check_format_regex(format_regex)
    user = [s for s in specs if s not in BUILTIN_REWARDS]
    for s in user:
        check_reward(s)
    if not user:
        return
    payload = json.dumps({"specs": user, "sample": sample}, ensure_ascii=False, default=str)
    from sage_ft_tui.engine.proc import run_in_group

    code = "from sage_ft_tui.engine.methods.grpo_rewards import _probe_child; _probe_child()"
    try:  # its own process group: a reward that starts processes is ended with it
        proc = run_in_group([sys.executable, "-c", code], input=payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SageError(
            f"reward {', '.join(user)}: no answer within {timeout:.0f}s on one sample (it never returned)",
            hint="make the reward return promptly (a loop that never ends, or input() waiting?)",
            kind="config",
        ) from None
    out, err = proc.stdout, proc.stderr
    for line in reversed(out.split("\n")):
        if line.startswith(_PROBE_MARK):
            res = json.loads(line[len(_PROBE_MARK) :])
            if res.get("error"):
                raise SageError(res["error"], hint=res.get("hint", ""), kind="config")
            return
    tail = [ln for ln in err.splitlines() if ln.strip()][-1:] or ["no output"]
    how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"code {proc.returncode}"
    raise SageError(
        f"reward {', '.join(user)}: the process checking it ended with {how} before answering ({shown(tail[0], 160)})",
        hint="run the reward on one sample by hand to see why (it may call os._exit or crash the interpreter)",
        kind="config",
    )


_PROBE_MARK = "@@sage-reward-probe@@ "


def _probe_child() -> None:
    """The child side of probe_rewards: stdin a JSON payload, one marked JSON line on stdout."""
    import asyncio
    import os

    result_fd = os.dup(1)
    os.dup2(2, 1)  # what the user's code prints goes to stderr, never into the answer
    res: dict = {}
    try:
        payload = json.loads(sys.stdin.read())
        sample = payload["sample"]
        prompts = [sample.get("prompt", "")] * 2
        completions = [str(sample.get("answer", "")), OTHER_COMPLETION]
        columns = {k: [v, v] for k, v in sample.items() if k not in ("prompt", "completion", "completion_ids")}
        for spec in payload["specs"]:
            fn = load_reward(spec)
            kw: dict[str, Any] = dict(
                prompts=prompts,
                completions=completions,
                completion_ids=[[], []],
                trainer_state=None,
                log_extra=lambda *a, **k: None,
                log_metric=lambda *a, **k: None,
                **columns,
            )
            out = fn(**kw)
            if inspect.isawaitable(out):
                asyncio.run(out)  # type: ignore[arg-type]
    except SageError as e:
        res = {"error": e.message, "hint": e.hint}
    except BaseException as e:  # noqa: BLE001 - anything else is reported, never a traceback
        res = {"error": f"reward check failed: {_exc_text(e)}", "hint": "run the reward by hand to see why"}
    with os.fdopen(result_fd, "w") as fh:
        fh.write(_PROBE_MARK + json.dumps(res) + "\n")
