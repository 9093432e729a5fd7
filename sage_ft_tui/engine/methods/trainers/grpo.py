"""TRL's GRPOTrainer on prompts our chat template rendered."""

from __future__ import annotations

from trl import GRPOTrainer


class RenderedPrompts(GRPOTrainer):
    """`chat_tok`: our ChatTokenizer (engine/data/template.py). The prompts are rendered text
    that already holds the template's BOS: tokenized as the preview does (no special tokens
    added), not with the tokenizer's defaults."""

    def __init__(self, chat_tok, **kw):
        self.chat_tok = chat_tok
        super().__init__(**kw)

    def _tokenize_prompts(self, prompts: list):
        if prompts and isinstance(prompts[0], str):
            return [self.chat_tok.encode(p) for p in prompts], None, {}
        return super()._tokenize_prompts(prompts)
