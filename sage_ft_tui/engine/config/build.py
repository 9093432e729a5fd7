"""One place builds a run's config from its sources, in one written order (a later source wins):

    defaults < preset < config file < target-GPU plan < flags < --set

- **defaults**: `RunConfig`'s own.
- **preset** (`--preset NAME`, else `preset:` in the file or `--set preset=`): only the keys the
  preset owns (`presets.PRESET_KEYS`: micro-batch, accumulation, max length, checkpointing,
  precision, quantization, optimizer), under everything the user wrote. A preset whose every
  key the user set is not computed at all.
- **config file** (`--config X.yaml`, `run X.yaml`; a recipe's or the wizard's own answers stand
  here too): only the keys the file sets, never the defaults it would fill in.
- **target-GPU plan** (`--gpu/--vram/--gpus`): the auto preset planned for that machine, the same
  keys (and training.gpus/sharding over several GPUs); it replaces the file's values for them,
  and says so.
- **flags** (`--task --model --data --name --epochs --max-steps --max-length --lr --precision`,
  the wizard's edits), then **--set key=value** (in the order given).

The CLI (`start`, `run CONFIG`, `quickstart`, `estimate`), the recipes and the wizard all call
`build_config`; nothing else merges config sources. The result says where each non-default
key came from (`Built.origins`: preset / file / plan / flag / --set, or the recipe's name), and
what the user wrote that something above replaced (`Built.warnings`). `ignored_settings`
names the keys the task or method will not read (printed with every start and launch).
Never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from pydantic import ValidationError

from sage_ft_tui.engine.config.presets import PRESET_KEYS, preset_values, user_keys
from sage_ft_tui.engine.config.schema import (
    RunConfig,
    config_error,
    get_dotted,
    parse_set,
    set_dotted,
)
from sage_ft_tui.engine.config.sections import PRESET_NAMES
from sage_ft_tui.engine.errors import SageError, cut_middle
from sage_ft_tui.engine.methods.preference import AUTO_PICKS
from sage_ft_tui.engine.methods.registry import all_tasks, preference_methods

# The order, written once: each later layer wins over the earlier ones.
ORDER: tuple[str, ...] = ("default", "preset", "file", "plan", "flag", "--set")


@dataclass
class Target:
    """The machine the plan layer is made for: `snapshot` (None: this machine), `gpus` of its GPUs."""

    snapshot: Any = None
    gpus: Optional[int] = None
    label: str = "this machine"


@dataclass
class Built:
    config: RunConfig
    origins: dict[str, str]  # dotted key -> the layer it came from: every key not at its default, and every one typed
    warnings: list[str] = field(default_factory=list)  # "warning: ..." lines: what the user wrote that lost
    fit: Any = None  # the auto preset's hardware fit (hardware_fit.HardwareFit) when one was made
    layers: dict[str, str] = field(default_factory=dict)  # dotted key -> its layer in ORDER

    def origin_rows(self) -> list[tuple[str, Any, str]]:
        """(key, value, where from) for every non-default key, in the config's own order."""
        raw = self.config.model_dump(mode="json")
        keys = [k for k in _leaf_keys() if k in self.origins]
        keys += sorted(k for k in self.origins if k not in keys)  # entries under data.field_map / replace
        return [(k, _get(raw, k), self.origins[k]) for k in keys]

    def origin_groups(self, width: int = 48) -> list[tuple[str, list[str]]]:
        """(source, ["key=value", ...]) per source in ORDER: what `start` and Review show. Long
        values (paths) are cut in the middle to `width` characters (both ends tell paths apart)."""
        groups: dict[str, list[str]] = {}
        for key, value, where in self.origin_rows():
            if key in ("version", "preset"):  # the preset names its own group
                continue
            text = _show(value)
            text = cut_middle(text, width)
            groups.setdefault(where, []).append(f"{key}={text}")
        rank = {label: ORDER.index(self.layers.get(k, "flag")) for k, label in self.origins.items()}
        return sorted(groups.items(), key=lambda g: rank.get(g[0], 0))


