"""engine/recipes/code.py (config + summary lines) and the scan's edge cases: links,
odd names, subfolders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

import coderepo_factory as crf  # noqa: E402

from sage_ft_tui.engine.data.code.languages import SKIP_REASONS  # noqa: E402
from sage_ft_tui.engine.data.code.scan import scan_repository  # noqa: E402
from sage_ft_tui.engine.errors import SageError  # noqa: E402
from sage_ft_tui.engine.recipes.code import (  # noqa: E402
    code_config,
    code_scan_preview,
    scan_summary_lines,
    skip_reason_text,
)


def test_code_config_resolves_the_repo_and_sets_the_code_task(tmp_path, monkeypatch):
    repo = crf.make_code_repo(tmp_path / "proj", git=True)
    cfg = code_config(repo.root, "tiny-demo", "my-run")
    assert cfg.task == "code" and cfg.name == "my-run" and cfg.model.name == "tiny-demo"
    assert cfg.data.repo == str(repo.root.resolve()) and cfg.data.fim_rate > 0 and cfg.data.validation_split > 0
    monkeypatch.chdir(repo.root / "src")
    assert code_config(None, "tiny-demo").data.repo == str(repo.root.resolve())  # git root of cwd
    with pytest.raises(SageError, match="is not a folder"):
        code_config(repo.root / "README.md", "tiny-demo")


def test_summary_lines_from_a_scan_and_from_a_report(tmp_path, tiny_model):
    repo = crf.make_code_repo(tmp_path / "proj", git=True)
    lines = scan_summary_lines(scan_repository(repo.root))
    text = "\n".join(lines)
    assert lines[0].startswith(f"repository {repo.root.resolve()} (git ls-files)")
    assert "taken: 7 files" in text and "python 3" in text
    assert "secret_content 3" in text and "secrets kept out of the dataset: 5 file(s)" in text
    assert "samples:" not in text  # a bare scan has no samples yet
    rep = code_scan_preview(code_config(repo.root, "tiny-demo").model_copy(deep=True))
    text2 = "\n".join(scan_summary_lines(rep))
    assert f"samples: {rep['samples']:,}" in text2 and "tokens" in text2 and "no fill-in-the-middle" in text2
    for s in crf.SECRET_STRINGS:
        assert s not in text and s not in text2 and s not in repr(rep)


def test_every_reason_has_a_sentence():
    for r in SKIP_REASONS:
        assert skip_reason_text(r) and skip_reason_text(r) != r


@pytest.mark.parametrize("git", [True, False], ids=["git", "walk"])
def test_symlinks_are_not_followed(git, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.py").write_text("SECRET_PLACE = 1\n")
    root = tmp_path / "r"
    root.mkdir()
    (root / "a.py").write_text("x = 1\n")
    os.symlink(outside / "private.py", root / "link.py")
    os.symlink(outside, root / "linkdir")
    if git:
        import subprocess

        from tests.fixtures.coderepo_factory import require_git

        require_git()
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    scan = scan_repository(root)
    assert [f.path for f in scan.files] == ["a.py"]
    skipped = dict(scan.skipped)
    assert skipped["link.py"] == "symlink"
    # git lists a link to a folder as one extension-less entry: dropped by name before any read
    assert skipped.get("linkdir", skipped.get("linkdir/")) == ("unknown_language" if git else "symlink")


def test_odd_file_names_are_skipped_not_crashing(tmp_path):
    root = tmp_path / "odd"
    root.mkdir()
    (root / "ok.py").write_text("x = 1\n")
    (root / "new\nline.py").write_text("x = 2\n")
    os.close(os.open(os.path.join(os.fsencode(root), b"bad\xff.py"), os.O_CREAT | os.O_WRONLY))
    with open(os.path.join(os.fsencode(root), b"bad\xff.py"), "w") as fh:
        fh.write("x = 3\n")
    scan = scan_repository(root)
    assert [f.path for f in scan.files] == ["ok.py"]
    assert scan.skipped_by_reason == {"bad_name": 2}
    import json

    paths = {s["path"] for s in scan.to_report()["skipped"]}
    assert paths == {"new\\nline.py", "bad\\xff.py"}
    json.dumps(scan.to_report(), ensure_ascii=False).encode("utf-8")  # encodable
