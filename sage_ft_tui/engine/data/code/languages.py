"""The code task's path rules: the source languages it knows (by file name and extension,
with each one's comment syntax for the path header), and the directories, suffixes and
names it never takes (vendored, generated, lock files, binaries), each with its reason.

Torch-free and textual-free.
"""

from __future__ import annotations

from typing import Iterable, Optional

from sage_ft_tui.engine.data.secrets import is_secret_name
from sage_ft_tui.engine.errors import SageError

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
