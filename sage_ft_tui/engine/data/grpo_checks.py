"""Checks before a GRPO run that read its data and its rewards together."""

from __future__ import annotations

from sage_ft_tui.engine.data.findings import Finding
from sage_ft_tui.engine.data.loaded import LoadedData
from sage_ft_tui.engine.data.preference import prompt_text
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.grpo_rewards import last_number, probe_rewards


def grpo_checks(cfg, tok, loaded: LoadedData) -> list[Finding]:
    """Before a GRPO run: each user reward imported and called on the first prompt (in a
    child process, engine/methods/grpo_rewards.probe_rewards), the format regex compiled, and
    number_match against reference answers that hold no number (warned; refused when none
    does and it is the only reward: nothing could ever score)."""
    g = cfg.grpo
    rec = loaded.records[0]
    probe_rewards(
        list(g.rewards), {"prompt": prompt_text(tok, rec), "answer": rec["answer"]}, format_regex=g.format_regex
    )
    if "number_match" not in g.rewards:
        return []
    none = [w for r, w in zip(loaded.records, loaded.wheres) if last_number(str(r.get("answer", ""))) is None]
    if not none:
        return []
    n = len(loaded.records)
    if len(none) == n and list(g.rewards) == ["number_match"]:
        raise SageError(
            f"number_match: none of the {n} reference answers holds a number, so no completion can ever score",
            where=none[0],
            hint="use --reward exact_match for answers that are not numbers (or fix grpo.answer_field)",
            kind="data",
        )
    return [
        Finding(
            "reward_no_number",
            "warning",
            f"number_match: {len(none)} of {n} reference answers hold no number; it scores 0 on every completion "
            "of those prompts",
            none[0],
            "add exact_match for them, or check grpo.answer_field",
        )
    ]
