"""Secret detection: file names that hold secrets (code task), and text that holds a
private key or a recognisable credential (every task: `find_data_secret` on data rows).

What is reported is the *kind* of secret and the file's path, never the matched text:
`find_secret(text)` returns a label such as "aws access key id" or None.

The token patterns are the well-known, prefixed formats (the same families gitleaks and
GitHub secret scanning look for); they are specific enough that a hit is almost always a
real credential, so a file that holds one is dropped whole rather than redacted (a
redaction that misses one character still leaks the secret into the training data).
Generic high-entropy strings and `password = "..."` assignments are not matched: too many
false positives in ordinary code. Data rows also get DATA_ONLY_PATTERNS (a password inside a
URL), where a placeholder password (`user:password@`, `${PASS}`) is not taken for one.
"""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache

from sage_ft_tui.engine.data.literals import LiteralScan

# ---- file names ------------------------------------------------------------------

# Matched against the file's base name, case-insensitively.
SECRET_NAME_GLOBS: tuple[str, ...] = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "*.asc",
    "*.gpg",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "credentials",
    "credentials.*",
    "*credentials*.json",
    "client_secret*.json",
    "service-account*.json",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".htpasswd",
    ".dockercfg",
    "secrets.yml",
    "secrets.yaml",
    "secrets.json",
    "secrets.toml",
    "*.secret",
    "*.secrets",
    "terraform.tfstate",
    "terraform.tfstate.*",
    "*.tfvars",
)
# Matched against the repository-relative path (posix), for well-known secret folders.
SECRET_PATH_GLOBS: tuple[str, ...] = (
    "*/.ssh/*",
    ".ssh/*",
    "*/.aws/*",
    ".aws/*",
    "*/.docker/config.json",
    ".docker/config.json",
    "*/.kube/config",
    ".kube/config",
)


@lru_cache(maxsize=1)
def _name_re() -> re.Pattern:
    return re.compile("|".join(fnmatch.translate(g) for g in SECRET_NAME_GLOBS), re.IGNORECASE)


@lru_cache(maxsize=1)
def _path_re() -> re.Pattern:
    return re.compile("|".join(fnmatch.translate(g) for g in SECRET_PATH_GLOBS), re.IGNORECASE)


def is_secret_name(rel_path: str) -> bool:
    """True when the file's name or place says it holds secrets (.env, *.pem, id_rsa, ...)."""
    name = rel_path.rsplit("/", 1)[-1]
    return bool(_name_re().match(name) or _path_re().match(rel_path))


# ---- file contents ---------------------------------------------------------------

