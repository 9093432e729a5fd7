"""What the run's max length does to the tokenized samples: the share cut, the share of
answers that lose their EOS, the lengths that keep 95% / 99% whole (priced in memory), and
the rows left with no trained token (dropped; none left at all → refused).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from sage_ft_tui.engine.data.findings import Finding, refuse
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import fmt_bytes
from sage_ft_tui.engine.hardware.estimate import estimate_for_config

# A warning once this share of answers loses its end: the model learns not to stop.
EOS_LOST_WARN_SHARE = 0.05
CUT_WARN_SHARE = 0.05


@dataclass
class Truncation:
    samples: int = 0
    cut: int = 0  # longer than max_length
    answers: int = 0  # samples with an answer (conversations)
    eos_lost: int = 0  # answers whose last trained token (the EOS) is past max_length
    no_trained: list[int] = field(default_factory=list)  # indices with no trained token within max_length
    lengths: list[int] = field(default_factory=list)
    max_length: int = 0

    def keep_length(self, share: float) -> int:
        """The smallest max length that keeps `share` of the samples whole."""
        if not self.lengths:
            return 0
        s = sorted(self.lengths)
        return s[min(len(s) - 1, max(0, int(share * len(s) + 0.999999) - 1))]

    def as_dict(self) -> dict:
        n = max(1, self.samples)
        return {
            "max_length": self.max_length,
            "samples": self.samples,
            "share_cut": round(self.cut / n, 4),
            "share_eos_lost": round(self.eos_lost / max(1, self.answers), 4),
            "no_trained_token": len(self.no_trained),
            "keep_95": self.keep_length(0.95),
            "keep_99": self.keep_length(0.99),
        }


def truncation(encoded: list[tuple[list[int], list[int]]], max_length: int, *, is_text: bool) -> Truncation:
    """From (input_ids, completion_mask) pairs: what max_length cuts. Text documents are
    split into max_length pieces (nothing lost), so only their lengths count."""
    t = Truncation(max_length=max_length)
    for i, (ids, mask) in enumerate(encoded):
        n = len(ids)
        t.samples += 1
        t.lengths.append(n)
        if is_text:
            continue
        if n > max_length:
            t.cut += 1
        if any(mask):
            t.answers += 1
            if any(mask[max_length:]):  # its last trained token (the EOS) lies past max_length
                t.eos_lost += 1
        if not any(mask[:max_length]):
            t.no_trained.append(i)
    return t


def truncation_of_lengths(lengths: list[int], max_length: int) -> Truncation:
    """Only what lengths tell (preference pairs, GRPO prompts): the share cut, the lengths that keep all."""
    return Truncation(
        samples=len(lengths),
        cut=sum(1 for n in lengths if n > max_length),
        lengths=list(lengths),
        max_length=max_length,
    )


def memory_at(cfg, max_length: int) -> Optional[int]:
    """Estimated bytes a run of `cfg` needs at `max_length` (None when it cannot be told)."""
    try:
        rc = cfg.model_copy(update={"training": cfg.training.model_copy(update={"max_length": max_length})})
        return estimate_for_config(rc).total
    except Exception:  # the estimate is advice; a model it cannot read must not stop the data step
        return None


def truncation_findings(t: Truncation, cfg=None) -> tuple[list[Finding], dict]:
    """Findings and the report section for a Truncation (memory from the estimator)."""

    rep = t.as_dict()
    if cfg is not None and t.lengths:
        for key in ("keep_95", "keep_99"):
            mem = memory_at(cfg, max(rep[key], 1))
            rep[f"{key}_memory"] = mem
    findings: list[Finding] = []

    def advice() -> str:
        parts = []
        for key, pct in (("keep_95", "95%"), ("keep_99", "99%")):
            mem = rep.get(f"{key}_memory")
            parts.append(f"--max-length {rep[key]} keeps {pct} whole" + (f" (~{fmt_bytes(mem)})" if mem else ""))
        return "; ".join(parts)

    if t.answers and rep["share_eos_lost"] >= EOS_LOST_WARN_SHARE:
        findings.append(
            Finding(
                "eos_lost",
                "warning",
                f"{rep['share_eos_lost']:.0%} of answers lose their end (EOS) at max length {t.max_length}: "
                "the model learns not to stop",
                "",
                advice(),
            )
        )
    elif rep["share_cut"] >= CUT_WARN_SHARE:
        findings.append(
            Finding(
                "truncation",
                "warning",
                f"{rep['share_cut']:.0%} of samples are cut at max length {t.max_length}",
                "",
                advice(),
            )
        )
    return findings, rep


def no_trained_finding(dropped: int, where: str, max_length: int) -> Finding:
    return Finding(
        "no_trained_token",
        "warning",
        f"{dropped} rows keep no answer token within max length {max_length} and were dropped",
        where,
        "raise --max-length, or shorten the prompts of those rows",
    )


def refuse_no_trained(t: Truncation, where: str) -> SageError:
    return refuse(
        Finding(
            "no_trained_token",
            "error",
            f"no sample keeps an answer token within max length {t.max_length}: training would learn nothing",
            where,
            f"raise --max-length (the longest sample has {max(t.lengths, default=0)} tokens; "
            f"{t.keep_length(0.95)} keeps 95% whole)",
        )
    )
