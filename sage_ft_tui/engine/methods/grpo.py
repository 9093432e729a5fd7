"""GRPO with verifiable rewards: sample answers to prompts, learn from rewards checked against
a reference answer (TRL's GRPOTrainer).

Prompts come rendered by our chat template (engine/data/preference.py), with the reference
answer column; each reward function (grpo_rewards.py) scores every completion and TRL logs
each one's mean. Generation runs through transformers (`generate`) unless vLLM is installed
and a CUDA GPU is present (grpo.use_vllm auto), then in-process (colocate).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Callable, Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.sft import CONVERSATION_FORMATS
from sage_ft_tui.engine.methods.spec import TaskSpec

if TYPE_CHECKING:
    from sage_ft_tui.engine.config.schema import RunConfig

# TRL's metric names -> our event fields; each reward's mean (rewards/<name>/mean) becomes
# reward_<name> (engine/train/metrics.py)
METRICS = {"reward": "reward", "kl": "kl"}


def use_vllm(cfg: RunConfig) -> bool:
    choice = cfg.grpo.use_vllm
    if choice == "off":
        return False
    have = importlib.util.find_spec("vllm") is not None
    try:
        import torch

        have = have and torch.cuda.is_available()
    except ImportError:
        have = False
    if choice == "on" and not have:
        raise SageError(
            "grpo.use_vllm is on, but vLLM or a CUDA GPU is missing",
            hint="pip install vllm on a GPU machine, or set grpo.use_vllm auto",
            kind="config",
        )
    return have


def check_config(cfg: RunConfig) -> Optional[str]:
    t, g = cfg.training, cfg.grpo
    if (t.micro_batch_size * t.grad_accumulation) % g.num_generations:
        return (
            f"grpo.num_generations / training: micro_batch_size × grad_accumulation "
            f"({t.micro_batch_size} × {t.grad_accumulation}) must be a multiple of grpo.num_generations "
            f"({g.num_generations})"
        )
    return None


def check_rewards(cfg: RunConfig) -> None:
    """Each reward is built in, or a file that exists, compiles and defines the function (nothing run)."""
    from sage_ft_tui.engine.methods.grpo_rewards import check_reward

    for spec in cfg.grpo.rewards:
        check_reward(spec)


def reward_functions(cfg: RunConfig) -> list:
    from sage_ft_tui.engine.methods.grpo_rewards import load_reward

    g = cfg.grpo
    return [load_reward(spec, format_regex=g.format_regex, target_length=g.target_length) for spec in g.rewards]


def grpo_trainer(cfg: RunConfig, args: Callable[[type], dict], kw: dict):
    from trl import GRPOConfig

    from sage_ft_tui.engine.data.template import chat_tokenizer
    from sage_ft_tui.engine.methods.trainers.grpo import RenderedPrompts
    from sage_ft_tui.engine.models.resolve import model_dir

    g = cfg.grpo
    vllm = use_vllm(cfg)
    config = GRPOConfig(
        **args(GRPOConfig),
        num_generations=g.num_generations,
        max_completion_length=g.max_completion_length,
        temperature=g.temperature,
        beta=g.beta,
        use_vllm=vllm,
        **({"vllm_mode": "colocate"} if vllm else {}),
        remove_unused_columns=False,  # the answer column reaches the reward functions
    )
    ours = chat_tokenizer(str(model_dir(cfg.model.name, revision=cfg.model.revision)))
    return RenderedPrompts(ours, reward_funcs=reward_functions(cfg), args=config, **kw)


TASKS = (
    TaskSpec(
        "grpo",
        "Reasoning with verifiable rewards (GRPO)",
        "Sample answers to prompts and learn from rewards checked against a reference answer.",
        '{"prompt": ..., "answer": ...} (or question/answer, alpaca, messages)',
        CONVERSATION_FORMATS,
        {"prompt": "What is 7 × 6? Answer with a number.", "answer": "42"},
        grpo_trainer,
        order=70,
        packs=False,
        trainer_rows=True,
        records="grpo",
        section="grpo",
        wizard_steps=("Method",),
        metrics=METRICS,
        check_config=check_config,
        preflight=check_rewards,
    ),
)
