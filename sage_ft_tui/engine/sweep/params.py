"""`--param KEY=DIST:ARGS`: what a sweep searches, parsed and checked against the config schema
before any trial starts (one line per bad input: what, where, what to do)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import yaml

from sage_ft_tui.engine.config.schema import RunConfig, get_dotted, parse_set, set_dotted
from sage_ft_tui.engine.errors import SageError

# distribution -> what its ARGS are (said in the hint of every refusal)
DISTRIBUTIONS: dict[str, str] = {
    "loguniform": "LOW,HIGH (numbers, 0 < LOW < HIGH; sampled on a log scale)",
    "uniform": "LOW,HIGH (numbers, LOW < HIGH)",
    "int": "LOW,HIGH (whole numbers, LOW < HIGH)",
    "choice": "A,B,... (two or more values)",
}
EXAMPLE = "e.g. --param training.learning_rate=loguniform:1e-5,1e-3 --param lora.r=choice:8,16,32"
# Keys a trial may not vary: the sweep names each trial's run itself.
FIXED_KEYS = ("name", "version")


@dataclass(frozen=True)
class Param:
    key: str  # dotted config key (aliases resolved: lr -> training.learning_rate)
    dist: str  # one of DISTRIBUTIONS
    args: tuple  # (low, high) or the choices

    @property
    def text(self) -> str:
        return f"{self.key}={self.dist}:{','.join(_fmt(a) for a in self.args)}"

    def to_dict(self) -> dict:
        return {"key": self.key, "dist": self.dist, "args": list(self.args)}

    @classmethod
    def from_dict(cls, d: dict) -> Param:
        return cls(str(d["key"]), str(d["dist"]), tuple(d["args"]))

    def optuna_distribution(self):
        """The Optuna distribution (imported here: only the driver and the CLI load optuna)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.dist == "choice":
            return CategoricalDistribution(list(self.args))
        if self.dist == "int":
            return IntDistribution(int(self.args[0]), int(self.args[1]))
        return FloatDistribution(float(self.args[0]), float(self.args[1]), log=self.dist == "loguniform")


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _refuse(item: str, problem: str, hint: str = "") -> SageError:
    return SageError(f"--param {item}: {problem}", hint=hint or EXAMPLE)


def _scalar(text: str) -> Any:
    """A value as written on the command line: 1e-5 is a number (YAML 1.1 would read text)."""
    t = text.strip()
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    try:
        return yaml.safe_load(t)
    except yaml.YAMLError:
        return t


def _number(item: str, text: str, whole: bool) -> float | int:
    v = _scalar(text)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
        kind = "a whole number" if whole else "a number"
        raise _refuse(item, f"{text.strip()!r} is not {kind}")
    if whole and v != int(v):
        raise _refuse(
            item, f"{text.strip()!r} is not a whole number", "int: takes whole numbers; use uniform: for others"
        )
    return int(v) if whole else float(v)


def parse_param(item: str) -> Param:
    """One `--param` value → a Param; the key is resolved but not yet checked (check_params)."""
    if "=" not in item or ":" not in item.partition("=")[2]:
        raise _refuse(item, "expected KEY=DIST:ARGS")
    key, _ = parse_set(item.partition("=")[0] + "=")  # the config's own key aliases (lr, epochs, ...)
    spec = item.partition("=")[2]
    dist, _, raw = spec.partition(":")
    dist = dist.strip().lower()
    if not key:
        raise _refuse(item, "no config key before '='")
    if dist not in DISTRIBUTIONS:
        raise _refuse(item, f"unknown distribution {dist!r}", f"use one of: {', '.join(DISTRIBUTIONS)}")
    parts = [p for p in raw.split(",")]
    if any(not p.strip() for p in parts):
        raise _refuse(item, "an empty value in ARGS", f"{dist}: takes {DISTRIBUTIONS[dist]}")
    if dist == "choice":
        values = [_scalar(p) for p in parts]
        if len(values) < 2 or len({repr(v) for v in values}) != len(values):
            raise _refuse(
                item, "choice: needs two or more different values", f"choice: takes {DISTRIBUTIONS['choice']}"
            )
        if not all(isinstance(v, (str, int, float, bool)) or v is None for v in values):
            raise _refuse(item, "choice: values are numbers, words, true/false or null", EXAMPLE)
        return Param(key, dist, tuple(values))
    if len(parts) != 2:
        raise _refuse(
            item, f"{dist}: takes two values, LOW,HIGH (got {len(parts)})", f"{dist}: takes {DISTRIBUTIONS[dist]}"
        )
    lo, hi = (_number(item, p, dist == "int") for p in parts)
    if lo >= hi:
        raise _refuse(
            item, f"LOW ({_fmt(lo)}) must be below HIGH ({_fmt(hi)})", "swap them, or use choice: for one value"
        )
    if dist == "loguniform" and lo <= 0:
        raise _refuse(item, f"loguniform: LOW must be above 0 (got {_fmt(lo)})", "use uniform: for a range from 0")
    return Param(key, dist, (lo, hi))


def _with(base: dict, key: str, value: Any) -> dict:
    data = copy.deepcopy(base)
    set_dotted(data, key, value, source="--param")
    return data


def check_params(base: RunConfig, params: list[Param]) -> None:
    """Each key is a setting of the schema (not a section, not the run's name), given once, and
    every value a trial could get at the ends of its range is one the schema accepts."""
    if not params:
        raise SageError("sweep: no --param given: nothing to search", hint=EXAMPLE)
    data = base.model_dump(mode="json")
    seen: set[str] = set()
    for p in params:
        if p.key in seen:
            raise _refuse(p.text, f"{p.key} is given twice", "give each key one --param")
        seen.add(p.key)
        if p.key in FIXED_KEYS:
            raise _refuse(p.text, f"{p.key} is not searchable", "the sweep names each trial's run itself")
        _with(data, p.key, None)  # an unknown key: set_dotted's one line
        current = get_dotted(data, p.key)
        if isinstance(current, dict):
            raise _refuse(p.text, f"{p.key} is a section, not a setting", "name one of its keys, e.g. lora.r")
        if p.dist != "choice" and (
            isinstance(current, bool) or not (current is None or isinstance(current, (int, float)))
        ):
            raise _refuse(p.text, f"{p.key} is not a number (it is {current!r})", f"use choice: for {p.key}")
        for value in p.args:
            try:
                RunConfig.from_dict(_with(data, p.key, value), source="--param")
            except SageError as e:
                problem = getattr(e, "problem", None)
                said = (
                    f"{p.key} {problem}"
                    if problem and getattr(e, "field", None) == p.key
                    else e.message.removeprefix("--param: ")
                )
                raise _refuse(
                    p.text, f"the value {_fmt(value)!s} is refused: {said}", f"change the range of {p.key}"
                ) from None


def trial_config(base: RunConfig, values: dict[str, Any], name: str) -> RunConfig:
    """The base config with one trial's values, named for its run."""
    data = base.model_dump(mode="json")
    for key, value in values.items():
        set_dotted(data, key, value, source="--param")
    data["name"] = name
    return RunConfig.from_dict(data, source=f"trial {name}")


__all__ = ["Param", "DISTRIBUTIONS", "parse_param", "check_params", "trial_config"]
