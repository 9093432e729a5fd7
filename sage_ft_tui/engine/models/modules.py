"""The module names of a model, from its config.json on the meta device (no weights read).

Used to check `lora.target_modules` at `start`, before anything is written, so a typo is a
config error listing the names that exist, not an "internal" failure at train time. The
build needs torch + transformers; a caller that has not imported torch (the TUI, `start`)
gets it in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.errors import SageError, clip
from sage_ft_tui.engine.models.build_lock import MODEL_BUILD
from sage_ft_tui.engine.models.failures import model_load_error
from sage_ft_tui.engine.models.tiny import is_tiny, tiny_model_dir
from sage_ft_tui.engine.models.vision import auto_class
from sage_ft_tui.engine.offline import OFFLINE, TELEMETRY_OFF

# Module types LoRA can adapt (what peft accepts as a target).
_ADAPTABLE = ("Linear", "Conv1D", "Conv1d", "Conv2d", "Embedding")


def module_names(model_dir: Path, trust_remote_code: bool = False) -> dict[str, str]:
    """{full module name: class name} of the model built empty on the meta device."""
    if "torch" not in sys.modules:
        code = (
            "import torch, json, sys; from pathlib import Path; "  # torch first: no grandchild
            "from sage_ft_tui.engine.models.modules import module_names; "
            "print(json.dumps(module_names(Path(sys.argv[1]), sys.argv[2] == '1')))"
        )
        import os

        r = subprocess.run(
            [sys.executable, "-c", code, str(model_dir), "1" if trust_remote_code else "0"],
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,  # transformers may ask about custom code: never wait for an answer
            env={**os.environ, **TELEMETRY_OFF, **OFFLINE},  # a local folder: nothing to fetch
        )
        if r.returncode != 0:
            known = model_load_error(r.stderr, str(model_dir))
            if known is not None:
                raise known
            last = (r.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise SageError(
                f"cannot build the model from {model_dir}/config.json: {clip(last)}",
                kind="model",
                hint="check config.json (re-download the model if it is damaged)",
            )
        return json.loads(r.stdout.strip().splitlines()[-1])
    import torch
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
        # a vision-language model is built whole (image-text-to-text)
        with MODEL_BUILD, torch.device("meta"):
            model = auto_class(model_dir).from_config(config, trust_remote_code=trust_remote_code)
    except (ValueError, KeyError, OSError, ImportError) as e:
        known = model_load_error(f"{type(e).__name__}: {e}", str(model_dir))
        if known is not None:
            raise known from None
        raise
    return {name: type(m).__name__ for name, m in model.named_modules() if name}


def _matches(target: str, names: dict[str, str]) -> bool:
    # peft's rule for a list of names: the full name, or its last dotted part(s).
    return any(n == target or n.endswith("." + target) for n in names)


def check_target_modules(model_dir: Path, targets, trust_remote_code: bool = False, model_name: str = "") -> None:
    """Refuse LoRA target modules the model does not have, listing the ones it has."""
    if not isinstance(targets, list) or not targets:
        return  # "all-linear": peft finds them itself
    names = module_names(model_dir, trust_remote_code)
    missing = [t for t in targets if not _matches(t, names)]
    if not missing:
        return
    valid = sorted(
        {n.rsplit(".", 1)[-1] for n, cls in names.items() if cls in _ADAPTABLE and not n.endswith("lm_head")}
    )
    raise SageError(
        f"lora.target_modules: {', '.join(repr(m) for m in missing)} "
        f"{'is' if len(missing) == 1 else 'are'} not a module of {model_name or model_dir.name}",
        hint=f"use all-linear, or names this model has: {', '.join(valid[:30])}",
        kind="config",
    )


def local_model_dir(name: str, revision: Optional[str] = None) -> Optional[Path]:
    """The model's local folder when it is on this machine (never a download); else None."""
    if is_tiny(name):
        d = tiny_model_dir()
    elif Path(name).expanduser().is_dir():
        d = Path(name).expanduser()
    else:
        try:
            from huggingface_hub import snapshot_download

            d = Path(snapshot_download(repo_id=name, revision=revision, local_files_only=True))
        except Exception:
            return None
    return d if (d / "config.json").is_file() else None
