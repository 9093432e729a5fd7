"""quickstart: data (or a repository) → a model that fits and can be had → settings for this
hardware → a ready run config.

Without --model the base is chosen here (`default_model`), said in one line before anything is
loaded: on a GPU (this machine's, or the --gpu/--vram target's) the task's default model when
it is cached or the hub can be reached (named as a download, with the offline alternative);
otherwise, and always without a GPU, the smallest cached model of the task's kind that fits
this machine's RAM, else the built-in tiny-demo. Nothing here opens a connection except the
one reachability check `models.resolve.offline_reason` makes when a download is the choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from sage_ft_tui.engine.config.build import Target, build_config
from sage_ft_tui.engine.config.hardware_fit import fit_hardware
from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.hardware.probe import get_backend
from sage_ft_tui.engine.methods.registry import all_tasks
from sage_ft_tui.engine.models import resolve
from sage_ft_tui.engine.models.catalog import describe, needs_download, scan_cache
from sage_ft_tui.engine.models.known import KNOWN, quickstart_model
from sage_ft_tui.engine.models.tiny import TINY_NAME
from sage_ft_tui.engine.recipes.code import code_config

CPU_MAX_PARAMS = 1_000_000_000  # beyond this a model trains too slowly on a CPU to be a default
VALIDATION_SPLIT = 0.05


@dataclass
class ModelChoice:
    name: str
    line: str  # said before anything is loaded: what was chosen and why, and how to choose another
    download: bool = False  # the weights come from the hub


def _suits(model_id: str, task: str) -> bool:
    """A code model for the code task, a general one for the others."""
    return ("coder" in model_id.lower() or "code" in model_id.lower().split("/")[-1]) == (task == "code")


def default_model(task: str, snapshot: Any = None, *, planned: bool = False) -> ModelChoice:
    """The base model when none is given. `snapshot`: this machine (None: probed), or with
    `planned` the --gpu/--vram target's (a GPU machine elsewhere)."""
    if snapshot is None:
        snapshot = get_backend().snapshot()
    cached = [
        e
        for e in scan_cache()
        if e.params
        and e.offline
        and _suits(e.id, task)
        and str(e.architecture or "").endswith("ForCausalLM")
        and (task in ("text", "code") or _has_chat_template(e.path))
    ]
    how = "--model NAME (a hub id or a folder) to choose another"
    if snapshot.gpus:
        want = quickstart_model(task)
        where = "the target GPU" if planned else f"GPU {snapshot.gpus[0].name}"
        if any(e.id == want for e in cached):
            return ModelChoice(want, f"model: {want} (cached; the {task} task's default on {where}) — {how}")

        why = resolve.offline_reason()
        if not why:
            return ModelChoice(
                want,
                f"model: {want} (the {task} task's default on {where}) is not cached: its weights "
                f"(~{KNOWN[want].size_bytes / 1e9:.0f} GB) are "
                f"downloaded from the Hugging Face hub now — offline, pass --model {TINY_NAME} or a local folder",
                download=True,
            )
        fallback = f"{want} is not cached and the hub cannot be used ({why})"
    else:
        fallback = "no GPU here"
    fits = _cpu_fits(cached, snapshot) if not snapshot.gpus else cached
    if fits:
        e = min(fits, key=lambda e: e.params or 0)
        return ModelChoice(e.id, f"model: {e.id} ({e.params_label} parameters, cached; {fallback}) — {how}")
    return ModelChoice(
        TINY_NAME,
        f"model: {TINY_NAME} (built in, trains in seconds on a CPU; {fallback} and no cached "
        f"{'code ' if task == 'code' else ''}model that fits this machine) — {how}",
    )


def download_line(model: str) -> str:
    """'' for a model on this machine; for a hub id not in the cache, the line that says it is
    downloaded now (before anything is fetched) and the offline way."""
    try:
        entry = describe(model)
    except SageError:
        return ""  # a bad reference: the config check says it in its own words
    if not needs_download(entry) or resolve.offline_switch():  # offline: the model check refuses it in one line
        return ""
    size = f" (~{entry.size_label})" if entry.size_bytes else ""
    return (
        f"model: {model} is not cached: its weights{size} are downloaded from the Hugging Face hub now — "
        f"offline, pass --model {TINY_NAME} or a local folder"
    )