def build_config(
    *,
    file: Union[str, Path, RunConfig, dict, None] = None,
    file_label: Optional[str] = None,
    preset: Optional[str] = None,
    hardware: Any = None,
    gpus: Optional[int] = None,
    target: Optional[Target] = None,
    flags: Optional[dict[str, Any]] = None,
    sets: Sequence[str] = (),
    base: Optional[RunConfig] = None,
    flag_label: str = "flag",
    cache: Optional[dict] = None,
) -> Built:
    """The run config from its sources in ORDER. `file`: a config.yaml path, or a recipe's /
    the wizard's settings (a RunConfig or a dict: only the keys given count) labelled
    `file_label`; `preset`: the --preset flag; `hardware`: what the preset auto sizes for (None:
    this machine); `gpus`: how many of its GPUs the preset auto plans over; `target`: the plan
    layer (--gpu/--vram/--gpus); `flags`: dotted key -> value (`given` drops the flags that were
    not given); `sets`: --set items. `base` (the Python API's apply_preset): a RunConfig whose
    given keys stand at the file's place. `flag_label`: what the flags are called ("edited" for
    the wizard's edits); `cache`: a dict the caller keeps to reuse preset computations (the
    wizard, per keystroke)."""

    layers: dict[str, dict[str, Any]] = {name: {} for name in ORDER}
    labels = {name: name for name in ORDER}
    labels["flag"] = flag_label
    sources = dict(labels)  # what an error names as its source

    # the file: the keys it sets (validated alone first, so its own errors name it)
    if base is not None:
        file = base
    if file is not None:
        if isinstance(file, (str, Path)):
            labels["file"] = file_label or f"file {Path(file).name}"
            sources["file"] = str(file)
            frc = RunConfig.load(file)
        elif isinstance(file, dict):
            labels["file"] = sources["file"] = file_label or "config"
            frc = RunConfig.from_dict(file, source=labels["file"])
        else:
            labels["file"] = sources["file"] = file_label or "config"
            frc = file
        fraw = frc.model_dump(mode="json")
        layers["file"] = {k: get_dotted(fraw, k) for k in sorted(user_keys(frc))}

    defaults = RunConfig().model_dump(mode="json")
    for key, value in (flags or {}).items():  # None is a value here (eval_steps: null); leave out what was not given
        set_dotted(_copy(defaults), key, value, source=flag_label)  # an unknown key is an error here
        layers["flag"][key] = value
    if preset is not None:
        layers["flag"]["preset"] = preset
    for item in sets:
        key, value = parse_set(item)
        set_dotted(_copy(defaults), key, value, source="--set")
        layers["--set"][key] = value

    # which preset, from the highest layer that names one
    name = next((layers[x]["preset"] for x in ("--set", "flag", "file") if layers[x].get("preset")), None)
    name_from = next((x for x in ("--set", "flag", "file") if layers[x].get("preset")), None)
    if name is not None and name not in PRESET_NAMES:
        raise SageError(
            f"{sources[name_from or 'flag']}: preset: unknown preset {name!r}",
            hint=f"choose one of: {', '.join(PRESET_NAMES)}",
        )
    if target is not None and name not in (None, "auto") and name_from != "file":
        raise SageError(
            f"--gpu/--vram/--gpus plan the auto preset, not --preset {name}",
            hint="use --preset auto (or leave --preset out) with them",
        )

    # what the user wrote over the defaults: the preset and the plan are sized for it
    user = {k for x in ("file", "flag", "--set") for k in layers[x]}
    above_plan = {k for x in ("flag", "--set") for k in layers[x]}
    mine = _merge(defaults, [(layers[x], x) for x in ("file", "flag", "--set")], {})
    rc0 = _validate(mine[0], mine[1], sources)

    fit = None
    notes: list[str] = []
    if target is not None:
        pv = _preset_values("auto", rc0, target.snapshot, target.gpus, above_plan, cache)
        layers["plan"], fit = {**pv.values, "preset": "auto"}, pv.fit
        labels["plan"] = sources["plan"] = f"plan for {target.label}"
    elif name is not None:
        pv = _preset_values(name, rc0, hardware, gpus, user, cache)
        layers["preset"], fit = {**pv.values, "preset": name}, pv.fit
        labels["preset"] = sources["preset"] = f"preset {name}"
        if not pv.values and name_from != "file":
            notes.append(
                f"warning: preset {name} changes nothing: every key it sets ({', '.join(PRESET_KEYS)}) is given "
                "above it; to plan for a machine use --gpu NAME, --vram GIB or --gpus N"
            )

    raw, origins = _merge(defaults, [(layers[x], x) for x in ORDER[1:]], {})
    cfg = _validate(raw, origins, sources)
    warnings = notes + _replaced(layers, labels, cfg)
    final = cfg.model_dump(mode="json")
    # a key typed on the command line is shown even when it equals the default: the user looks for it
    kept = {k: v for k, v in origins.items() if v in ("flag", "--set") or _differs(final, defaults, k)}
    return Built(cfg, {k: labels[v] for k, v in kept.items()}, warnings, fit, kept)


