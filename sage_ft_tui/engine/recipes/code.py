"""`quickstart code`: a repository → a code-task run config, and the scan summary lines
printed before training (headless) or shown by the wizard.

Torch-free and textual-free.
"""

from __future__ import annotations

from typing import Optional, Union

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.data.code.languages import SKIP_REASONS
from sage_ft_tui.engine.data.code.records import build_code_records
from sage_ft_tui.engine.data.code.scan import ScanResult, check_repo_path
from sage_ft_tui.engine.data.template import chat_tokenizer
from sage_ft_tui.engine.fsutil import fmt_bytes
from sage_ft_tui.engine.models.resolve import model_dir

DEFAULT_FIM_RATE = 0.5  # used only when the model's tokenizer has FIM tokens (see codebase.py)
DEFAULT_VALIDATION_SPLIT = 0.05


def code_config(repo, model: str, name: Optional[str] = None) -> RunConfig:
    """A code-task RunConfig for `repo` (None: the git root of the current folder).

    The repository path is stored resolved, so `sage-ft-tui run <run>` reproduces the scan
    from anywhere. Training settings are left to the preset the caller applies."""
    root = check_repo_path(repo)  # SageError: missing, not a folder, no git root
    return RunConfig.from_dict(
        {
            "task": "code",
            "name": name,
            "model": {"name": model},
            "data": {
                "repo": str(root),
                "languages": [],
                "fim_rate": DEFAULT_FIM_RATE,
                "validation_split": DEFAULT_VALIDATION_SPLIT,
            },
        },
        source="quickstart code",
    )


def scan_summary_lines(scan: Union[ScanResult, dict], secrets_shown: int = 5) -> list[str]:
    """Plain lines (no markup) describing a scan: a ScanResult, or the `code_scan` section
    of data_report.json (which adds samples and tokens). Paths and counts only."""
    rep = scan.to_report() if isinstance(scan, ScanResult) else dict(scan)
    how = "git ls-files" if rep.get("mode") == "git" else "folder walk, .gitignore honoured"
    lines = [f"repository {rep.get('repo', '?')} ({how})"]
    langs = rep.get("languages") or {}
    lang_s = ", ".join(f"{k} {v}" for k, v in langs.items()) or "none"
    sel = rep.get("languages_selected")
    lines.append(
        f"taken: {rep.get('files_taken', 0)} files, {fmt_bytes(rep.get('bytes_taken', 0))} ({lang_s})"
        + (f"; languages selected: {', '.join(sel)}" if sel else "")
    )
    by = rep.get("skipped_by_reason") or {}
    total = sum(by.values())
    lines.append(f"skipped: {total}" + (" — " + ", ".join(f"{r} {n}" for r, n in by.items()) if by else ""))
    secrets = [s["path"] for s in rep.get("skipped", []) if s.get("reason") in ("secret_file", "secret_content")]
    n_secrets = by.get("secret_file", 0) + by.get("secret_content", 0)
    if n_secrets:
        more = f", and {n_secrets - secrets_shown} more" if n_secrets > secrets_shown else ""
        lines.append(
            f"secrets kept out of the dataset: {n_secrets} file(s): {', '.join(secrets[:secrets_shown])}{more}"
        )
    if "samples" in rep:
        fim = rep.get("fim", "off")
        fim_s = {
            "on": f"{rep.get('fim_samples', 0)} fill-in-the-middle",
            "unavailable": "no fill-in-the-middle: the tokenizer has no FIM tokens",
            "off": "fill-in-the-middle off",
        }.get(fim, fim)
        lines.append(f"samples: {rep['samples']:,} ({fim_s}), {rep.get('tokens', 0):,} tokens")
    timing = f"scan {rep.get('scan_seconds', 0):.2f} s"
    if "build_seconds" in rep:
        timing += f", samples {rep['build_seconds']:.2f} s"
    lines.append(timing)
    return lines


def code_scan_preview(cfg: RunConfig) -> dict:
    """What `create_run` reports as `code_scan` for this config (files, skips, samples,
    tokens), without writing anything: for the wizard's scan summary. The records are built
    by the code task's own builder (data/code/records.py), as run creation builds them.
    Loads the model's tokenizer only (torch-free); SageError for a bad repository or model."""
    tok = chat_tokenizer(str(model_dir(cfg.model.name, revision=cfg.model.revision)))
    return build_code_records(cfg, tok)[1]["code_scan"]


def skip_reason_text(reason: str) -> str:
    """A sentence for a skip reason (the wizard's tooltip / legend)."""
    return SKIP_REASONS.get(reason, reason)
