"""The tasks a user picks from, what data each expects, and which formats fit."""

from __future__ import annotations

from dataclasses import dataclass

from sage_ft_tui.engine.errors import SageError


@dataclass(frozen=True)
class Task:
    name: str
    title: str
    description: str
    shape: str
    formats: tuple[str, ...]
    example: dict


CONVERSATION_FORMATS = ("alpaca", "qa", "sharegpt", "messages", "prompt_completion")
PREFERENCE_FORMATS = ("pairs", "kto")  # the names formats.row_format gives such rows
# Tasks trained by a trainer other than SFT (engine/train/preference.py, grpo.py).
TRAINER_TASKS = ("preference", "grpo")

TASKS: dict[str, Task] = {
    "qa": Task(
        "qa",
        "Question answering",
        "Answer questions, optionally from a given context.",
        '{"question": ..., "context": ... (optional), "answer": ...}',
        CONVERSATION_FORMATS,
        {"question": "What is the capital of Kenya?", "context": "", "answer": "Nairobi."},
    ),
    "instruction": Task(
        "instruction",
        "Instruction following",
        "Follow an instruction, with optional input (alpaca).",
        '{"instruction": ..., "input": ... (optional), "output": ...}',
        CONVERSATION_FORMATS,
        {"instruction": "Reverse the word.", "input": "river", "output": "revir"},
    ),
    "chat": Task(
        "chat",
        "Multi-turn chat",
        "Whole conversations; every assistant turn is trained.",
        '{"messages": [{"role": "user"|"assistant"|"system", "content": ...}, ...]} or ShareGPT',
        CONVERSATION_FORMATS,
        {"messages": [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello! How can I help?"}]},
    ),
    "text": Task(
        "text",
        "Continued pre-training",
        "Plain text; the model learns to continue it.",
        '{"text": ...} or .txt files (paragraphs)',
        ("text",),
        {"text": "Nairobi is the capital of Kenya."},
    ),
    "code": Task(
        "code",
        "Your code repository",
        "Learn a codebase: files become training samples (secrets skipped).",
        "a git repository (--repo PATH)",
        ("text",),
        {"text": "# path: src/app.py\nimport os\n..."},
    ),
    "preference": Task(
        "preference",
        "Preference tuning (DPO / ORPO / KTO)",
        "Learn which of two answers is better (DPO, ORPO, SimPO), or from answers marked good/bad (KTO).",
        '{"prompt": ..., "chosen": ..., "rejected": ...} or {"prompt": ..., "completion": ..., "label": true|false}',
        PREFERENCE_FORMATS,
        {"prompt": "What is 2 + 2?", "chosen": "4.", "rejected": "5."},
    ),
    "grpo": Task(
        "grpo",
        "Reasoning with verifiable rewards (GRPO)",
        "Sample answers to prompts and learn from rewards checked against a reference answer.",
        '{"prompt": ..., "answer": ...} (or question/answer, alpaca, messages)',
        CONVERSATION_FORMATS,
        {"prompt": "What is 7 × 6? Answer with a number.", "answer": "42"},
    ),
}


def sequences_per_sample(task: str) -> int:
    """Sequences one sample puts through the model per step: a preference pair is chosen +
    rejected (KTO: the answer + the KL answer), so it costs twice an SFT sample's memory."""
    return 2 if task == "preference" else 1


def check_task_format(task: str, fmt: str) -> None:
    t = TASKS.get(task)
    if t is None:
        raise SageError(f"unknown task {task!r}", hint=f"choose one of: {', '.join(TASKS)}")
    if fmt not in t.formats:
        if fmt in PREFERENCE_FORMATS:
            raise SageError(
                f"the data holds preference rows ({fmt}: chosen/rejected answers or good/bad labels), "
                f"which the {task} task would train on as plain answers",
                hint="use the preference task (--task preference), or give one answer per row",
                kind="data",
                code="preference",
            )
        if task == "preference":
            raise SageError(
                f"the preference task needs chosen/rejected pairs or rows with a true/false label, but the data is {fmt}",
                hint="give prompt/chosen/rejected rows (or prompt/completion/label for KTO), or pick an SFT task",
                kind="data",
            )
        if fmt == "text":
            raise SageError(
                f"plain text has no answers to learn for the {task} task",
                hint="use the text task for plain text, or give question/answer style rows",
                kind="data",
            )
        raise SageError(
            f"the {task} task trains on plain text, but the data is {fmt}",
            hint="choose the qa, instruction or chat task for this data",
            kind="data",
        )