def _preset_values(name: str, rc0: RunConfig, hardware: Any, gpus: Optional[int], keep: set[str], cache):
    """presets.preset_values, remembered in the caller's `cache` when it keeps one."""

    if cache is None:
        return preset_values(name, rc0, hardware, gpus=gpus, keep=keep)
    kept_length = rc0.training.max_length if "training.max_length" in keep else None
    key = (
        name,
        rc0.model.name,
        rc0.task,
        rc0.lora.r,
        tuple(rc0.training.gpus or ()),
        gpus,
        kept_length,
        frozenset(keep) if all(k in keep for k in _preset_keys()) else None,
        id(hardware),
    )
    if key not in cache:
        cache[key] = preset_values(name, rc0, hardware, gpus=gpus, keep=keep)
    return cache[key]


def _preset_keys() -> tuple[str, ...]:

    return PRESET_KEYS


def given(flags: dict[str, Any]) -> dict[str, Any]:
    """The flags that were given (a command line's unset options are None)."""
    return {k: v for k, v in flags.items() if v is not None}


def _get(raw: dict, key: str) -> Any:
    try:
        return get_dotted(raw, key)
    except (KeyError, TypeError):
        return None


def _copy(d: dict) -> dict:
    import copy

    return copy.deepcopy(d)


def _merge(
    defaults: dict, layers: list[tuple[dict[str, Any], str]], origins: dict[str, str]
) -> tuple[dict, dict[str, str]]:
    raw = _copy(defaults)
    origins = dict(origins)
    for values, label in layers:
        for key, value in values.items():
            set_dotted(raw, key, value, source=label)
            origins[key] = label
    return raw, origins


