"""The code task: a repository → a text dataset of its own source files.

Torch-free and textual-free (the wizard calls `scan_repository` from a thread).

Which files
    In a git repository: `git ls-files --cached --others --exclude-standard` (tracked files
    plus new files that are not ignored), and `git ls-files --others --ignored
    --exclude-standard --directory` to count what .gitignore keeps out. Elsewhere: a walk
    that honours every .gitignore on the way down (pathspec's GitIgnoreSpec). Either way
    the same rules then apply to each file, first match wins, and every skip is counted by
    reason (`SKIP_REASONS`). A pruned or ignored directory counts once, as "dir/".

Samples (records {"text": ...}, the text-task path: the trainer adds EOS, trains on all)
    Each file is cut into chunks of at most `max_length` tokens, *including* its header
    and the EOS the trainer appends. Cuts fall on line boundaries; a single line longer
    than a chunk is cut at a token boundary. Every chunk starts with a one-line header in
    the file's own comment syntax, so a sample stays valid source:

        # path: src/app.py            (Python, shell, YAML, TOML, ...)
        // path: web/main.ts          (C-family, Go, Rust, Java, JS/TS, ...)
        <!-- path: README.md -->      (Markdown, HTML)
        .. path: docs/index.rst       (reStructuredText)

    With `fim_rate` > 0 and a tokenizer that has <|fim_prefix|>/<|fim_suffix|>/<|fim_middle|>,
    each chunk *also* yields, with probability fim_rate, a fill-in-the-middle sample in PSM
    order: `<|fim_prefix|>{header}{prefix}<|fim_suffix|>{suffix}<|fim_middle|>{middle}`
    (two character-level cut points, as StarCoder does). The plain chunk is kept, so the
    model still sees each file whole, left to right.

    Exact duplicate files (same bytes under another path) are kept once; exact duplicate
    samples are dropped. Order is deterministic: files by path, chunks in file order, a
    chunk's FIM sample right after it; the FIM draws are seeded by (seed, path, chunk).

    Files whose text contains one of the tokenizer's special tokens (e.g. a chat
    template that spells out the end-of-turn token) are skipped ("special_tokens"): the trainer's tokenizer
    would read it as the real control token and teach the model to stop mid-file.

Secrets never reach the run folder: a file dropped as a secret is only named (path and
reason) in the report, its text is never copied, logged or counted into a sample.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import random
import stat as _stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, NamedTuple, Optional

from sage_ft_tui.engine.data.secrets import find_secret, is_secret_name
from sage_ft_tui.engine.errors import SageError

DEFAULT_MAX_FILE_BYTES = 1_000_000
REPORT_LIST_LIMIT = 200
BINARY_SNIFF = 8192

# language → (extensions / exact file names, header opener, header closer)
LANGUAGES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "python": ((".py", ".pyi", ".pyx", ".pxd"), "# ", ""),
    "javascript": ((".js", ".jsx", ".mjs", ".cjs"), "// ", ""),
    "typescript": ((".ts", ".tsx", ".mts", ".cts"), "// ", ""),
    "go": ((".go",), "// ", ""),
    "rust": ((".rs",), "// ", ""),
    "java": ((".java",), "// ", ""),
    "kotlin": ((".kt", ".kts"), "// ", ""),
    "scala": ((".scala", ".sc"), "// ", ""),
    "c": ((".c", ".h"), "// ", ""),
    "cpp": ((".cc", ".cpp", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp", ".cu", ".cuh"), "// ", ""),
    "csharp": ((".cs",), "// ", ""),
    "swift": ((".swift",), "// ", ""),
    "php": ((".php",), "// ", ""),
    "ruby": ((".rb", ".rake", "Gemfile", "Rakefile"), "# ", ""),
    "lua": ((".lua",), "-- ", ""),
    "r": ((".r", ".R"), "# ", ""),
    "sql": ((".sql",), "-- ", ""),
    "shell": ((".sh", ".bash", ".zsh", ".fish"), "# ", ""),
    "powershell": ((".ps1", ".psm1"), "# ", ""),
    "html": ((".html", ".htm", ".vue", ".svelte"), "<!-- ", " -->"),
    "css": ((".css", ".scss", ".sass", ".less", ".tcss"), "/* ", " */"),
    "markdown": ((".md", ".markdown", ".mdx"), "<!-- ", " -->"),
    "rst": ((".rst",), ".. ", ""),
    "toml": ((".toml",), "# ", ""),
    "yaml": ((".yaml", ".yml"), "# ", ""),
    "json": ((".json", ".jsonc"), "// ", ""),
    "ini": ((".ini", ".cfg"), "# ", ""),
    "proto": ((".proto",), "// ", ""),
    "jinja": ((".jinja", ".jinja2", ".j2"), "{# ", " #}"),
    "dockerfile": (("Dockerfile", ".dockerfile"), "# ", ""),
    "make": (("Makefile", "GNUmakefile", ".mk"), "# ", ""),
    "cmake": (("CMakeLists.txt", ".cmake"), "# ", ""),
}
ALIASES = {
    "py": "python",
    "js": "javascript",
    "ts": "typescript",
    "c++": "cpp",
    "cxx": "cpp",
    "cs": "csharp",
    "c#": "csharp",
    "sh": "shell",
    "bash": "shell",
    "md": "markdown",
    "yml": "yaml",
    "rs": "rust",
    "golang": "go",
    "restructuredtext": "rst",
    "docker": "dockerfile",
    "makefile": "make",
    "kt": "kotlin",
}

_BY_NAME: dict[str, str] = {}
_BY_EXT: dict[str, str] = {}
for _lang, (_keys, _o, _c) in LANGUAGES.items():
    for _k in _keys:
        if _k.startswith("."):
            _BY_EXT[_k] = _lang
        else:
            _BY_NAME[_k] = _lang

# Path components that mark vendored or generated trees.
VENDORED_DIRS = frozenset(
    {
        "node_modules",
        ".venv",
        "venv",
        "virtualenv",
        "site-packages",
        "bower_components",
        "vendor",
        "third_party_vendored",
        ".yarn",
        ".pnpm-store",
        "Pods",
        "jspm_packages",
    }
)
GENERATED_DIRS = frozenset(
    {
        "build",
        "dist",
        "target",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".eggs",
        "htmlcov",
        ".next",
        ".nuxt",
        ".gradle",
        ".idea",
        ".vscode",
        ".cache",
        ".parcel-cache",
        "coverage",
        ".terraform",
        "_build",
        "cmake-build-debug",
        "cmake-build-release",
        ".ipynb_checkpoints",
    }
)
META_DIRS = frozenset({".git", ".hg", ".svn"})
GENERATED_SUFFIXES = (
    ".min.js",
    ".min.css",
    ".min.mjs",
    ".js.map",
    ".css.map",
    ".pb.go",
    "_pb2.py",
    "_pb2.pyi",
    ".pyc",
    ".pyo",
    ".bundle.js",
)
LOCK_FILES = frozenset(
    {
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "poetry.lock",
        "Pipfile.lock",
        "Cargo.lock",
        "uv.lock",
        "composer.lock",
        "Gemfile.lock",
        "go.sum",
        "bun.lockb",
        "pdm.lock",
        "flake.lock",
        "mix.lock",
        "pubspec.lock",
        "Package.resolved",
        "npm-shrinkwrap.json",
    }
)
# Known binary formats, decided by name (no need to read them).
BINARY_SUFFIXES = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".ico",
        ".icns",
        ".webp",
        ".tif",
        ".tiff",
        ".psd",
        ".pdf",
        ".zip",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".zst",
        ".7z",
        ".rar",
        ".tar",
        ".jar",
        ".war",
        ".whl",
        ".egg",
        ".so",
        ".dylib",
        ".dll",
        ".exe",
        ".o",
        ".a",
        ".lib",
        ".obj",
        ".class",
        ".wasm",
        ".bin",
        ".dat",
        ".pt",
        ".pth",
        ".ckpt",
        ".safetensors",
        ".onnx",
        ".npy",
        ".npz",
        ".pkl",
        ".pickle",
        ".h5",
        ".parquet",
        ".arrow",
        ".sqlite",
        ".db",
        ".mp3",
        ".mp4",
        ".wav",
        ".ogg",
        ".flac",
        ".mov",
        ".avi",
        ".webm",
        ".ttf",
        ".otf",
        ".woff",
        ".woff2",
        ".eot",
        ".DS_Store",
    }
)
_GENERATED_MARK = ("@generated", "do not edit", "auto-generated", "autogenerated", "generated by protoc")

# Why a file was not taken (the keys of skipped_by_reason).
SKIP_REASONS = {
    "gitignored": "kept out by .gitignore",
    "vendored": "vendored or installed dependencies (node_modules, .venv, vendor, ...)",
    "generated": "build output, caches, minified or marked generated",
    "lockfile": "dependency lock file",
    "secret_file": "a file whose name says it holds secrets (.env, *.pem, *.key, id_rsa, credentials, ...)",
    "secret_content": "text holds a private key or a recognisable token (AWS, GitHub, Slack, OpenAI, HF, ...)",
    "binary": "binary (a binary format's extension, or NUL bytes)",
    "not_utf8": "not UTF-8 text",
    "too_large": "over the size limit",
    "empty": "empty or whitespace only",
    "unknown_language": "not a known source language",
    "language_not_selected": "a language not selected",
    "symlink": "a symbolic link (not followed)",
    "bad_name": "a path that is not UTF-8 or holds control characters",
    "not_a_file": "not a regular file (submodule, device, missing)",
    "duplicate": "same content as a file already taken",
    "special_tokens": "holds the tokenizer's special tokens as text",
}


def language_of(rel_path: str) -> Optional[str]:
    name = rel_path.rsplit("/", 1)[-1]
    if name in _BY_NAME:
        return _BY_NAME[name]
    dot = name.rfind(".")
    if dot <= 0:  # no extension, or a dotfile like .bashrc
        return None
    ext = name[dot:]
    return _BY_EXT.get(ext) or _BY_EXT.get(ext.lower())


def normalize_languages(languages: Optional[Iterable[str]]) -> Optional[frozenset[str]]:
    """User names → canonical language names; None/empty = all. Unknown names are an error."""
    if not languages:
        return None
    out = set()
    for raw in languages:
        key = str(raw).strip().lower()
        key = ALIASES.get(key, key)
        if key not in LANGUAGES:
            raise SageError(
                f"unknown language {raw!r}",
                kind="config",
                hint=f"choose from: {', '.join(sorted(LANGUAGES))} (empty = all)",
            )
        out.add(key)
    return frozenset(out)


def header_for(rel_path: str, language: str) -> str:
    _, opener, closer = LANGUAGES[language]
    return f"{opener}path: {rel_path}{closer}\n"


def path_rule(rel_path: str, is_dir: bool = False) -> Optional[str]:
    """The skip reason that the path alone decides (vendored, generated, lockfile,
    secret_file, binary by extension)."""
    parts = rel_path.rstrip("/").split("/")
    dirs = parts if is_dir else parts[:-1]
    for d in dirs:
        if d in VENDORED_DIRS:
            return "vendored"
        if d in GENERATED_DIRS or d.endswith(".egg-info"):
            return "generated"
    if is_dir:
        return None
    name = parts[-1]
    if name in LOCK_FILES:
        return "lockfile"
    if is_secret_name(rel_path):
        return "secret_file"
    if name.endswith(GENERATED_SUFFIXES):
        return "generated"
    dot = name.rfind(".")
    if dot >= 0 and (name[dot:] in BINARY_SUFFIXES or name[dot:].lower() in BINARY_SUFFIXES):
        return "binary"
    return None


# ---- git ------------------------------------------------------------------------


def _git(args: list[str], cwd: Path) -> Optional[bytes]:
    try:
        r = subprocess.run(
            ["git", *args], cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None


def git_root(path: str | os.PathLike | None = None) -> Optional[Path]:
    """The top folder of the git work tree holding `path` (default: cwd), or None."""
    p = Path(path or os.getcwd()).expanduser()
    if p.is_file():
        p = p.parent
    if not p.is_dir():
        return None
    out = _git(["rev-parse", "--show-toplevel"], p)
    if not out:
        return None
    return Path(out.decode("utf-8", "surrogateescape").strip()).resolve()


def _inside_git_worktree(p: Path) -> bool:
    out = _git(["rev-parse", "--is-inside-work-tree"], p)
    return out is not None and out.strip() == b"true"


def _split_z(out: bytes) -> list[str]:
    return [s.decode("utf-8", "surrogateescape") for s in out.split(b"\0") if s]


# ---- scan -----------------------------------------------------------------------


@dataclass
class ScanFile:
    path: str  # repository-relative, posix
    language: str
    size: int
    text: Optional[str] = field(default=None, repr=False)


@dataclass
class ScanResult:
    root: Path
    mode: str  # "git" or "walk"
    files: list[ScanFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason); never file text
    secret_kinds: dict[str, str] = field(default_factory=dict)  # path -> kind label ("github token")
    languages_selected: Optional[list[str]] = None
    seconds: float = 0.0

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, reason in self.skipped:
            out[reason] = out.get(reason, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def languages(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            out[f.language] = out.get(f.language, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def secrets(self) -> list[str]:
        return [p for p, r in self.skipped if r in ("secret_file", "secret_content")]

    def skipped_list(self, limit: int = REPORT_LIST_LIMIT) -> list[dict]:
        """Paths and reasons, secrets first (the ones a user most wants to see)."""
        order = sorted(self.skipped, key=lambda pr: (pr[1] not in ("secret_file", "secret_content"), pr[0]))
        out = []
        for p, r in order[:limit]:
            d = {"path": _printable(p), "reason": r}
            if p in self.secret_kinds:
                d["kind"] = self.secret_kinds[p]
            out.append(d)
        return out

    def to_report(self) -> dict:
        return {
            "repo": str(self.root),
            "mode": self.mode,
            "files_taken": len(self.files),
            "bytes_taken": self.total_bytes,
            "skipped_by_reason": self.skipped_by_reason,
            "languages": self.languages,
            "languages_selected": self.languages_selected,
            "skipped": self.skipped_list(),
            "scan_seconds": round(self.seconds, 3),
        }


def check_repo_path(repo: str | os.PathLike | None) -> Path:
    """The folder to scan: `repo`, or the git root of the current folder. SageError otherwise."""
    if repo is None or str(repo).strip() == "":
        root = git_root(Path.cwd())
        if root is None:
            raise SageError(
                f"no repository given and {Path.cwd()} is not inside a git repository",
                kind="data",
                hint="pass --repo PATH (a folder of source code)",
            )
        return root
    p = Path(repo).expanduser()
    if not p.exists():
        raise SageError(
            f"repository path {repo} does not exist", kind="data", hint="give an existing folder of source code"
        )
    if not p.is_dir():
        raise SageError(
            f"repository path {repo} is not a folder",
            kind="data",
            hint="give the folder that holds the code, not a file",
        )
    return p.resolve()


def _candidates_git(root: Path) -> Optional[tuple[list[str], list[str]]]:
    listed = _git(["-c", "core.quotepath=off", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], root)
    if listed is None:
        return None
    ignored = _git(["ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"], root) or b""
    files = sorted(set(_split_z(listed)))
    return files, sorted(_split_z(ignored))


def _candidates_walk(root: Path, skipped: list[tuple[str, str]]) -> list[str]:
    """Every file under root, honouring .gitignore files (nested ones too); vendored,
    generated and VCS folders are pruned (counted once)."""
    import pathspec

    specs: list[tuple[str, pathspec.GitIgnoreSpec]] = []  # (dir prefix "" or "a/b/", spec)
    out: list[str] = []

    def ignored(rel: str, is_dir: bool) -> bool:
        probe = rel + "/" if is_dir else rel
        hit = False
        for base, spec in specs:  # outer first; a deeper .gitignore overrides
            if base and not probe.startswith(base):
                continue
            res = spec.check_file(probe[len(base) :]).include
            if res is not None:
                hit = res
        return hit

    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        # Drop specs of folders we have left, add this folder's own .gitignore.
        specs = [(b, s) for b, s in specs if rel_dir.startswith(b)]
        if ".gitignore" in filenames:
            try:
                with open(os.path.join(dirpath, ".gitignore"), encoding="utf-8", errors="replace") as fh:
                    specs.append((rel_dir, pathspec.GitIgnoreSpec.from_lines(fh.read().splitlines())))
            except OSError:
                pass
        keep = []
        for d in sorted(dirnames):
            rel = rel_dir + d
            if d in META_DIRS:
                continue
            if os.path.islink(os.path.join(dirpath, d)):
                skipped.append((rel + "/", "symlink"))
                continue
            reason = path_rule(rel, is_dir=True)
            if reason is None and ignored(rel, True):
                reason = "gitignored"
            if reason:
                skipped.append((rel + "/", reason))
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            rel = rel_dir + f
            if ignored(rel, False):
                skipped.append((rel, "gitignored"))
            else:
                out.append(rel)
    return sorted(out)


def _classify_text(data: bytes) -> tuple[Optional[str], Optional[str]]:
    """(reason, text): reason is None when the bytes are usable text."""
    if b"\0" in data[:BINARY_SNIFF]:
        return "binary", None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8", None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return "empty", None
    return None, text


def _printable(rel: str) -> str:
    """A path as UTF-8-safe text for reports (undecodable bytes and control characters escaped)."""
    if _good_name(rel):
        return rel
    text = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def _good_name(rel: str) -> bool:
    """A path that can go into a one-line header and a UTF-8 JSON file."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes (surrogateescape)
        return False
    return not any(c in rel for c in "\n\r\t")