# (label, literals, pattern). Labels go into reports; the matched text never does.
# `literals`: at least one of them occurs in any match. A plain substring test on them
# comes first, so the regular expressions only run on the rare file that could match
# (the scan of a 10,000-file repository would otherwise spend seconds in `re`).
SECRET_PATTERNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("private key block", ("PRIVATE KEY",), r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----"),
    (
        "aws access key id",
        ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
        r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b",
    ),
    (
        "aws secret access key",
        ("ecret", "ECRET"),
        r"(?i)aws_?secret_?access_?key\s*[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}\b",
    ),
    ("github token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b"),
    ("github token", ("github_pat_",), r"\bgithub_pat_[A-Za-z0-9_]{60,255}\b"),
    ("gitlab token", ("glpat-",), r"\bglpat-[A-Za-z0-9_\-]{20,}\b"),
    ("slack token", ("xox",), r"\bxox[abposre]-[A-Za-z0-9\-]{10,}"),
    ("slack webhook", ("hooks.slack.com",), r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/]{20,}"),
    ("openai key", ("sk-",), r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}"),
    ("openai key", ("T3BlbkFJ",), r"\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}\b"),
    ("openai key", ("sk-",), r"\bsk-[A-Za-z0-9]{48}\b"),
    ("anthropic key", ("sk-ant-",), r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{80,}"),
    ("hugging face token", ("hf_",), r"\bhf_[A-Za-z0-9]{34,}\b"),
    ("google api key", ("AIza",), r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    ("stripe key", ("_live_",), r"\b(?:sk|rk)_live_[0-9a-zA-Z]{24,}\b"),
    ("npm token", ("npm_",), r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("pypi token", ("pypi-AgEIcHlwaS5vcmc",), r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}"),
    ("sendgrid key", ("SG.",), r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b"),
    ("twilio key", ("SK",), r"\bSK[0-9a-fA-F]{32}\b"),
    ("stripe key", ("_test_",), r"\b(?:sk|rk)_test_[0-9a-zA-Z]{24,}\b"),
    ("openrouter key", ("sk-or-",), r"\bsk-or-v1-[0-9a-f]{64}\b"),
    ("groq key", ("gsk_",), r"\bgsk_[A-Za-z0-9]{48,}\b"),
    ("xai key", ("xai-",), r"\bxai-[A-Za-z0-9]{70,}\b"),
    ("perplexity key", ("pplx-",), r"\bpplx-[A-Za-z0-9]{40,}\b"),
    ("replicate token", ("r8_",), r"\br8_[A-Za-z0-9]{37}\b"),
    ("google oauth token", ("ya29.",), r"\bya29\.[0-9A-Za-z_\-]{30,}"),
    ("digitalocean token", ("dop_v1_", "doo_v1_"), r"\bdo[op]_v1_[a-f0-9]{64}\b"),
    ("shopify token", ("shpat_", "shpss_", "shpca_"), r"\bshp(?:at|ss|ca)_[a-fA-F0-9]{32}\b"),
    ("databricks token", ("dapi",), r"\bdapi[a-f0-9]{32}\b"),
    ("mailgun key", ("key-",), r"\bkey-[0-9a-f]{32}\b"),
    ("telegram bot token", (":AA",), r"\b\d{8,10}:AA[0-9A-Za-z_\-]{33}\b"),
    ("azure storage key", ("AccountKey=",), r"AccountKey=[A-Za-z0-9+/]{86}=="),
    ("json web token", ("eyJ",), r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{20,}"),
)
# Only in data rows: in code these are too often examples.
DATA_ONLY_PATTERNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("password in a URL", ("://",), r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,20}://[^\s:/@]{1,64}:([^\s/@]{3,128})@[\w.\-]+"),
)
# Passwords in URLs that are plainly examples.
_PLACEHOLDER_PASSWORDS = re.compile(
    r"(?i)^(?:pass(?:word|wd)?|pwd|secret|changeme|example|xxx+|\*+|<[^>]*>|\$\{?[^}]*\}?|\{[^}]*\}|\[[^\]]*\])$"
)


@lru_cache(maxsize=1)
def _compiled() -> list[tuple[str, tuple[str, ...], re.Pattern]]:
    return [(label, lits, re.compile(pat)) for label, lits, pat in SECRET_PATTERNS]


@lru_cache(maxsize=1)
def _compiled_data() -> list[tuple[str, tuple[str, ...], re.Pattern]]:
    return [(label, lits, re.compile(pat)) for label, lits, pat in DATA_ONLY_PATTERNS]


def find_secret(text: str) -> str | None:
    """The kind of the first secret found in `text` ("github token", ...), or None."""
    for label, lits, rx in _compiled():
        if any(lit in text for lit in lits) and rx.search(text):
            return label
    return None


def _minimal(lits: set[str]) -> tuple[str, ...]:
    """Drop each literal that contains a shorter one (if "sk-" is absent, so is "sk-ant-")."""
    return tuple(sorted(x for x in lits if not any(y != x and y in x for y in lits)))


SECRET_LITERALS: tuple[str, ...] = _minimal({lit for _, ls, _ in SECRET_PATTERNS + DATA_ONLY_PATTERNS for lit in ls})


@lru_cache(maxsize=1)
def _literal_scan() -> LiteralScan:
    return LiteralScan(SECRET_LITERALS)


def may_hold_secret(text: str) -> bool:
    """False when no pattern's literal occurs in `text` (then no pattern can match). One
    LiteralScan: cheap enough for a whole batch of rows at once, so callers look at single
    rows only on a hit."""
    return _literal_scan()(text)


def find_data_secret(text: str) -> str | None:
    """find_secret, plus what only counts as a secret in training data (a URL's password)."""
    hit = find_secret(text)
    if hit:
        return hit
    for label, lits, rx in _compiled_data():
        if any(lit in text for lit in lits):
            for m in rx.finditer(text):
                if not _PLACEHOLDER_PASSWORDS.match(m.group(1)):
                    return label
    return None


def row_strings(obj, out: list[str] | None = None) -> list[str]:
    """Every string in a row (keys and values, at any depth), for the detectors."""
    out = [] if out is None else out
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, str):
            out.append(o)
        elif isinstance(o, dict):
            out.extend(k for k in o if isinstance(k, str))
            stack.extend(o.values())
        elif isinstance(o, (list, tuple)):
            stack.extend(o)
    return out
