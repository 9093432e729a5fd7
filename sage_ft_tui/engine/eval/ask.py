"""One question, answered greedily by the base and by the tuned model (adapter attached,
no merge, no server): the demo's proof and the Chat screen's side-by-side."""

from __future__ import annotations

from pathlib import Path

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.eval.generate import generate
from sage_ft_tui.engine.eval.model import load_pair
from sage_ft_tui.engine.paths import resolve_run
from sage_ft_tui.engine.runs.layout import RunLayout

SIDES = ("base", "tuned")


def ask_both(run: Path | str, question: str, *, max_new_tokens: int = 64, device: str = "auto") -> dict:
    if not question.strip():
        raise SageError("the question is empty", hint='e.g. --ask "What is sage-ft-tui?"')
    run = resolve_run(run)
    pair = load_pair(run, RunConfig.load(RunLayout(run).config), device=device)
    prompt = [[{"role": "user", "content": question}]]
    answers = {w: generate(pair, prompt, w, max_new_tokens=max_new_tokens)[0] for w in SIDES}
    return {"question": question, **answers}