def _looks_generated(text: str, language: str) -> bool:
    head = text[:1000].lower()
    if any(m in head for m in _GENERATED_MARK):
        return True
    # Minified / machine-written: a big file on a handful of lines, or (code only, prose
    # has long paragraphs) very long lines on average.
    n_lines = text.count("\n") + 1
    if len(text) > 20000 and n_lines < 5:
        return True
    return language not in ("markdown", "rst", "html") and len(text) / n_lines > 200


def scan_repository(
    repo: str | os.PathLike | None,
    languages: Optional[Iterable[str]] = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    *,
    keep_text: bool = False,
) -> ScanResult:
    """Which files of `repo` make training data, and why each other one does not.

    Raises SageError for a missing path or a non-folder; an empty result is not an error
    here (the wizard shows it), `build_code_records` refuses it."""
    t0 = time.perf_counter()
    root = check_repo_path(repo)
    selected = normalize_languages(languages)
    res = ScanResult(root=root, mode="walk", languages_selected=sorted(selected) if selected else None)
    listed = _candidates_git(root) if _inside_git_worktree(root) else None
    if listed is not None:
        res.mode = "git"
        candidates, ignored_entries = listed
        for entry in ignored_entries:
            is_dir = entry.endswith("/")
            res.skipped.append((entry, path_rule(entry, is_dir=is_dir) or "gitignored"))
    else:
        candidates = _candidates_walk(root, res.skipped)

    seen: dict[str, str] = {}  # content hash -> first path
    for rel in candidates:
        if not _good_name(rel):
            res.skipped.append((rel, "bad_name"))
            continue
        reason = path_rule(rel)
        if reason:
            res.skipped.append((rel, reason))
            continue
        lang = language_of(rel)
        if lang is None:
            res.skipped.append((rel, "unknown_language"))
            continue
        if selected is not None and lang not in selected:
            res.skipped.append((rel, "language_not_selected"))
            continue
        full = root / rel
        try:
            st = os.lstat(full)
        except OSError:
            res.skipped.append((rel, "not_a_file"))
            continue
        if _stat.S_ISLNK(st.st_mode):
            res.skipped.append((rel, "symlink"))
            continue
        if not _stat.S_ISREG(st.st_mode):
            res.skipped.append((rel, "not_a_file"))
            continue
        if st.st_size > max_file_bytes:
            res.skipped.append((rel, "too_large"))
            continue
        if st.st_size == 0:
            res.skipped.append((rel, "empty"))
            continue
        try:
            with open(full, "rb") as fh:
                data = fh.read(max_file_bytes + 1)
        except OSError:
            res.skipped.append((rel, "not_a_file"))
            continue
        if len(data) > max_file_bytes:
            res.skipped.append((rel, "too_large"))
            continue
        reason, text = _classify_text(data)
        if reason or text is None:
            res.skipped.append((rel, reason or "empty"))
            continue
        kind = find_secret(text)
        if kind:
            res.skipped.append((rel, "secret_content"))
            res.secret_kinds[rel] = kind
            continue
        if _looks_generated(text, lang):
            res.skipped.append((rel, "generated"))
            continue
        digest = hashlib.blake2b(data, digest_size=16).digest().hex()
        if digest in seen:
            res.skipped.append((rel, "duplicate"))
            continue
        seen[digest] = rel
        res.files.append(ScanFile(rel, lang, len(data), text if keep_text else None))
    res.seconds = time.perf_counter() - t0
    return res


