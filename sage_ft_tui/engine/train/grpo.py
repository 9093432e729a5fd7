"""GRPO with verifiable rewards through TRL's GRPOTrainer.

Prompts come rendered by our chat template (engine/data/preference.py), with the reference
answer column; each reward function (engine/train/rewards.py) scores every completion and
TRL logs each one's mean. Generation runs through transformers (`generate`) unless vLLM is
installed and a CUDA GPU is present (grpo.use_vllm auto), then in-process (colocate).
"""

from __future__ import annotations

import importlib.util

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError


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


def reward_functions(cfg: RunConfig) -> list:
    from sage_ft_tui.engine.train.rewards import load_reward

    g = cfg.grpo
    return [load_reward(spec, format_regex=g.format_regex, target_length=g.target_length) for spec in g.rewards]


def grpo_trainer(cfg: RunConfig, base_args: dict, trainer_kw: dict):
    """TRL's GRPOTrainer; `trainer_kw` are the model, datasets, tokenizer, peft config and callbacks."""
    from trl import GRPOConfig, GRPOTrainer

    g = cfg.grpo
    vllm = use_vllm(cfg)
    args = GRPOConfig(
        **base_args,
        num_generations=g.num_generations,
        max_completion_length=g.max_completion_length,
        temperature=g.temperature,
        beta=g.beta,
        use_vllm=vllm,
        **({"vllm_mode": "colocate"} if vllm else {}),
        remove_unused_columns=False,  # the answer column reaches the reward functions
    )
    from sage_ft_tui.engine.data.template import chat_tokenizer
    from sage_ft_tui.engine.models.resolve import model_dir

    ours = chat_tokenizer(str(model_dir(cfg.model.name, revision=cfg.model.revision)))

    class Trainer(GRPOTrainer):
        def _tokenize_prompts(self, prompts: list):
            # Our prompts are rendered text that already holds the template's BOS: tokenize them as the
            # preview does (no special tokens added), not with the tokenizer's defaults.
            if prompts and isinstance(prompts[0], str):
                return [ours.encode(p) for p in prompts], None, {}
            return super()._tokenize_prompts(prompts)

    return Trainer(reward_funcs=reward_functions(cfg), args=args, **trainer_kw)
