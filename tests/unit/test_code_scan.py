"""engine/data/code/scan.py + engine/data/secrets.py: which files are taken, why the others are not,
chunking, headers, FIM layout, determinism, and the errors a user can hit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

import coderepo_factory as crf  # noqa: E402

from sage_ft_tui.engine.config.schema import RunConfig  # noqa: E402
from sage_ft_tui.engine.data.code.languages import (  # noqa: E402
    LANGUAGES,
    header_for,
    language_of,
    normalize_languages,
)
from sage_ft_tui.engine.data.code.records import build_code_records  # noqa: E402
from sage_ft_tui.engine.data.code.samples import build_samples, chunk_text, code_report  # noqa: E402
from sage_ft_tui.engine.data.code.scan import git_root, scan_repository  # noqa: E402
from sage_ft_tui.engine.data.secrets import find_secret, is_secret_name  # noqa: E402
from sage_ft_tui.engine.data.template import ChatTokenizer  # noqa: E402
from sage_ft_tui.engine.errors import SageError  # noqa: E402

FIM = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]


def _tokenizer_dir(path: Path, extra_special=None) -> Path:
    """tokenizer.json + tokenizer_config.json of the tiny model, without building weights."""
    from sage_ft_tui.engine.models.tiny import train_tokenizer

    path.mkdir(parents=True, exist_ok=True)
    train_tokenizer(extra_special).save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|im_end|>"}))
    return path


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> ChatTokenizer:
    return ChatTokenizer(_tokenizer_dir(tmp_path_factory.mktemp("tok")))


@pytest.fixture(scope="module")
def fim_tok(tmp_path_factory) -> ChatTokenizer:
    return ChatTokenizer(_tokenizer_dir(tmp_path_factory.mktemp("fimtok"), FIM))


@pytest.fixture(scope="module", params=[True, False], ids=["git", "walk"])
def repo(request, tmp_path_factory) -> crf.CodeRepo:
    return crf.make_code_repo(tmp_path_factory.mktemp("repo") / "proj", git=request.param)


def _cfg(repo_path, **data) -> RunConfig:
    return RunConfig.from_dict(
        {
            "task": "code",
            "model": {"name": "tiny-demo"},
            "data": {"repo": str(repo_path), **data},
            "training": {"max_length": 128, "max_steps": 1},
        }
    )


# ---- file selection -----------------------------------------------------------------


def test_each_planted_item_is_excluded_and_counted(repo):
    scan = scan_repository(repo.root, max_file_bytes=20_000)
    assert scan.mode == ("git" if repo.git else "walk")
    assert {f.path for f in scan.files} == repo.taken
    got = dict(scan.skipped)
    assert got == repo.expected_skips
    by = scan.skipped_by_reason
    assert by["secret_file"] == 2 and by["secret_content"] == 3
    assert sum(by.values()) == len(repo.expected_skips)
    assert scan.secret_kinds == {
        "src/aws_settings.py": "aws access key id",
        "src/github_client.py": "github token",
        "scripts/embedded_cert.sh": "private key block",
    }
    assert scan.languages == {"python": 2, "go": 1, "javascript": 1, "markdown": 1, "yaml": 1}


def test_report_names_paths_and_reasons_never_secret_text(repo, tok):
    scan = scan_repository(repo.root, max_file_bytes=20_000, keep_text=True)
    rep = json.dumps(code_report(scan, build_samples(scan, tok, max_length=128)))
    for s in crf.SECRET_STRINGS + crf.EXCLUDED_STRINGS:
        assert s not in rep
    skipped = json.loads(rep)["skipped"]
    assert skipped[0]["reason"] in ("secret_file", "secret_content")  # secrets listed first
    assert {"path": "src/github_client.py", "reason": "secret_content", "kind": "github token"} in skipped


def test_default_size_limit_takes_normal_files(repo):
    scan = scan_repository(repo.root)
    assert "big/huge_table.py" in {f.path for f in scan.files}


def test_walk_honours_nested_gitignore_and_negation(tmp_path):
    root = tmp_path / "plain"
    for rel, text in {
        ".gitignore": "*.log.py\nsecret_dir/\ngen_*.py\n!gen_keep.py\n",
        "a.py": "x = 1\n",
        "debug.log.py": "x = 2\n",
        "gen_out.py": "x = 3\n",
        "gen_keep.py": "x = 4\n",
        "secret_dir/b.py": "x = 5\n",
        "sub/.gitignore": "local.py\n!debug.log.py\n",
        "sub/local.py": "x = 6\n",
        "sub/debug.log.py": "x = 7\n",
        "sub/c.py": "x = 8\n",
        "other/local.py": "x = 9\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    scan = scan_repository(root)
    assert scan.mode == "walk"
    assert {f.path for f in scan.files} == {"a.py", "gen_keep.py", "sub/debug.log.py", "sub/c.py", "other/local.py"}
    assert dict(scan.skipped) == {
        "debug.log.py": "gitignored",
        "gen_out.py": "gitignored",
        "secret_dir/": "gitignored",
        "sub/local.py": "gitignored",
        ".gitignore": "unknown_language",
        "sub/.gitignore": "unknown_language",
    }


def test_git_subfolder_and_git_root(repo, tmp_path):
    if not repo.git:
        assert git_root(repo.root) is None
        return
    assert git_root(repo.root / "src") == repo.root.resolve()
    scan = scan_repository(repo.root / "src")
    assert scan.mode == "git"
    assert {f.path for f in scan.files} == {"app.py", "util.js", "lib.go", "new_module.py"}


def test_languages_selectable_and_aliases(repo):
    scan = scan_repository(repo.root, languages=["py", "Go"], max_file_bytes=20_000)
    assert {f.language for f in scan.files} == {"python", "go"}
    # js, markdown, yaml, and the C / shell files (never read once their language is out)
    assert scan.skipped_by_reason["language_not_selected"] == 5
    with pytest.raises(SageError, match="unknown language 'cobolx'"):
        normalize_languages(["cobolx"])


@pytest.mark.parametrize(
    "path,lang",
    [
        ("a/b.py", "python"),
        ("x.tsx", "typescript"),
        ("m.go", "go"),
        ("lib.rs", "rust"),
        ("A.java", "java"),
        ("k.hpp", "cpp"),
        ("c.h", "c"),
        ("run.sh", "shell"),
        ("README.md", "markdown"),
        ("doc.rst", "rst"),
        ("pyproject.toml", "toml"),
        ("ci.yml", "yaml"),
        ("Dockerfile", "dockerfile"),
        ("Makefile", "make"),
        ("LICENSE", None),
        (".bashrc", None),
        ("x.unknown", None),
    ],
)
def test_language_of(path, lang):
    assert language_of(path) == lang


def test_headers_use_the_language_comment_syntax():
    assert header_for("src/app.py", "python") == "# path: src/app.py\n"
    assert header_for("web/main.ts", "typescript") == "// path: web/main.ts\n"
    assert header_for("README.md", "markdown") == "<!-- path: README.md -->\n"
    assert header_for("docs/i.rst", "rst") == ".. path: docs/i.rst\n"
    assert all(header_for("f", lang).endswith("\n") for lang in LANGUAGES)


# ---- secrets ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,secret",
    [
        (".env", True),
        (".env.production", True),
        ("prod.env", True),
        ("server.pem", True),
        ("tls.key", True),
        ("id_rsa", True),
        ("id_ed25519.pub", True),
        ("credentials", True),
        ("gcp-credentials.json", True),
        (".npmrc", True),
        ("home/.ssh/config", True),
        ("terraform.tfstate", True),
        ("env.py", False),
        ("keys.py", False),
        ("environment.yml", False),
        ("monkey.py", False),
    ],
)
def test_secret_file_names(name, secret):
    assert is_secret_name(name) is secret


def test_secret_contents_are_recognised():
    a = "0123456789" * 10
    samples = {
        "private key block": "-----BEGIN " + "OPENSSH PRIVATE KEY-----\nabc\n",
        "aws access key id": "key = '" + crf.AWS_KEY_ID + "'",
        "github token": "t = " + crf.GITHUB_TOKEN,
        "slack token": "xox" + "b-" + "1234567890-abcdefghij",
        "openai key": "OPENAI=" + crf.OPENAI_KEY,
        "hugging face token": "HF_TOKEN=hf_" + "aB3" * 12,
        "google api key": "AIza" + "Sy" + "A" * 33,
        "anthropic key": "sk-ant-" + "api03-" + a[:90],
    }
    for kind, text in samples.items():
        assert find_secret("x = 1\n" + text + "\n") == kind, kind


@pytest.mark.parametrize(
    "text",
    [
        "import sklearn  # sk-learn\n",
        "AKIA = 'short'\n",
        "ghp_tooShort\n",
        "-----BEGIN PUBLIC KEY-----\n",
        "password = os.environ['PASSWORD']\n",
        "hf_hub_download(repo_id='x')\n",
        "def task_key(): pass\n",
    ],
)
def test_ordinary_code_is_not_a_secret(text):
    assert find_secret(text) is None


# ---- samples ------------------------------------------------------------------------


def test_chunks_fit_carry_headers_and_rebuild_each_file(repo, tok):
    scan = scan_repository(repo.root, keep_text=True, max_file_bytes=20_000)
    max_len = 64
    samples = build_samples(scan, tok, max_length=max_len)
    for f in scan.files:
        header = header_for(f.path, f.language)
        budget = max_len - 1 - len(tok.encode(header))
        pieces = chunk_text(tok, f.text, budget)
        assert "".join(pieces) == f.text  # nothing lost, nothing repeated
        assert all(len(tok.encode(p)) <= budget for p in pieces)
        cut = 0
        for p in pieces[:-1]:
            cut += len(p)
            if not p.endswith("\n"):  # a cut inside a line only when that line alone is too long
                start, end = f.text.rfind("\n", 0, cut) + 1, f.text.find("\n", cut) + 1 or len(f.text)
                assert len(tok.encode(f.text[start:end])) > budget
        kept = [r["text"] for r, w in zip(samples.records, samples.wheres) if w.startswith(f.path + "#")]
        assert kept and all(t.startswith(header) and t[len(header) :] in f.text for t in kept)
    assert len([w for w in samples.wheres if w.startswith("src/app.py#")]) > 3  # the long file was cut
    for rec in samples.records:
        assert len(tok.encode(rec["text"])) + 1 <= max_len  # + EOS, added by the trainer
    assert samples.tokens == sum(len(tok.encode(r["text"])) + 1 for r in samples.records)


def test_samples_rebuild_a_file_exactly(tmp_path, tok):
    root = tmp_path / "one"
    root.mkdir()
    text = "".join(f"value_{i} = {i} * 3  # note {i}\n" for i in range(120))
    text += "table = [" + ", ".join(str(i * 7) for i in range(300)) + "]\n" + "    indented = True\n" * 1
    (root / "m.py").write_text(text)
    samples = build_samples(scan_repository(root, keep_text=True), tok, max_length=64)
    header = "# path: m.py\n"
    assert samples.duplicates == 0 and len(samples.records) > 10
    assert "".join(r["text"][len(header) :] for r in samples.records) == text
    assert all(len(tok.encode(r["text"])) + 1 <= 64 for r in samples.records)
    assert samples.wheres[:2] == ["m.py#1", "m.py#2"]


def test_a_line_longer_than_a_chunk_is_cut_at_token_boundaries(tok):
    text = "short line\n" + "x = [" + ", ".join(str(i) for i in range(400)) + "]\n" + "tail\n"
    pieces = chunk_text(tok, text, 40)
    assert "".join(pieces) == text and len(pieces) > 3
    assert pieces[0] == "short line\n"
    assert all(len(tok.encode(p)) <= 40 for p in pieces)


def test_samples_are_deterministic_and_deduplicated(tmp_path, tok):
    root = tmp_path / "dups"
    (root / "a").mkdir(parents=True)
    (root / "a" / "one.py").write_text("pass\n" * 400)  # the same chunk many times in one file
    (root / "a" / "two.py").write_text("".join(f"value_{i} = {i}\n" for i in range(60)))
    (root / "a" / "three.py").write_text("".join(f"value_{i} = {i}\n" for i in range(60)))  # same bytes
    scan = scan_repository(root, keep_text=True)
    assert dict(scan.skipped) == {"a/two.py": "duplicate"}  # files by path: three.py comes first
    s1 = build_samples(scan, tok, max_length=64, seed=3)
    s2 = build_samples(scan_repository(root, keep_text=True), tok, max_length=64, seed=3)
    assert s1.records == s2.records and s1.wheres == s2.wheres
    assert len({r["text"] for r in s1.records}) == len(s1.records)
    assert s1.duplicates >= 1 and s1.chunks == len(s1.records) + s1.duplicates


def test_fim_samples_use_psm_layout(repo, fim_tok):
    scan = scan_repository(repo.root, keep_text=True, max_file_bytes=20_000)
    samples = build_samples(scan, fim_tok, max_length=96, fim_rate=1.0, seed=7)
    assert samples.fim == "on" and samples.fim_samples > 0
    fims = [(r["text"], w) for r, w in zip(samples.records, samples.wheres) if w.endswith(" fim")]
    assert len(fims) == samples.fim_samples
    ids = fim_tok.fim_tokens
    texts = {f.path: f.text for f in scan.files}
    for text, where in fims:
        path = where.split("#")[0]
        header = header_for(path, language_of(path))
        assert text.startswith("<|fim_prefix|>" + header)
        pre, rest = text[len("<|fim_prefix|>" + header) :].split("<|fim_suffix|>")
        suf, mid = rest.split("<|fim_middle|>")
        assert pre and mid and suf and pre + mid + suf in texts[path]  # a chunk of the file, rearranged
        enc = fim_tok.encode(text)
        assert [t for t in enc if t in ids.values()] == [
            ids["<|fim_prefix|>"],
            ids["<|fim_suffix|>"],
            ids["<|fim_middle|>"],
        ]
        assert len(enc) + 1 <= 96
    again = build_samples(scan, fim_tok, max_length=96, fim_rate=1.0, seed=7)
    assert again.records == samples.records
    half = build_samples(scan, fim_tok, max_length=96, fim_rate=0.5, seed=7)
    assert 0 < half.fim_samples < samples.fim_samples


def test_fim_is_unavailable_without_fim_tokens(repo, tok):
    scan = scan_repository(repo.root, keep_text=True, max_file_bytes=20_000)
    s = build_samples(scan, tok, max_length=96, fim_rate=1.0)
    assert s.fim == "unavailable" and s.fim_samples == 0
    assert not any("<|fim_prefix|>" in r["text"] for r in s.records)


def test_files_holding_special_tokens_are_skipped(tmp_path, tok):
    root = tmp_path / "sp"
    root.mkdir()
    (root / "tmpl.py").write_text("END = '<|im_end|>'\n")
    (root / "ok.py").write_text("x = 1\n")
    scan = scan_repository(root, keep_text=True)
    s = build_samples(scan, tok, max_length=64)
    assert s.special_token_files == ["tmpl.py"]
    rep = code_report(scan, s)
    assert rep["skipped_by_reason"]["special_tokens"] == 1 and rep["files_taken"] == 1


# ---- build_code_records and its errors ------------------------------------------------


def test_build_code_records_contract(repo, tok):
    # Default size limit: big/huge_table.py (a 30 KB table) is taken too.
    loaded, extra = build_code_records(_cfg(repo.root, fim_rate=0.0), tok)
    assert loaded.format == "text" and loaded.bad == [] and loaded.files == [str(repo.root.resolve())]
    assert all(set(r) == {"text"} for r in loaded.records)
    assert len(loaded.wheres) == len(loaded.records)
    cs = extra["code_scan"]
    assert cs["files_taken"] == len(repo.taken) + 1 and cs["samples"] == len(loaded.records)
    assert set(cs) >= {
        "files_taken",
        "skipped_by_reason",
        "languages",
        "tokens",
        "samples",
        "fim_samples",
        "scan_seconds",
    }


@pytest.mark.parametrize("case", ["missing", "file", "empty", "only_junk", "bad_language"])
def test_bad_inputs_are_one_clear_error(case, tmp_path, tok):
    target = tmp_path / "x"
    langs = []
    if case == "file":
        target.write_text("x = 1\n")
    elif case == "empty":
        target.mkdir()
    elif case == "only_junk":
        (target / "node_modules").mkdir(parents=True)
        (target / "node_modules" / "a.js").write_text("x\n")
        (target / "logo.png").write_bytes(b"\x89PNG\0")
    elif case == "bad_language":
        target.mkdir()
        langs = ["klingon"]
    with pytest.raises(SageError) as ei:
        build_code_records(_cfg(target, languages=langs), tok)
    line = ei.value.oneline()
    assert "\n" not in line and line.startswith("error: ")
    expect = {
        "missing": "does not exist",
        "file": "is not a folder",
        "empty": "no eligible source files",
        "only_junk": "no eligible source files",
        "bad_language": "unknown language",
    }[case]
    assert expect in line


def test_no_repo_outside_git_is_an_error(tmp_path, monkeypatch, tok):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with pytest.raises(SageError, match="not inside a git repository"):
        scan_repository(None)


def test_no_repo_means_the_git_root_of_cwd(repo, monkeypatch):
    if not repo.git:
        pytest.skip("git case only")
    monkeypatch.chdir(repo.root / "src")
    assert scan_repository(None).root == repo.root.resolve()


def test_engine_module_is_torch_and_textual_free():
    code = (
        "import sys; import sage_ft_tui.engine.data.code.records, sage_ft_tui.engine.recipes.code, "
        "sage_ft_tui.engine.data.secrets; bad = [m for m in ('torch', 'textual', 'transformers') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert r.returncode == 0, r.stdout + r.stderr
