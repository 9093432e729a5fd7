"""The engine never imports textual; `import sage_ft_tui` imports no torch (checked in a
fresh interpreter, as Harlequin does)."""

import pkgutil
import subprocess
import sys

import pytest

import sage_ft_tui.engine as engine

ENGINE_MODULES = sorted(m.name for m in pkgutil.iter_modules(engine.__path__) if m.name != "worker")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("mod", ENGINE_MODULES)
def test_engine_module_imports_without_textual(mod):
    mods = _modules_after(f"import sage_ft_tui.engine.{mod}")
    assert "textual" not in mods


def test_worker_imports_without_textual():
    assert "textual" not in _modules_after("import sage_ft_tui.engine.worker")


def test_package_import_is_light():
    mods = _modules_after("import sage_ft_tui")
    assert "torch" not in mods and "transformers" not in mods and "textual" not in mods


def test_cli_import_is_light():
    mods = _modules_after("import sage_ft_tui.cli")
    assert "torch" not in mods and "transformers" not in mods and "datasets" not in mods


@pytest.mark.parametrize("mod", ["config", "events", "runs", "data", "template", "formats", "tasks", "hardware", "models"])
def test_modules_the_tui_uses_import_no_torch(mod):
    mods = _modules_after(f"import sage_ft_tui.engine.{mod}")
    assert "torch" not in mods and "transformers" not in mods
