"""The report: one summary table at the end and gpu_check.json (rewritten after every
phase, so a check killed half-way still leaves what it measured)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.gpu.measure import gib

# A phase's status: what it did, or why it did not.
OK, CUT, FAILED, SKIPPED = "ok", "cut short", "failed", "not exercised"
JSON_NAME = "gpu_check.json"
SUMMARY_NAME = "gpu_check_summary.txt"


def write_json(out: Path, report: dict) -> Path:
    path = out / JSON_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def _pct(x) -> str:
    return f"{x:.1%}" if isinstance(x, (int, float)) else "n/a"


def _ratio(x) -> str:
    return f"{x:.2f}" if isinstance(x, (int, float)) else "n/a"


def row(phase: dict) -> list[str]:
    f = phase.get("figures") or {}
    m = f.get("memory") or {}
    p = f.get("paths") or {}
    tps = f.get("tokens_per_s")
    path = p.get("attention_path", "")
    if p.get("liger"):
        path += " + Liger"
    if p.get("quantization") not in (None, "none"):
        path += " + " + p["quantization"]
    alloc = f"{gib(m.get('torch_peak_allocated'))}/{gib(m.get('estimate_allocated'))}" if m else ""
    if m.get("ratio_allocated"):
        alloc += f" ({_ratio(m['ratio_allocated'])})"
    nvml = f"{gib(m.get('nvml_peak'))}/{gib(m.get('estimate_total'))}" if m else ""
    if m.get("ratio_total"):
        nvml += f" ({_ratio(m['ratio_total'])})"
    return [
        phase["name"],
        phase["status"],
        f"{phase.get('wall_s', 0):.0f}",
        f"{tps:,.0f}" if tps else "",
        _pct(f.get("mfu")) if f else "",
        alloc,
        nvml,
        path,
        phase.get("note", ""),
    ]


HEADER = ["phase", "status", "s", "tokens/s", "MFU", "torch peak/est", "NVML/est", "path", "note"]


def table(report: dict) -> str:
    rows = [HEADER] + [row(p) for p in report["phases"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER) - 1)]
    lines = []
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    lines.insert(1, "  ".join("-" * w for w in widths) + "  ----")
    out = "\n".join(lines)
    if report.get("path_failures"):
        out += "\n\npaths that FAILED (installed, but broke; the phases re-ran on the next path down):\n" + "\n".join(
            f"  - {x}" for x in report["path_failures"]
        )
    if report.get("not_exercised"):
        out += "\n\nnot exercised (missing wheels or hardware; never a failure):\n" + "\n".join(
            f"  - {x}" for x in report["not_exercised"]
        )
    return out
