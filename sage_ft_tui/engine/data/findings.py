"""A finding of the data analysis: kind, severity, message, where (file:line), hint.

Every check of the data (row checks, truncation, template, per-task) reports one; the CLI
prints them in one short block, the wizard lists them, data_report.json keeps them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sage_ft_tui.engine.errors import SageError


@dataclass
class Finding:
    kind: str  # multimodal, preference, secret, placeholder, truncation, eos_lost, no_trained_token, duplicates ...
    severity: str  # error | warning
    message: str
    where: str = ""  # file:line of the first instance
    hint: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        at = f" ({self.where})" if self.where else ""
        return f"{self.severity}: {self.message}{at}" + (f" — {self.hint}" if self.hint else "")


def refuse(finding: Finding) -> SageError:
    """A SageError for an error finding; `.finding` keeps it for the wizard."""
    e = SageError(finding.message, hint=finding.hint, kind="data", where=finding.where or None, code=finding.kind)
    e.finding = finding  # type: ignore[attr-defined]
    return e


def error_finding(e: SageError) -> Finding:
    """The finding behind a refusal (or one made from a plain SageError), for the wizard."""
    f = getattr(e, "finding", None)
    return f if isinstance(f, Finding) else Finding(e.kind, "error", e.message, e.where or "", e.hint)