def _validate(raw: dict, origins: dict[str, str], sources: dict[str, str]) -> RunConfig:
    """Validate the merged config; an error names the source of the key it is about."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = [str(x) for x in err["loc"] if "[" not in str(x)]
        key = ".".join(loc)
        if err["type"] == "value_error":  # a combination: "a.b / c.d: ..." names its keys first
            first = str(err["msg"]).removeprefix("Value error, ").split(":", 1)[0].split(" / ")[0].strip()
            key = first
        where = next((origins[k] for k in (key, *_parents(key)) if k in origins), "settings")
        raise config_error(e, sources.get(where, where)) from None


def _parents(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def _differs(final: dict, defaults: dict, key: str) -> bool:
    try:
        return get_dotted(final, key) != get_dotted(defaults, key)
    except (KeyError, TypeError):
        return True


def _replaced(layers: dict[str, dict[str, Any]], labels: dict[str, str], cfg: RunConfig) -> list[str]:
    """A warning for each value the user wrote that the plan replaced (the plan stands above the
    file; flags and --set above it)."""
    out = []
    for key, value in layers["plan"].items():
        if key == "preset" or key not in layers["file"] or layers["file"][key] == value:
            continue
        out.append(
            f"warning: {key}: the {labels['plan']} sets {_show(value)} over {labels['file']}'s "
            f"{_show(layers['file'][key])} (keep yours with --set {key}={_show(layers['file'][key])})"
        )
    return out


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, list):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def _leaf_keys() -> list[str]:
    from sage_ft_tui.engine.config.schema import field_help

    return list(field_help())


# ---- settings that would do nothing ----------------------------------------------------------


def preference_uses() -> dict[str, tuple[str, ...]]:
    """preference keys -> the methods that read them (each method's descriptor says; auto is
    dpo for pairs, kto for labelled rows, so it reads what they read)."""
    out: dict[str, tuple[str, ...]] = {}
    for m in preference_methods().values():
        for k in m.settings:
            out[k] = out.get(k, ()) + (m.name,) + (("auto",) if m.name in AUTO_PICKS else ())
    return {k: tuple(dict.fromkeys(v)) for k, v in out.items()}


# grpo keys -> the built-in reward that reads them
GRPO_USES: dict[str, str] = {"format_regex": "format", "target_length": "length"}
CODE_KEYS: tuple[str, ...] = ("repo", "languages", "fim_rate")


def ignored_settings(cfg: RunConfig) -> list[str]:
    """A warning for each key set away from its default that this run will not read: a section
    of another task, a key of another preference method or reward, code-task data keys on
    another task, a sharding strategy with one GPU. (Presets and plans never set these keys,
    so a non-default value is one the user wrote.)"""
    d = RunConfig().model_dump(mode="json")
    raw = cfg.model_dump(mode="json")

    def changed(section: str) -> list[str]:
        return [k for k, v in raw[section].items() if v != d[section][k]]

    out = []
    for task, spec in all_tasks().items():
        section = spec.section
        keys = changed(section) if section else []
        if keys and cfg.task != task:
            out.append(
                f"warning: {', '.join(f'{section}.{k}' for k in keys)}: the {cfg.task} task does not read the "
                f"{section} section (only task {task} does); remove it, or use --task {task}"
            )
    if cfg.task == "preference":
        m = cfg.preference.method
        for k in changed("preference"):
            uses = preference_uses().get(k)
            if uses and m not in uses:
                users = " and ".join(x for x in uses if x != "auto")
                out.append(
                    f"warning: preference.{k}: method {m} does not use it (only {users} does); "
                    f"remove it, or set preference.method to {users.split(' and ')[0]}"
                )
    if cfg.task == "grpo":
        for k in changed("grpo"):
            reward = GRPO_USES.get(k)
            if reward and reward not in cfg.grpo.rewards:
                out.append(
                    f"warning: grpo.{k}: only the {reward} reward reads it, and grpo.rewards is "
                    f"{_show(cfg.grpo.rewards)}; add {reward} to the rewards, or remove it"
                )
    code = [k for k in CODE_KEYS if raw["data"][k] != d["data"][k]]
    if code and cfg.task != "code":
        out.append(
            f"warning: {', '.join(f'data.{k}' for k in code)}: only the code task reads "
            f"{'it' if len(code) == 1 else 'them'}; the {cfg.task} task trains on data.paths"
        )
    t, td = cfg.training, d["training"]
    if t.max_steps > 0 and t.epochs != td["epochs"]:
        out.append(
            f"warning: training.epochs {t.epochs:g}: not used, training.max_steps {t.max_steps} decides when the "
            "run stops; set max_steps -1 to train by epochs, or drop epochs"
        )
    if t.lr_scheduler == "constant" and t.warmup_ratio != td["warmup_ratio"]:
        out.append(
            f"warning: training.warmup_ratio {t.warmup_ratio:g}: the constant scheduler has no warmup; "
            "use lr_scheduler constant_with_warmup, or drop warmup_ratio"
        )
    if cfg.task in ("text", "code"):
        chat = [k for k in ("system_prompt", "tool_format", "reasoning") if raw["data"][k] != d["data"][k]]
        if chat:
            out.append(
                f"warning: {', '.join(f'data.{k}' for k in chat)}: the {cfg.task} task trains on plain text "
                "without turns, so nothing reads it; remove it, or use a chat task (qa, instruction, chat)"
            )
    if t.sharding != "auto" and len(t.gpus or []) < 2:
        out.append(
            f"warning: training.sharding {t.sharding}: acts only over several GPUs (training.gpus names "
            f"{len(t.gpus or []) or 'none'}); with one GPU or the CPU the run trains unsharded"
        )
    return out


def apply_preset(rc: RunConfig, name: str, hardware: Any = None, *, gpus: Optional[int] = None) -> RunConfig:
    """`rc` with preset `name` under it: the preset sets only the keys it owns (PRESET_KEYS)
    that `rc` was not given (the Python API's way to this module's order)."""
    return build_config(base=rc, preset=name, hardware=hardware, gpus=gpus).config


__all__ = [
    "ORDER",
    "Built",
    "Target",
    "apply_preset",
    "build_config",
    "given",
    "ignored_settings",
    "preference_uses",
    "GRPO_USES",
]
