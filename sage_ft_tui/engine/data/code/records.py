"""The code task's records: a repository scanned (scan.py) and cut into samples, as the
data analysis reads any task's data (a LoadedData) plus the report's `code_scan` section."""

from __future__ import annotations

from sage_ft_tui.engine.data.code.samples import build_samples, code_report
from sage_ft_tui.engine.data.code.scan import scan_repository
from sage_ft_tui.engine.data.loaded import LoadedData
from sage_ft_tui.engine.errors import SageError


def build_code_records(cfg, tok):
    """The code task's data (run creation and the wizard's scan preview): (LoadedData,
    {"code_scan": {...}}) — the repository scanned, its files cut into samples."""
    d = cfg.data
    scan = scan_repository(d.repo, languages=d.languages, keep_text=True)
    if not scan.files:
        by = ", ".join(f"{r} {n}" for r, n in scan.skipped_by_reason.items()) or "no files at all"
        raise SageError(
            f"{scan.root}: no eligible source files ({by})",
            kind="data",
            hint="point --repo at a folder of source code, or widen data.languages",
        )
    samples = build_samples(
        scan,
        tok,
        max_length=cfg.training.max_length,
        fim_rate=d.fim_rate,
        seed=cfg.training.seed,
        max_samples=d.max_samples,
    )
    for f in scan.files:  # the text is no longer needed; do not keep a copy of the repo around
        f.text = None
    if not samples.records:
        raise SageError(
            f"{scan.root}: no samples from {len(scan.files)} files (all hold the tokenizer's special tokens)",
            kind="data",
            hint="choose other files or another model",
        )
    loaded = LoadedData(
        samples.records,
        format="text",
        files=[str(scan.root)],
        bad=[],
        total_rows=len(samples.records) + samples.duplicates,
        wheres=samples.wheres,
        groups=[w.rsplit("#", 1)[0] for w in samples.wheres],  # a file's pieces stay on one side of the split
    )
    return loaded, {"code_scan": code_report(scan, samples)}
