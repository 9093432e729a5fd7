"""The TUI's error log follows the folders the environment names: SAGE_FT_LOGS (each test's
tmp, set by tests/conftest.py), else the cache home (SAGE_FT_CACHE, XDG_CACHE_HOME) — so a
test never writes into the real ~/.cache."""

from __future__ import annotations

from sage_ft_tui.engine.paths import TUI_ERRORS_LOG
from sage_ft_tui.tui.app import _call, errors_log


def test_an_engine_bug_is_logged_in_the_tests_own_folder(tmp_path):
    assert errors_log() == tmp_path / "logs" / TUI_ERRORS_LOG  # the autouse fixture's, not ~/.cache

    def buggy():
        raise ZeroDivisionError("boom in the engine")

    result, err = _call(buggy)  # what every App.background job goes through
    assert result is None and err.kind == "internal" and f"traceback in {errors_log()}" in err.hint
    text = errors_log().read_text()
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError: boom in the engine" in text


def test_without_a_logs_folder_it_follows_the_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("SAGE_FT_LOGS")
    monkeypatch.delenv("SAGE_FT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert errors_log() == tmp_path / "xdg" / "sage-ft-tui" / TUI_ERRORS_LOG
    monkeypatch.setenv("SAGE_FT_CACHE", str(tmp_path / "cache"))
    assert errors_log() == tmp_path / "cache" / TUI_ERRORS_LOG
