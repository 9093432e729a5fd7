"""The supervised tasks: qa, instruction, chat, text and code, all trained by TRL's SFTTrainer
on input_ids + completion_mask rows (only the answers are trained; text: every token)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

from sage_ft_tui.engine.methods.spec import TaskSpec

if TYPE_CHECKING:
    from sage_ft_tui.engine.config.schema import RunConfig

CONVERSATION_FORMATS = ("alpaca", "qa", "sharegpt", "messages", "prompt_completion")


def plain_text_only(cfg: RunConfig) -> Optional[str]:
    fmt = cfg.data.format
    if fmt not in ("auto", "text"):
        return f"task / data.format: the text task trains on plain text, not {fmt!r}"
    return None


def sft_trainer(cfg: RunConfig, args: Callable[[type], dict], kw: dict):
    from sage_ft_tui.engine.methods.trainers.sft import sft_trainer as build

    return build(cfg, args, kw)


TASKS = (
    TaskSpec(
        "qa",
        "Question answering",
        "Answer questions, optionally from a given context.",
        '{"question": ..., "context": ... (optional), "answer": ...}',
        CONVERSATION_FORMATS,
        {"question": "What is the capital of Kenya?", "context": "", "answer": "Nairobi."},
        sft_trainer,
        order=10,
        images=True,
    ),
    TaskSpec(
        "instruction",
        "Instruction following",
        "Follow an instruction, with optional input (alpaca).",
        '{"instruction": ..., "input": ... (optional), "output": ...}',
        CONVERSATION_FORMATS,
        {"instruction": "Reverse the word.", "input": "river", "output": "revir"},
        sft_trainer,
        order=20,
        images=True,
    ),
    TaskSpec(
        "chat",
        "Multi-turn chat",
        "Whole conversations; every assistant turn is trained.",
        '{"messages": [{"role": "user"|"assistant"|"system", "content": ...}, ...]} or ShareGPT',
        CONVERSATION_FORMATS,
        {"messages": [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello! How can I help?"}]},
        sft_trainer,
        order=30,
        images=True,
        records="chat",
    ),
    TaskSpec(
        "text",
        "Continued pre-training",
        "Plain text; the model learns to continue it.",
        '{"text": ...} or .txt files (paragraphs)',
        ("text",),
        {"text": "Nairobi is the capital of Kenya."},
        sft_trainer,
        order=40,
        records="text",
        check_config=plain_text_only,
    ),
    TaskSpec(
        "code",
        "Your code repository",
        "Learn a codebase: files become training samples (secrets skipped).",
        "a git repository (--repo PATH)",
        ("text",),
        {"text": "# path: src/app.py\nimport os\n..."},
        sft_trainer,
        order=50,
        records="code",
    ),
)
