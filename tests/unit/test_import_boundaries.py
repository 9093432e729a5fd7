"""Layer rules at run time, each module imported in a fresh interpreter (as Harlequin does):
the engine never imports textual; the TUI process never imports torch and friends; the
package and the CLI entry point stay light. The same rules are checked statically by
import-linter (`.importlinter`); this catches imports made inside functions at import time."""

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


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_walk_finds_the_layers():
    assert "sage_ft_tui.engine.train.worker" in ENGINE_MODULES
    assert "sage_ft_tui.tui.app" in TUI_MODULES and len(TUI_MODULES) > 10


@pytest.mark.parametrize("mod", ENGINE_MODULES)
def test_engine_module_imports_without_textual(mod):
    mods = _modules_after(f"import {mod}")
    assert "textual" not in mods


def test_every_tui_module_imports_no_torch():
    code = "\n".join(f"import {m}" for m in TUI_MODULES)
    mods = _modules_after(code)
    assert not [h for h in HEAVY if h in mods]


def test_package_import_is_light():
    mods = _modules_after("import sage_ft_tui")
    assert "torch" not in mods and "transformers" not in mods and "textual" not in mods


def test_cli_import_is_light():
    mods = _modules_after("import sage_ft_tui.cli.app")
    assert "torch" not in mods and "transformers" not in mods and "datasets" not in mods and "optuna" not in mods
