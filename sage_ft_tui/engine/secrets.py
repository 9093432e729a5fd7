"""Secret detection for the code task: file names that hold secrets, and text that holds a
private key or a recognisable credential.

What is reported is the *kind* of secret and the file's path, never the matched text:
`find_secret(text)` returns a label such as "aws access key id" or None.

The token patterns are the well-known, prefixed formats (the same families gitleaks and
GitHub secret scanning look for); they are specific enough that a hit is almost always a
real credential, so a file that holds one is dropped whole rather than redacted (a
redaction that misses one character still leaks the secret into the training data).
Generic high-entropy strings and `password = "..."` assignments are not matched: too many
false positives in ordinary code.
"""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache

# ---- file names ------------------------------------------------------------------

# Matched against the file's base name, case-insensitively.
SECRET_NAME_GLOBS: tuple[str, ...] = (
    ".env", ".env.*", "*.env", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk", "*.asc", "*.gpg", "*.kdbx",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    "credentials", "credentials.*", "*credentials*.json", "client_secret*.json", "service-account*.json",
    ".netrc", "_netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials", ".htpasswd", ".dockercfg",
    "secrets.yml", "secrets.yaml", "secrets.json", "secrets.toml", "*.secret", "*.secrets",
    "terraform.tfstate", "terraform.tfstate.*", "*.tfvars",
)
# Matched against the repository-relative path (posix), for well-known secret folders.
SECRET_PATH_GLOBS: tuple[str, ...] = ("*/.ssh/*", ".ssh/*", "*/.aws/*", ".aws/*", "*/.docker/config.json",
                                      ".docker/config.json", "*/.kube/config", ".kube/config")


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

# (label, pattern). Labels go into reports; the matched text never does.
SECRET_PATTERNS: tuple[tuple[str, str], ...] = (
    ("private key block", r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----"),
    ("aws access key id", r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
    ("aws secret access key", r"(?i)aws_?secret_?access_?key\s*[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}\b"),
    ("github token", r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b"),
    ("github token", r"\bgithub_pat_[A-Za-z0-9_]{60,255}\b"),
    ("gitlab token", r"\bglpat-[A-Za-z0-9_\-]{20,}\b"),
    ("slack token", r"\bxox[abposre]-[A-Za-z0-9\-]{10,}"),
    ("slack webhook", r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/]{20,}"),
    ("openai key", r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}"),
    ("openai key", r"\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}\b"),
    ("openai key", r"\bsk-[A-Za-z0-9]{48}\b"),
    ("anthropic key", r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{80,}"),
    ("hugging face token", r"\bhf_[A-Za-z0-9]{34,}\b"),
    ("google api key", r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    ("stripe key", r"\b(?:sk|rk)_live_[0-9a-zA-Z]{24,}\b"),
    ("npm token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("pypi token", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}"),
    ("sendgrid key", r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b"),
    ("twilio key", r"\bSK[0-9a-fA-F]{32}\b"),
)


@lru_cache(maxsize=1)
def _content_re() -> tuple[re.Pattern, list[str]]:
    parts, labels = [], []
    for i, (label, pat) in enumerate(SECRET_PATTERNS):
        flags = ""
        if pat.startswith("(?i)"):
            flags, pat = "(?i:", pat[4:]
        parts.append(f"(?P<s{i}>{flags}{pat}{')' if flags else ''})")
        labels.append(label)
    return re.compile("|".join(parts)), labels


def find_secret(text: str) -> str | None:
    """The kind of the first secret in `text` ("github token", ...), or None."""
    rx, labels = _content_re()
    m = rx.search(text)
    if m is None:
        return None
    return labels[int(m.lastgroup[1:])]
