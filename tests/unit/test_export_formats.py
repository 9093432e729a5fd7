"""The export-format list (engine/export/formats.py) is what the CLI's help, export_run's check
and the Export screen read."""

from __future__ import annotations

import pytest

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.export.formats import EXPORT_FORMATS, format_help
from sage_ft_tui.engine.export.run import export_run


def test_every_reader_takes_the_one_list():
    from sage_ft_tui.tui.screens.deploy.export import CHOICES, NOTES

    assert list(EXPORT_FORMATS) == ["gguf", "hf"]
    assert {value.split(":")[0] for _label, value in CHOICES} == set(EXPORT_FORMATS)
    assert set(NOTES) == {value for _label, value in CHOICES}
    assert all(f"{name} (" in format_help() for name in EXPORT_FORMATS)


def test_an_unknown_format_is_one_line_naming_the_list(tmp_path):
    with pytest.raises(SageError, match=r"--format 'onnx' is not one of gguf, hf"):
        export_run(tmp_path, fmt="onnx")
