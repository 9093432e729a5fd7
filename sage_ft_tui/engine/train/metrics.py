"""The method's own figures in a `log` event: TRL's metric names → our event fields.

DPO/ORPO/SimPO: rewards_chosen, rewards_rejected, rewards_margin, rewards_accuracy;
KTO: kl (and the rewards it logs); GRPO: reward and reward_<name> per reward function
(its mean), kl when grpo.beta > 0. See docs/EVENTS.md.
"""

from __future__ import annotations

TRL_TO_EVENT = {
    "rewards/chosen": "rewards_chosen",
    "rewards/rejected": "rewards_rejected",
    "rewards/margins": "rewards_margin",
    "rewards/accuracies": "rewards_accuracy",
    "kl": "kl",
    "reward": "reward",
}


def method_fields(logs: dict) -> dict:
    out = {}
    for key, value in logs.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if key in TRL_TO_EVENT:
            out[TRL_TO_EVENT[key]] = value
        elif key.startswith("rewards/") and key.endswith("/mean"):  # GRPO: rewards/<name>/mean
            out["reward_" + key[len("rewards/") : -len("/mean")]] = value
    return out
