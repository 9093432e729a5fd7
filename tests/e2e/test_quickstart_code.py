"""The code task end to end: a repository with planted secrets → a run folder that holds
none of them; FIM samples in the prepared data; `quickstart code` on this project."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

import coderepo_factory as crf  # noqa: E402

from sage_ft_tui.engine.config.schema import RunConfig  # noqa: E402
from sage_ft_tui.engine.errors import SageError  # noqa: E402
from sage_ft_tui.engine.recipes.code import code_config, scan_summary_lines  # noqa: E402
from sage_ft_tui.engine.runs.create import create_run  # noqa: E402
from sage_ft_tui.engine.runs.state import read_status

from .conftest import cli  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
FIM = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]


def _small(cfg: RunConfig, **data) -> RunConfig:
    raw = cfg.model_dump(mode="json")
    raw["training"].update({"max_steps": 1, "max_length": 128})
    raw["data"].update(data)
    return RunConfig.from_dict(raw)


def _all_bytes(folder: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()]


@pytest.mark.parametrize("git", [True, False], ids=["git", "walk"])
def test_run_folder_holds_no_secret_or_excluded_text(git, tmp_path, tiny_model, sage_home):
    repo = crf.make_code_repo(tmp_path / "proj", git=git)
    run = create_run(_small(code_config(repo.root, "tiny-demo", None), validation_split=0.2))
    files = _all_bytes(run)
    assert any(p.name == "train.jsonl" for p, _ in files) and any(p.name == "eval.jsonl" for p, _ in files)
    for s in crf.SECRET_STRINGS + crf.EXCLUDED_STRINGS:
        hits = [str(p.relative_to(run)) for p, b in files if s.encode() in b]
        assert not hits, f"excluded text found in {hits}"
    assert not [p for p, b in files if crf.BINARY_MARKER in b]
    data = (run / "data" / "train.jsonl").read_text() + (run / "data" / "eval.jsonl").read_text()
    for marker in ("function clamp(x, lo, hi)", "func Sum(xs", "def answer()", "class Item:", "# path: src/app.py"):
        assert json.dumps(marker)[1:-1] in data or marker in data, marker
    rep = json.loads((run / "data" / "data_report.json").read_text())
    cs = rep["code_scan"]
    by = cs["skipped_by_reason"]
    assert by["secret_file"] == 2 and by["secret_content"] == 3 and by["binary"] == 2
    assert by["vendored"] == 2 and by["gitignored"] == 1 and by["duplicate"] == 1 and by["lockfile"] == 1
    assert cs["files_taken"] == len(repo.taken) + 1  # + big/huge_table.py under the default size limit
    assert cs["samples"] == rep["counts"]["usable"] and cs["tokens"] > 0 and cs["fim"] == "unavailable"
    cfg = RunConfig.load(run / "config.yaml")
    assert cfg.task == "code" and cfg.data.repo == str(repo.root.resolve())
    lines = scan_summary_lines(cs)
    text = "\n".join(lines)
    assert "secrets kept out of the dataset: 5 file(s)" in text and ".env" in text
    assert f"samples: {cs['samples']:,}" in text
    assert not any(s in text for s in crf.SECRET_STRINGS)


@pytest.fixture(scope="module")
def fim_model(tmp_path_factory, tiny_model) -> Path:
    """The tiny model's folder with a tokenizer that has FIM tokens (data prep reads only
    config.json and the tokenizer, so no weights need rebuilding)."""
    from sage_ft_tui.engine.models.tiny import train_tokenizer

    d = tmp_path_factory.mktemp("fim") / "tiny-fim"
    shutil.copytree(tiny_model, d)
    train_tokenizer(FIM).save(str(d / "tokenizer.json"))
    return d


def test_fim_samples_reach_the_prepared_data(tmp_path, fim_model, sage_home):
    repo = crf.make_code_repo(tmp_path / "proj", git=True)
    run = create_run(_small(code_config(repo.root, str(fim_model), None), fim_rate=0.5, validation_split=0.0))
    rows = [json.loads(x) for x in (run / "data" / "train.jsonl").read_text().splitlines()]
    fims = [r["text"] for r in rows if r["text"].startswith("<|fim_prefix|>")]
    cs = json.loads((run / "data" / "data_report.json").read_text())["code_scan"]
    assert cs["fim"] == "on" and len(fims) == cs["fim_samples"] > 0
    for t in fims:
        assert t.index("<|fim_prefix|>") < t.index("<|fim_suffix|>") < t.index("<|fim_middle|>")
        assert t.count("<|fim_middle|>") == 1


@pytest.mark.parametrize("case", ["missing", "file"])
def test_quickstart_code_bad_repo_is_one_error_line(case, tmp_path):
    target = tmp_path / "nope"
    if case == "file":
        target.write_text("x = 1\n")
    r = cli("quickstart", "code", "--repo", str(target), "--model", "tiny-demo", "--no-tui", timeout=120)
    assert r.returncode != 0
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), r.stderr
    assert ("does not exist" if case == "missing" else "is not a folder") in err[0]


def test_code_config_refuses_bad_repos(tmp_path):
    with pytest.raises(SageError, match="does not exist"):
        code_config(tmp_path / "missing", "tiny-demo")


@pytest.mark.train
def test_quickstart_code_on_this_project_completes(sage_home, tiny_model):
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("needs this project's git checkout")
    r = cli(
        "quickstart",
        "code",
        "--repo",
        str(REPO_ROOT),
        "--model",
        "tiny-demo",
        "--max-steps",
        "3",
        "--max-length",
        "256",
        "--set",
        "data.validation_split=0",
        "--no-tui",
        env={"SAGE_FT_HOME": str(sage_home)},
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    runs = [p for p in sage_home.iterdir() if p.is_dir()]
    assert len(runs) == 1
    run = runs[0]
    assert read_status(run)["state"] == "completed"
    assert (run / "adapter" / "adapter_config.json").exists()
    cs = json.loads((run / "data" / "data_report.json").read_text())["code_scan"]
    assert cs["files_taken"] > 20 and cs["languages"]["python"] > 10 and cs["samples"] > 100
    # The samples' path headers name real files of this project. This file is scanned too, so
    # no literal header here: one written out would be found in its own text (an assertion that
    # once kept passing after the module it named had moved).
    tag = "# " + "path: "
    train = (run / "data" / "train.jsonl").read_text()
    paths = {json.loads(row)["text"].split("\n", 1)[0].removeprefix(tag) for row in train.splitlines()}
    paths = {p for p in paths if p.endswith(".py")}
    assert paths and all((REPO_ROOT / p).is_file() for p in paths), sorted(
        p for p in paths if not (REPO_ROOT / p).is_file()
    )
    assert {"sage_ft_tui/__init__.py", "sage_ft_tui/__main__.py"} <= paths