def _has_chat_template(folder: Optional[str]) -> bool:
    """Whether a model folder ships a chat template (the chat-shaped tasks render with it)."""
    import json

    if not folder:
        return False
    d = Path(folder)
    if (d / "chat_template.jinja").is_file() or (d / "chat_template.json").is_file():
        return True
    try:
        return bool(json.loads((d / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError, AttributeError):
        return False


def _cpu_fits(entries: list, snapshot: Any) -> list:
    """The cached models small enough to train on this CPU whose estimate fits the free RAM."""
    out = []
    for e in entries:
        if (e.params or 0) > CPU_MAX_PARAMS:
            continue
        try:
            est = fit_hardware(e.id, snapshot).estimate
        except SageError:
            continue
        if est is not None and est.fits:
            out.append(e)
    return out


def recipe(task: str, *, repo: Optional[Path] = None, model: str = TINY_NAME) -> RunConfig:
    """The quickstart's own settings (the builder's file layer): the task, an evaluation split,
    the auto preset; for code the repository scan."""
    if task not in all_tasks():
        raise SageError(f"unknown task {task!r}", hint=f"choose one of: {', '.join(all_tasks())}")
    if task == "code":
        raw = code_config(repo, model).model_dump(mode="json", include={"task": True, "data": True})
        raw["data"] = {k: raw["data"][k] for k in ("repo", "languages", "fim_rate", "validation_split")}
        return RunConfig.from_dict({**raw, "preset": "auto"}, source="quickstart code")
    return RunConfig.from_dict(
        {"task": task, "preset": "auto", "data": {"validation_split": VALIDATION_SPLIT}}, source="quickstart"
    )


def quickstart_build(
    task: str,
    *,
    data: Optional[list[str]] = None,
    model: Optional[str] = None,
    repo: Optional[Path] = None,
    preset: Optional[str] = None,
    target: Any = None,
    flags: Optional[dict[str, Any]] = None,
    sets: Sequence[str] = (),
    say: Optional[Callable[[str], None]] = None,
):
    """The built config (engine.config.build.Built). `target`: the builder's plan layer
    (--gpu/--vram/--gpus), else this machine; `say`: told the model chosen when --model was not
    given, before the model is read or fetched."""
    if task not in all_tasks():
        raise SageError(f"unknown task {task!r}", hint=f"choose one of: {', '.join(all_tasks())}")
    if task != "code" and not data:
        raise SageError(
            f"quickstart {task} needs --data FILE", hint="e.g. sage-ft-tui quickstart qa --data my_qa.jsonl"
        )
    flags = dict(flags or {})
    choice = None
    if not (model or flags.get("model.name") or any(s.split("=", 1)[0].strip() == "model.name" for s in sets)):
        snap = target.snapshot if target is not None else None
        choice = default_model(task, snap, planned=snap is not None)
        model = choice.name
        if say is not None:
            say(choice.line)
    if model:
        flags["model.name"] = model
    if choice is None and model and say is not None:
        line = download_line(model)
        if line:
            say(line)
    if data:
        flags["data.paths"] = [str(Path(d).expanduser().resolve()) for d in data]
    base = recipe(task, repo=repo, model=model or TINY_NAME)
    label = "quickstart code" if task == "code" else "quickstart"
    return build_config(file=base, file_label=label, preset=preset, target=target, flags=flags, sets=sets)


def quickstart_config(
    task: str,
    *,
    data: Optional[list[str]] = None,
    model: Optional[str] = None,
    name: Optional[str] = None,
    preset: Optional[str] = None,
    repo: Optional[Path] = None,
    hardware=None,
    gpus: Optional[int] = None,
) -> RunConfig:
    """The run config alone (the Python API); `hardware`/`gpus`: a target to plan for."""
    target = Target(hardware, gpus, "the target") if hardware is not None or gpus else None
    built = quickstart_build(
        task, data=data, model=model, repo=repo, preset=preset, target=target, flags={"name": name} if name else {}
    )
    return built.config
