"""A model folder's family and what its chat template does with a conversation, in one line for
the Model step and `doctor --model`: the family from config.json (models.family), the template's
own facts from `ChatTokenizer.describe()` (data.template). Kept apart from models.family, which
the data package reads, so that models never import data below them."""

from __future__ import annotations

from pathlib import Path

from sage_ft_tui.engine.data.template import chat_tokenizer
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.models.family import family_of


def family_facts(model_dir: Path) -> dict:
    """The family and its template's facts as plain values (doctor --json, the Model step)."""
    fam = family_of(model_dir)
    out: dict = {"family": fam.label if fam else None, "architecture": fam.architecture if fam else None}
    try:
        facts = chat_tokenizer(str(model_dir)).describe()
    except SageError as e:
        out["template"] = None
        out["template_problem"] = e.message.removeprefix(f"{model_dir}: ")
        return out
    out.update(
        template=facts.summary(),
        end_of_turn=facts.end_of_turn,
        stop_tokens=list(facts.stop_tokens),
        system=facts.system,
        system_fold=facts.system_fold,
        history=facts.history,
    )
    return out


def family_summary(model_dir: Path) -> str:
    """One line: 'Gemma 2 (gemma2) · end of turn <end_of_turn>; system prompt folded into the
    first user turn (by sage-ft-tui)'."""
    f = family_facts(model_dir)
    head = f["family"] or "unknown family (no config.json model_type)"
    if f.get("template"):
        return f"{head} · {f['template']}"
    return f"{head} · chat template unknown ({f.get('template_problem') or 'no tokenizer'})"


__all__ = ["family_facts", "family_summary"]
