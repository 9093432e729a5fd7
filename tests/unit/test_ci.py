"""CI runs exactly the README's test command, and that command runs every check."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_test_command() -> str:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    cmds = [ln.strip() for b in blocks for ln in b.splitlines() if "[dev]" in ln]
    assert len(cmds) == 1, f"expected one test command (installing the dev extra) in README.md, got {cmds}"
    return cmds[0]


def test_ci_runs_the_readme_test_command_verbatim():
    cmd = _readme_test_command()
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert cmd in ci, f".ci/run does not run the README's test command {cmd!r}"


def test_the_check_script_runs_every_check_and_fails_on_no_tests():
    assert "scripts/check" in _readme_test_command()
    script = (ROOT / "scripts" / "check").read_text(encoding="utf-8")
    assert "set -euo pipefail" in script  # any failing step, pytest's 5 (no tests) included, fails CI
    steps = [s for s in ("ruff check .", "ruff format --check .", "mypy", "lint-imports", "python -m pytest -q")]
    at = [script.find(s) for s in steps]
    assert all(i >= 0 for i in at) and at == sorted(at), dict(zip(steps, at))
    assert "|| true" not in script and "-eq 5" not in script