# ---- samples --------------------------------------------------------------------


@dataclass
class CodeSamples:
    records: list[dict]
    wheres: list[str]
    tokens: int = 0  # tokens in the kept samples, EOS included
    chunks: int = 0
    fim_samples: int = 0
    duplicates: int = 0
    special_token_files: list[str] = field(default_factory=list)
    fim: str = "off"  # "on", "off" (rate 0), or "unavailable" (tokenizer lacks the tokens)
    seconds: float = 0.0


def _special_tokens(tok) -> list[str]:
    try:
        dec = tok.tok.get_added_tokens_decoder()
    except AttributeError:
        return []
    return sorted({t.content for t in dec.values() if getattr(t, "special", False) and t.content})


def _line_starts(text: str) -> list[int]:
    starts = [0]
    i = text.find("\n")
    while i != -1:
        if i + 1 < len(text):
            starts.append(i + 1)
        i = text.find("\n", i + 1)
    return starts


def chunk_text(tok, text: str, budget: int, *, enc=None, verify: bool = True) -> list[str]:
    """Cut `text` into pieces of at most `budget` tokens (as `tok.encode` counts them),
    at line boundaries where a line fits, else at token boundaries. Concatenated, the
    pieces give back `text` exactly.

    `enc`: the text's encoding when the caller has it (batch encoding). verify=False skips
    re-encoding each piece: counts then come from the whole text's encoding, which a piece
    encoded alone can exceed by a token or two (merges across a cut) — the caller checks."""
    if budget < 1:
        raise SageError(
            f"max_length leaves no room for code (budget {budget} tokens)",
            kind="config",
            hint="raise training.max_length",
        )
    if enc is None:
        enc = tok.tok.encode(text, add_special_tokens=False)
    n = len(enc)
    if n <= budget:
        return [text]
    fit = (lambda piece: _fit(tok, piece, budget)) if verify else (lambda piece: [piece])
    # tok_start[k] = char where token k starts; the piece of tokens [a, b) is text[start(a):start(b)].
    tok_start = [o[0] for o in enc.offsets]
    line_starts = _line_starts(text)
    pieces: list[str] = []
    a_char, a_tok = 0, 0
    while True:
        if n - a_tok <= budget:
            pieces.extend(fit(text[a_char:]))
            break
        limit_tok = a_tok + budget  # first token not in this piece
        limit_char = tok_start[limit_tok]
        # Last line start in (a_char, limit_char].
        j = bisect.bisect_right(line_starts, limit_char) - 1
        cut = line_starts[j] if j >= 0 and line_starts[j] > a_char else limit_char
        if cut <= a_char:  # one token beyond reach; never loop forever
            cut = tok_start[min(n - 1, a_tok + 1)] if a_tok + 1 < n else len(text)
            if cut <= a_char:
                cut = len(text)
        pieces.extend(fit(text[a_char:cut]))
        a_char = cut
        a_tok = bisect.bisect_left(tok_start, cut)
        if a_char >= len(text):
            break
    return [p for p in pieces if p]


