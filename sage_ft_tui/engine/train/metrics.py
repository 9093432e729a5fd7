"""The method's own figures in a `log` event: TRL's metric names → our event fields, as the
run's task descriptor maps them (TaskSpec.metrics, engine/methods).

DPO/ORPO/SimPO/CPO: rewards_chosen, rewards_rejected, rewards_margin, rewards_accuracy;
KTO: kl (and the rewards it logs); GRPO: reward and reward_<name> per reward function
(its mean), kl when grpo.beta > 0. See docs/EVENTS.md.
"""

from __future__ import annotations


def method_fields(logs: dict, names: dict[str, str]) -> dict:
    out = {}
    for key, value in logs.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if key in names:
            out[names[key]] = value
        elif key.startswith("rewards/") and key.endswith("/mean"):  # GRPO: rewards/<name>/mean
            out["reward_" + key[len("rewards/") : -len("/mean")]] = value
    return out
