"""Layer rules at run time, checked in fresh interpreters (as Harlequin does): the engine never
imports textual; the TUI process never imports torch and friends; the package and the CLI entry
point stay light. The same rules are checked statically by import-linter (`.importlinter`);
this catches imports made inside functions at import time.

Four interpreters, started together: one imports every engine module in turn and notes after
each whether textual has been loaded (sys.modules only grows, so the first module after which
it appears is the one that brought it), one every TUI module, one the package, one the CLI."""

import json
import pkgutil
import subprocess
import sys

import pytest

import sage_ft_tui.engine as engine
import sage_ft_tui.tui as tui

HEAVY = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "optuna")  # optuna: the sweep driver's


def _walk(pkg) -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."))


ENGINE_MODULES = _walk(engine)
TUI_MODULES = _walk(tui)

# Each program prints one JSON line: the engine one {module: textual loaded yet}, the others sorted(sys.modules).
ONE_BY_ONE = """
import importlib, json, sys
steps = {}
for mod in sys.argv[1:]:
    importlib.import_module(mod)
    steps[mod] = "textual" in sys.modules
print(json.dumps(steps))
"""
LOADED = "import json, sys\n{imports}\nprint(json.dumps(sorted(sys.modules)))"


def _run_together(programs: dict[str, list[str]]) -> dict[str, object]:
    procs = {
        name: subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, argv in programs.items()
    }
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=170)
        assert p.returncode == 0, f"{name}: {stderr[-2000:]}"
        out[name] = json.loads(stdout.strip().splitlines()[-1])
    return out


def test_walk_finds_the_layers():
    assert "sage_ft_tui.engine.train.worker" in ENGINE_MODULES
    assert "sage_ft_tui.tui.app" in TUI_MODULES and len(TUI_MODULES) > 10


@pytest.mark.subprocess  # four interpreters
def test_layers_at_run_time():
    py = sys.executable
    out = _run_together(
        {
            "engine": [py, "-c", ONE_BY_ONE, *ENGINE_MODULES],
            "tui": [py, "-c", LOADED.format(imports="\n".join(f"import {m}" for m in TUI_MODULES))],
            "package": [py, "-c", LOADED.format(imports="import sage_ft_tui")],
            "cli": [py, "-c", LOADED.format(imports="import sage_ft_tui.cli.app")],
        }
    )
    steps = out["engine"]
    assert list(steps) == ENGINE_MODULES  # every engine module was imported
    first = next((m for m, textual in steps.items() if textual), None)
    assert first is None, f"{first} imports textual (the engine is headless)"
    assert not [h for h in HEAVY if h in out["tui"]], "a TUI module imports the ML stack"
    assert not {"torch", "transformers", "textual"} & set(out["package"])
    assert not {"torch", "transformers", "datasets", "optuna"} & set(out["cli"])