def _fit(tok, piece: str, budget: int) -> list[str]:
    """A piece re-encoded alone can count a few tokens more than its slice of the whole
    file (merges across the cut); split it again until each part truly fits."""
    if len(tok.encode(piece)) <= budget:
        return [piece]
    lines = piece.splitlines(keepends=True)
    if len(lines) > 1:
        mid = len(lines) // 2
        # Move the cut back line by line: the first part shrinks, the rest is re-fitted.
        head = "".join(lines[:-1])
        if len(tok.encode(head)) <= budget:
            return [head] + _fit(tok, lines[-1], budget)
        return _fit(tok, "".join(lines[:mid]), budget) + _fit(tok, "".join(lines[mid:]), budget)
    # One line longer than a chunk: cut at the start of token number `budget`, moving back
    # a token at a time until the head, encoded alone, fits.
    starts = [o[0] for o in tok.tok.encode(piece, add_special_tokens=False).offsets]
    k = min(budget, len(starts) - 1)
    while k > 1 and (starts[k] <= 0 or len(tok.encode(piece[: starts[k]])) > budget):
        k -= 1
    cut = starts[k] if 0 < starts[k] < len(piece) else max(1, len(piece) // 2)
    return [piece[:cut]] + _fit(tok, piece[cut:], budget)


def fim_sample(rng: random.Random, header: str, body: str, tokens: dict[str, str]) -> Optional[str]:
    """PSM fill-in-the-middle: <prefix-tok>{header}{prefix}<suffix-tok>{suffix}<middle-tok>{middle}."""
    if len(body) < 3:
        return None
    i, j = sorted(rng.sample(range(1, len(body)), 2)) if len(body) > 3 else (1, 2)
    prefix, middle, suffix = body[:i], body[i:j], body[j:]
    return f"{tokens['prefix']}{header}{prefix}{tokens['suffix']}{suffix}{tokens['middle']}{middle}"


FIM_NAMES = {"prefix": "<|fim_prefix|>", "suffix": "<|fim_suffix|>", "middle": "<|fim_middle|>"}
FIM_SLACK = 8  # tokens kept free for the three FIM tokens and merges broken by the two cuts


def _fit_with_header(tok, header: str, body: str, budget: int, limit: int) -> list[tuple[str, int]]:
    """(header + part, tokens) for parts of `body`, each within `limit` with its header."""
    out = []
    for part in _fit(tok, body, budget):
        t = header + part
        nt = len(tok.encode(t))
        if nt <= limit or budget <= 1:
            out.append((t, nt))
        else:  # the header merged with the part's first token(s): cut smaller
            out.extend(_fit_with_header(tok, header, part, budget - (nt - limit), limit))
    return out


ENCODE_BATCH = 512  # files (or samples) a batch: bounded memory


def _encode_many(tok, texts: list[str]) -> list:
    """Encodings of `texts`: the tokenizers thread pool where there are cores to spare (on
    one or two cores its overhead makes it slower than a plain loop)."""
    if (os.cpu_count() or 1) >= 4 and os.environ.get("TOKENIZERS_PARALLELISM", "true").lower() not in ("0", "false"):
        return tok.tok.encode_batch(texts, add_special_tokens=False)
    enc = tok.tok.encode
    return [enc(t, add_special_tokens=False) for t in texts]


def _count_tokens(tok, texts: list[str]) -> list[int]:
    out: list[int] = []
    for i in range(0, len(texts), ENCODE_BATCH):
        out.extend(len(e) for e in _encode_many(tok, texts[i : i + ENCODE_BATCH]))
    return out


class _Candidate(NamedTuple):
    text: str
    where: str
    is_fim: bool
    header: str
    body: str
    budget: int


def build_samples(
    scan: ScanResult, tok, *, max_length: int, fim_rate: float = 0.0, seed: int = 42, max_samples: Optional[int] = None
) -> CodeSamples:
    """Chunks (+ FIM samples) of the scanned files; `scan` must have been made with keep_text.

    Every sample's token count (as `tok.encode` counts it, + EOS) is at most max_length:
    files are encoded in batches, cut from those encodings, and every sample is then
    encoded once more, also in batches, to check; the rare piece that grew past its
    budget (merges across a cut) is cut again, the rare FIM sample that did is dropped."""
    t0 = time.perf_counter()
    fim_ids = getattr(tok, "fim_tokens", {}) or {}
    fim_ok = all(fim_ids.get(v) is not None for v in FIM_NAMES.values())
    use_fim = fim_rate > 0 and fim_ok
    out = CodeSamples(records=[], wheres=[], fim="on" if use_fim else ("unavailable" if fim_rate > 0 else "off"))
    eos = 1 if getattr(tok, "eos_id", None) is not None else 0
    files = _usable_files(scan, _special_tokens(tok), out)
    cands = _cut(
        files,
        tok,
        out,
        max_length=max_length,
        eos=eos,
        use_fim=use_fim,
        fim_rate=fim_rate,
        seed=seed,
        max_samples=max_samples,
    )
    _check_lengths(cands, tok, out, limit=max_length - eos, eos=eos)
    if max_samples and len(out.records) > max_samples:
        out.records, out.wheres = out.records[:max_samples], out.wheres[:max_samples]
        out.fim_samples = sum(1 for w in out.wheres if w.endswith(" fim"))
    out.seconds = time.perf_counter() - t0
    return out


def _usable_files(scan: ScanResult, specials: list[str], out: CodeSamples) -> list[ScanFile]:
    """The scanned files, less those that contain the tokenizer's special tokens (listed in `out`)."""
    files = []
    for f in scan.files:
        if f.text is None:
            raise ValueError("build_samples needs a scan made with keep_text=True")
        if specials and any(sp in f.text for sp in specials):
            out.special_token_files.append(f.path)
        else:
            files.append(f)
    return files


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _cut(
    files: list[ScanFile],
    tok,
    out: CodeSamples,
    *,
    max_length: int,
    eos: int,
    use_fim: bool,
    fim_rate: float,
    seed: int,
    max_samples: Optional[int],
) -> list[_Candidate]:
    """Step 1: every file cut into header+chunk samples (and FIM variants), deduplicated, in order."""
    limit = max_length - eos  # tokens of text a sample may hold
    header_cache: dict[str, int] = {}
    cands: list[_Candidate] = []
    seen: set[bytes] = set()
    for i in range(0, len(files), ENCODE_BATCH):
        batch = files[i : i + ENCODE_BATCH]
        encs = _encode_many(tok, [f.text or "" for f in batch])
        for f, enc in zip(batch, encs):
            text = f.text or ""
            header = header_for(f.path, f.language)
            h_tokens = header_cache.get(header)
            if h_tokens is None:
                h_tokens = header_cache[header] = len(tok.encode(header))
            budget = limit - h_tokens - (FIM_SLACK if use_fim else 0)
            if budget < 16:
                raise SageError(
                    f"training.max_length {max_length} is too short for code samples "
                    f"(the header of {f.path} alone takes {h_tokens} tokens)",
                    kind="config",
                    hint="raise training.max_length (512 or more suits code)",
                )
            for k, body in enumerate(chunk_text(tok, text, budget, enc=enc, verify=False)):
                where = f"{f.path}#{k + 1}"
                sample = header + body
                out.chunks += 1
                key = _digest(sample)
                if key in seen:
                    out.duplicates += 1
                else:
                    seen.add(key)
                    cands.append(_Candidate(sample, where, False, header, body, budget))
                if use_fim:
                    rng = random.Random(f"{seed}:{f.path}:{k}")
                    if rng.random() < fim_rate:
                        fs = fim_sample(rng, header, body, FIM_NAMES)
                        if fs is not None and (key := _digest(fs)) not in seen:
                            seen.add(key)
                            cands.append(_Candidate(fs, where + " fim", True, header, body, budget))
        if max_samples and len(cands) >= max_samples:
            break
    return cands


def _check_lengths(cands: list[_Candidate], tok, out: CodeSamples, *, limit: int, eos: int) -> None:
    """Step 2: count every sample's tokens in batches; cut again the few that grew past
    the limit (a FIM sample that did is dropped); the samples go into `out`."""
    counts = _count_tokens(tok, [c.text for c in cands])
    for c, n in zip(cands, counts):
        if n <= limit:
            pieces = [(c.text, c.where, n)]
        elif c.is_fim:
            continue
        else:
            parts = _fit_with_header(tok, c.header, c.body, c.budget, limit)
            pieces = [(t, c.where if j == 0 else f"{c.where}.{j}", nt) for j, (t, nt) in enumerate(parts)]
        for t, w, nt in pieces:
            out.records.append({"text": t})
            out.wheres.append(w)
            out.tokens += nt + eos
            if c.is_fim:
                out.fim_samples += 1


def code_report(scan: ScanResult, samples: Optional[CodeSamples]) -> dict:
    """The data_report.json `code_scan` section: counts, paths and reasons only."""
    rep = scan.to_report()
    if samples is not None:
        by = dict(rep["skipped_by_reason"])
        if samples.special_token_files:
            by["special_tokens"] = len(samples.special_token_files)
            rep["skipped"] = (
                rep["skipped"] + [{"path": p, "reason": "special_tokens"} for p in samples.special_token_files]
            )[:REPORT_LIST_LIMIT]
        rep["skipped_by_reason"] = dict(sorted(by.items(), key=lambda kv: (-kv[1], kv[0])))
        dropped = set(samples.special_token_files)
        kept = [f for f in scan.files if f.path not in dropped]
        langs: dict[str, int] = {}
        for f in kept:
            langs[f.language] = langs.get(f.language, 0) + 1
        rep["files_taken"] = len(kept)
        rep["bytes_taken"] = sum(f.size for f in kept)
        rep["languages"] = dict(sorted(langs.items(), key=lambda kv: (-kv[1], kv[0])))
        rep.update(
            {
                "tokens": samples.tokens,
                "samples": len(samples.records),
                "chunks": samples.chunks,
                "fim_samples": samples.fim_samples,
                "fim": samples.fim,
                "duplicate_samples": samples.duplicates,
                "build_seconds": round(samples.seconds, 3),
            }
        )
    return rep
