"""The model zoo's families: one spec per real instruct model family people fine-tune.

Each spec says what the tiny folder mimics (architecture class and shape quirks, tokenizer
class and kind, the real special-token strings, the real chat template, the generation
stop tokens) and the facts the tests assert about it:

- `end_of_turn`: the string the family's template writes after an assistant answer
  (what training must teach the model to emit; never assumed to be `eos_token`);
- `system`: "native" (the template renders a system message where it stands),
  "none" (the template raises on a system role), "folded" (the template folds it into
  the first user turn: Gemma 3), "last-user" (Mistral: the system prompt is rendered only
  into the last user turn);
- `drops_reasoning`: the template drops `<think>` reasoning from history turns;
- `gguf_arch`: the architecture name llama.cpp's converter writes (`general.architecture`).

Nothing here imports torch or transformers; `tests/zoo/build.py` builds the folders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The tiny shape every family shares: sizes llama.cpp's K-quants can use (every weight row a
# multiple of 256), 2 layers so there is something to adapt and it builds in a blink.
TINY = dict(
    hidden_size=256,
    intermediate_size=512,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
)


@dataclass(frozen=True)
class Token:
    """An added token as the real tokenizer_config.json lists it."""

    content: str
    special: bool = True
    rstrip: bool = False
    lstrip: bool = False


@dataclass(frozen=True)
class Family:
    name: str
    mimics: str  # the real model (hub id) this folder is shaped like
    architecture: str  # transformers class in config.json `architectures`
    model_type: str  # config.json model_type
    config: dict[str, Any]  # config.json keys beyond TINY (rope, head_dim, softcapping, tie, ...)
    tokenizer_class: str  # tokenizer_config.json tokenizer_class, as the real repo has it
    tokenizer_kind: str  # how the vocabulary is built: see build.TOKENIZER_KINDS
    bos: str | None
    eos: str
    pad: str | None
    unk: str | None
    template: str  # file under tests/zoo/templates/
    gen_eos: tuple[str, ...]  # generation_config.json eos_token_id, as tokens, in the real order
    end_of_turn: str
    system: str  # "native" | "none" | "folded" | "last-user"
    drops_reasoning: bool
    gguf_arch: str
    # Added tokens in the order of their ids. With `specials_first` they take the first ids
    # (SmolLM2, Tekken's control tokens); otherwise they follow the learned vocabulary
    # (Qwen, Llama 3, Phi). SentencePiece families list here the tokens outside the .model.
    added: tuple[Token, ...] = ()
    specials_first: bool = False
    # SentencePiece only: pieces inside tokenizer.model (control / user-defined symbols).
    spm_control: tuple[str, ...] = ()
    spm_user_defined: tuple[str, ...] = ()
    spm_ids: dict[str, int] = field(default_factory=dict)  # unk/bos/eos/pad ids in the .model
    spm_dummy_prefix: bool = True
    tokenizer_config: dict[str, Any] = field(default_factory=dict)  # extra tokenizer_config.json keys
    config_eos: tuple[str, ...] | None = None  # config.json eos_token_id when it differs from eos
    config_bos: str | None = None  # config.json bos_token_id when it differs from bos
    gen_bos: str | None = None  # generation_config.json bos_token_id when it differs from bos
    gen_pad: str | None = None
    pad_vocab_to: int = 0  # config vocab_size rounded up to a multiple of this (Qwen, Phi pad theirs)
    vocab_size: int = 2000  # learned vocabulary size target
    attn_implementation: str | None = None  # what loading needs, when not the default
    notes: str = ""

    @property
    def special_strings(self) -> list[str]:
        return [t for t in (self.bos, self.eos, self.pad, self.unk) if t]


def _t(*names: str, special: bool = True, rstrip: bool = False) -> tuple[Token, ...]:
    return tuple(Token(n, special=special, rstrip=rstrip) for n in names)


QWEN2_SPECIALS = _t(
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
) + _t(
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    special=False,
)

QWEN3_SPECIALS = QWEN2_SPECIALS + _t("<tool_response>", "</tool_response>", "<think>", "</think>", special=False)

# Llama 3.1 / 3.2: 128000 <|begin_of_text|> ... 128010 <|python_tag|>, then reserved tokens
# (the real vocabulary has 256 specials; a few reserved ones stand for the rest).
LLAMA31_SPECIALS = _t(
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|reserved_special_token_2|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
    *(f"<|reserved_special_token_{i}|>" for i in range(3, 8)),
)
# Meta-Llama-3-8B-Instruct as first shipped: 128004 and 128008 were still reserved.
LLAMA3_SPECIALS = _t(
    "<|begin_of_text|>",
    "<|end_of_text|>",
    *(f"<|reserved_special_token_{i}|>" for i in range(4)),
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|reserved_special_token_4|>",
    "<|eot_id|>",
    *(f"<|reserved_special_token_{i}|>" for i in range(5, 10)),
)

# Mistral v0.3 / Tekken control tokens, in their real order.
MISTRAL_V3_CONTROL = (
    "[INST]",
    "[/INST]",
    "[TOOL_CALLS]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    *(f"[control_{i}]" for i in range(8, 16)),
)
TEKKEN_SPECIALS = _t(
    "<unk>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "[TOOL_CALLS]",
    "<pad>",
    "[PREFIX]",
    "[MIDDLE]",
    "[SUFFIX]",
    *(f"<SPECIAL_{i}>" for i in range(14, 20)),
)

# Phi-3.5-mini: added after Llama 2's 32000 SentencePiece pieces; the role tokens strip the
# whitespace to their right when encoding (rstrip: true in the real tokenizer_config.json).
PHI35_ADDED = (
    Token("<|endoftext|>"),
    Token("<|assistant|>", rstrip=True),
    Token("<|placeholder1|>", rstrip=True),
    Token("<|placeholder2|>", rstrip=True),
    Token("<|placeholder3|>", rstrip=True),
    Token("<|placeholder4|>", rstrip=True),
    Token("<|system|>", rstrip=True),
    Token("<|end|>", rstrip=True),
    Token("<|placeholder5|>", rstrip=True),
    Token("<|placeholder6|>", rstrip=True),
    Token("<|user|>", rstrip=True),
    Token("</s>", special=False, rstrip=True),  # inside the .model; listed so in the real tokenizer_config.json
)
PHI4_SPECIALS = _t(
    "<|endoftext|>",
    "<|assistant|>",
    "<|system|>",
    "<|end|>",
    "<|user|>",
    "<|tool|>",
    "<|/tool|>",
    "<|tool_call|>",
    "<|/tool_call|>",
    "<|tool_response|>",
    "<|tag|>",
)
SMOLLM2_SPECIALS = _t(
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<repo_name>",
    "<reponame>",
    "<file_sep>",
    "<filename>",
    "<gh_stars>",
    "<issue_start>",
    "<issue_comment>",
    "<issue_closed>",
    "<jupyter_start>",
    "<jupyter_text>",
    "<jupyter_code>",
    "<jupyter_output>",
    "<jupyter_script>",
    "<empty_output>",
)
DEEPSEEK_DISTILL_ADDED = (
    Token("<｜end▁of▁sentence｜>"),
    Token("<｜User｜>", special=False),
    Token("<｜Assistant｜>", special=False),
    Token("<｜begin▁of▁sentence｜>"),
    Token("<|EOT|>", special=False),
    Token("<think>", special=False),
    Token("</think>", special=False),
    *_t(
        "<|quad_start|>",
        "<|quad_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|vision_pad|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ),
    *_t("<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", special=False),
    *_t("<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", special=False),
    *_t(
        "<｜tool▁calls▁begin｜>",
        "<｜tool▁calls▁end｜>",
        "<｜tool▁call▁begin｜>",
        "<｜tool▁call▁end｜>",
        "<｜tool▁outputs▁begin｜>",
        "<｜tool▁outputs▁end｜>",
        "<｜tool▁output▁begin｜>",
        "<｜tool▁output▁end｜>",
        "<｜tool▁sep｜>",
        special=False,
    ),
)


def _longrope(rotary_dim: int) -> dict[str, Any]:
    """Phi's LongRoPE scaling: one factor per rotary frequency (short ≈ 1, long growing)."""
    n = rotary_dim // 2
    return dict(
        type="longrope",
        short_factor=[round(1.0 + 0.01 * i, 4) for i in range(n)],
        long_factor=[round(1.0 + 0.5 * i, 4) for i in range(n)],
    )


LLAMA3_ROPE = dict(rope_type="llama3", high_freq_factor=4.0, low_freq_factor=1.0, original_max_position_embeddings=8192)

FAMILIES: dict[str, Family] = {}


def _add(f: Family) -> None:
    FAMILIES[f.name] = f


_add(
    Family(
        name="qwen2.5-instruct",
        mimics="Qwen/Qwen2.5-0.5B-Instruct",
        architecture="Qwen2ForCausalLM",
        model_type="qwen2",
        config=dict(
            tie_word_embeddings=True,
            rope_theta=1000000.0,
            max_position_embeddings=32768,
            rms_norm_eps=1e-6,
            use_sliding_window=False,
            sliding_window=32768,
            max_window_layers=2,
        ),
        tokenizer_class="Qwen2Tokenizer",
        tokenizer_kind="bpe-qwen2",
        bos=None,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        unk=None,
        added=QWEN2_SPECIALS,
        template="Qwen-Qwen2.5-7B-Instruct.jinja",
        gen_eos=("<|im_end|>", "<|endoftext|>"),
        gen_pad="<|endoftext|>",
        config_eos=("<|im_end|>",),
        config_bos="<|endoftext|>",
        gen_bos="<|endoftext|>",
        tokenizer_config=dict(errors="replace", split_special_tokens=False, model_max_length=131072),
        end_of_turn="<|im_end|>",
        system="native",
        drops_reasoning=False,
        gguf_arch="qwen2",
        pad_vocab_to=64,
        notes="ChatML; without a system message the template inserts Qwen's default one.",
    )
)
_add(
    Family(
        name="qwen3",
        mimics="Qwen/Qwen3-0.6B",
        architecture="Qwen3ForCausalLM",
        model_type="qwen3",
        config=dict(
            head_dim=128,
            tie_word_embeddings=True,
            rope_theta=1000000.0,
            max_position_embeddings=40960,
            rms_norm_eps=1e-6,
            attention_bias=False,
            use_sliding_window=False,
            max_window_layers=2,
        ),
        tokenizer_class="Qwen2Tokenizer",
        tokenizer_kind="bpe-qwen2",
        bos=None,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        unk=None,
        added=QWEN3_SPECIALS,
        template="Qwen-Qwen3-0.6B.jinja",
        gen_eos=("<|im_end|>", "<|endoftext|>"),
        gen_pad="<|endoftext|>",
        config_eos=("<|im_end|>",),
        config_bos="<|endoftext|>",
        gen_bos="<|endoftext|>",
        tokenizer_config=dict(errors="replace", split_special_tokens=False, model_max_length=131072),
        end_of_turn="<|im_end|>",
        system="native",
        drops_reasoning=True,
        gguf_arch="qwen3",
        pad_vocab_to=64,
        notes="Thinking template: reasoning before the last user query is dropped from history; "
        "head_dim 128 with hidden 256 / 4 heads.",
    )
)
_add(
    Family(
        name="deepseek-r1-distill-qwen",
        mimics="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        architecture="Qwen2ForCausalLM",
        model_type="qwen2",
        config=dict(
            tie_word_embeddings=False,
            rope_theta=10000.0,
            max_position_embeddings=131072,
            rms_norm_eps=1e-6,
            use_sliding_window=False,
            sliding_window=4096,
            max_window_layers=2,
        ),
        tokenizer_class="LlamaTokenizerFast",
        tokenizer_kind="bpe-qwen2",
        bos="<｜begin▁of▁sentence｜>",
        eos="<｜end▁of▁sentence｜>",
        pad="<｜end▁of▁sentence｜>",
        unk=None,
        added=DEEPSEEK_DISTILL_ADDED,
        template="deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
        gen_eos=("<｜end▁of▁sentence｜>",),
        # As the real config.json has it (Qwen's ids kept: 151643 is <｜end▁of▁sentence｜> there).
        config_bos="<｜end▁of▁sentence｜>",
        tokenizer_config=dict(
            add_bos_token=True, add_eos_token=False, legacy=True, sp_model_kwargs={}, model_max_length=16384
        ),
        end_of_turn="<｜end▁of▁sentence｜>",
        system="native",
        drops_reasoning=True,
        gguf_arch="qwen2",
        pad_vocab_to=64,
        notes="Byte-level BPE (Qwen's) behind a LlamaTokenizerFast class; the generation prompt "
        "opens <think>; history answers lose everything up to </think>; the system prompt is "
        "written bare after BOS.",
    )
)
_add(
    Family(
        name="llama-3.2-instruct",
        mimics="meta-llama/Llama-3.2-1B-Instruct",
        architecture="LlamaForCausalLM",
        model_type="llama",
        config=dict(
            head_dim=64,
            tie_word_embeddings=True,
            rope_theta=500000.0,
            rope_scaling=dict(LLAMA3_ROPE, factor=32.0),
            max_position_embeddings=131072,
            rms_norm_eps=1e-5,
            mlp_bias=False,
            attention_bias=False,
        ),
        tokenizer_class="PreTrainedTokenizerFast",
        tokenizer_kind="bpe-llama3",
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        pad=None,
        unk=None,
        added=LLAMA31_SPECIALS,
        template="meta-llama-Llama-3.2-3B-Instruct.jinja",
        gen_eos=("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"),
        config_eos=("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"),
        tokenizer_config=dict(model_input_names=["input_ids", "attention_mask"], model_max_length=131072),
        end_of_turn="<|eot_id|>",
        system="native",
        drops_reasoning=False,
        gguf_arch="llama",
        notes="The system header always holds 'Cutting Knowledge Date' and 'Today Date: <today>' "
        "(strftime_now), with or without a system message.",
    )
)
_add(
    Family(
        name="llama-3.1-instruct",
        mimics="meta-llama/Llama-3.1-8B-Instruct",
        architecture="LlamaForCausalLM",
        model_type="llama",
        config=dict(
            head_dim=64,
            tie_word_embeddings=False,
            rope_theta=500000.0,
            rope_scaling=dict(LLAMA3_ROPE, factor=8.0),
            max_position_embeddings=131072,
            rms_norm_eps=1e-5,
            mlp_bias=False,
            attention_bias=False,
        ),
        tokenizer_class="PreTrainedTokenizerFast",
        tokenizer_kind="bpe-llama3",
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        pad=None,
        unk=None,
        added=LLAMA31_SPECIALS,
        template="meta-llama-Llama-3.3-70B-Instruct.jinja",
        gen_eos=("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"),
        config_eos=("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"),
        tokenizer_config=dict(model_input_names=["input_ids", "attention_mask"], model_max_length=131072),
        end_of_turn="<|eot_id|>",
        system="native",
        drops_reasoning=False,
        gguf_arch="llama",
        notes="The 3.1 template (as shipped with 3.1 and 3.3): 'Cutting Knowledge Date' header, "
        "fixed date '26 Jul 2024' unless date_string is passed.",
    )
)
_add(
    Family(
        name="llama-3-eos-end-of-text",
        mimics="meta-llama/Meta-Llama-3-8B-Instruct (as first shipped)",
        architecture="LlamaForCausalLM",
        model_type="llama",
        config=dict(
            tie_word_embeddings=False,
            rope_theta=500000.0,
            max_position_embeddings=8192,
            rms_norm_eps=1e-5,
        ),
        tokenizer_class="PreTrainedTokenizerFast",
        tokenizer_kind="bpe-llama3",
        bos="<|begin_of_text|>",
        eos="<|end_of_text|>",
        pad=None,
        unk=None,
        added=LLAMA3_SPECIALS,
        template="meta-llama-Meta-Llama-3-8B-Instruct.jinja",
        gen_eos=("<|end_of_text|>", "<|eot_id|>"),
        config_eos=("<|end_of_text|>",),
        tokenizer_config=dict(
            model_input_names=["input_ids", "attention_mask"], model_max_length=1000000000000000019884624838656
        ),
        end_of_turn="<|eot_id|>",
        system="native",
        drops_reasoning=False,
        gguf_arch="llama",
        notes="tokenizer eos_token is <|end_of_text|> while every turn ends with <|eot_id|>.",
    )
)
_add(
    Family(
        name="gemma-2-it",
        mimics="google/gemma-2-2b-it",
        architecture="Gemma2ForCausalLM",
        model_type="gemma2",
        config=dict(
            head_dim=64,
            tie_word_embeddings=True,
            attn_logit_softcapping=50.0,
            final_logit_softcapping=30.0,
            query_pre_attn_scalar=64,
            sliding_window=4096,
            hidden_activation="gelu_pytorch_tanh",
            hidden_act="gelu_pytorch_tanh",
            rope_theta=10000.0,
            max_position_embeddings=8192,
            rms_norm_eps=1e-6,
            attention_bias=False,
            cache_implementation="hybrid",
        ),
        tokenizer_class="GemmaTokenizer",
        tokenizer_kind="spm",
        bos="<bos>",
        eos="<eos>",
        pad="<pad>",
        unk="<unk>",
        spm_ids=dict(pad=0, eos=1, bos=2, unk=3),
        spm_control=("<mask>", "[@BOS@]"),
        spm_user_defined=("<start_of_turn>", "<end_of_turn>"),
        spm_dummy_prefix=False,
        added=(Token("<mask>"), Token("[@BOS@]"), Token("<start_of_turn>"), Token("<end_of_turn>")),
        template="google-gemma-2-2b-it.jinja",
        gen_eos=("<eos>", "<end_of_turn>"),
        gen_pad="<pad>",
        tokenizer_config=dict(add_bos_token=True, add_eos_token=False, spaces_between_special_tokens=False),
        end_of_turn="<end_of_turn>",
        system="none",
        drops_reasoning=False,
        gguf_arch="gemma2",
        notes="Logit softcapping (attention 50, final 30). The template raises on a system role and writes {{ bos_token }} itself while the "
        "tokenizer also adds <bos> (add_bos_token): render, then tokenize without special tokens.",
    )
)
_add(
    Family(
        name="gemma-3-it",
        mimics="google/gemma-3-1b-it (text only)",
        architecture="Gemma3ForCausalLM",
        model_type="gemma3_text",
        config=dict(
            head_dim=64,
            tie_word_embeddings=True,
            query_pre_attn_scalar=64,
            sliding_window=512,
            # the released models' pattern (5 local layers, then a global one), which llama.cpp
            # assumes for Gemma 3: with fewer layers its GGUF would not match the folder
            num_hidden_layers=6,
            sliding_window_pattern=6,
            layer_types=["sliding_attention"] * 5 + ["full_attention"],
            hidden_activation="gelu_pytorch_tanh",
            rope_theta=1000000.0,
            rope_local_base_freq=10000.0,
            max_position_embeddings=32768,
            rms_norm_eps=1e-6,
            attn_logit_softcapping=None,
            final_logit_softcapping=None,
            attention_bias=False,
        ),
        tokenizer_class="GemmaTokenizer",
        tokenizer_kind="spm",
        bos="<bos>",
        eos="<eos>",
        pad="<pad>",
        unk="<unk>",
        spm_ids=dict(pad=0, eos=1, bos=2, unk=3),
        spm_control=("<mask>", "[@BOS@]"),
        spm_user_defined=("<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>"),
        spm_dummy_prefix=False,
        added=(
            Token("<mask>"),
            Token("[@BOS@]"),
            Token("<start_of_turn>"),
            Token("<end_of_turn>"),
            Token("<start_of_image>"),
            Token("<end_of_image>"),
        ),
        template="google-gemma-3-it.jinja",
        gen_eos=("<eos>", "<end_of_turn>"),
        gen_pad="<pad>",
        tokenizer_config=dict(add_bos_token=True, add_eos_token=False, spaces_between_special_tokens=False),
        end_of_turn="<end_of_turn>",
        system="folded",
        drops_reasoning=False,
        gguf_arch="gemma3",
        notes="A system message is folded into the first user turn ('<system>\\n\\n<user>').",
    )
)
_add(
    Family(
        name="mistral-instruct-v0.3",
        mimics="mistralai/Mistral-7B-Instruct-v0.3",
        architecture="MistralForCausalLM",
        model_type="mistral",
        config=dict(
            head_dim=64,
            tie_word_embeddings=False,
            rope_theta=1000000.0,
            sliding_window=None,
            max_position_embeddings=32768,
            rms_norm_eps=1e-5,
        ),
        tokenizer_class="LlamaTokenizer",
        tokenizer_kind="spm",
        bos="<s>",
        eos="</s>",
        pad=None,
        unk="<unk>",
        spm_ids=dict(unk=0, bos=1, eos=2, pad=-1),
        spm_control=MISTRAL_V3_CONTROL,
        added=tuple(Token(t) for t in MISTRAL_V3_CONTROL),
        template="mistralai-Mistral-7B-Instruct-v0.3.jinja",
        gen_eos=("</s>",),
        tokenizer_config=dict(
            add_bos_token=True, add_eos_token=False, legacy=False, spaces_between_special_tokens=False
        ),
        end_of_turn="</s>",
        system="last-user",
        drops_reasoning=False,
        gguf_arch="llama",
        notes="SentencePiece with [INST]/[/INST] control tokens; the system prompt is rendered only "
        "into the last user turn; answers are ' ' + answer|trim + '</s>'.",
    )
)
_add(
    Family(
        name="mistral-nemo",
        mimics="mistralai/Mistral-Nemo-Instruct-2407",
        architecture="MistralForCausalLM",
        model_type="mistral",
        config=dict(
            head_dim=128,
            tie_word_embeddings=False,
            rope_theta=1000000.0,
            sliding_window=None,
            max_position_embeddings=131072,
            rms_norm_eps=1e-5,
        ),
        tokenizer_class="PreTrainedTokenizerFast",
        tokenizer_kind="bpe-tekken",
        bos="<s>",
        eos="</s>",
        pad=None,
        unk="<unk>",
        added=TEKKEN_SPECIALS,
        specials_first=True,
        template="mistralai-Mistral-Nemo-Instruct-2407.jinja",
        gen_eos=("</s>",),
        tokenizer_config=dict(model_max_length=1000000000000000019884624838656),
        end_of_turn="</s>",
        system="last-user",
        drops_reasoning=False,
        gguf_arch="llama",
        notes="Tekken-style byte-level BPE; head_dim 128 with hidden 256 / 4 heads (≠ 64); "
        "no space after [INST]; the system prompt only in the last user turn.",
    )
)
_add(
    Family(
        name="phi-3.5-mini",
        mimics="microsoft/Phi-3.5-mini-instruct",
        architecture="Phi3ForCausalLM",
        model_type="phi3",
        config=dict(
            tie_word_embeddings=False,
            rope_theta=10000.0,
            max_position_embeddings=131072,
            original_max_position_embeddings=4096,
            rope_scaling=_longrope(64),
            sliding_window=262144,
            rms_norm_eps=1e-5,
            hidden_act="silu",
        ),
        tokenizer_class="LlamaTokenizer",
        tokenizer_kind="spm",
        bos="<s>",
        eos="<|endoftext|>",
        pad="<|endoftext|>",
        unk="<unk>",
        spm_ids=dict(unk=0, bos=1, eos=2, pad=-1),
        added=PHI35_ADDED,
        template="microsoft-Phi-3.5-mini-instruct.jinja",
        gen_eos=("<|endoftext|>", "<|assistant|>", "<|end|>"),
        config_eos=("<|endoftext|>",),
        gen_pad="<|endoftext|>",
        tokenizer_config=dict(
            add_bos_token=False,
            add_eos_token=False,
            legacy=False,
            model_max_length=131072,
            padding_side="left",
            sp_model_kwargs={},
            use_default_system_prompt=False,
        ),
        end_of_turn="<|end|>",
        system="native",
        drops_reasoning=False,
        gguf_arch="phi3",
        pad_vocab_to=64,
        notes="Fused qkv_proj / gate_up_proj. tokenizer eos_token is <|endoftext|> (the template "
        "appends it after a render without generation prompt); turns end with <|end|>. The role "
        "tokens rstrip: the newline after <|end|> / <|assistant|> vanishes when text is encoded.",
    )
)
_add(
    Family(
        name="phi-4-mini",
        mimics="microsoft/Phi-4-mini-instruct",
        architecture="Phi3ForCausalLM",
        model_type="phi3",
        config=dict(
            tie_word_embeddings=True,
            partial_rotary_factor=0.75,
            rope_theta=10000.0,
            max_position_embeddings=131072,
            original_max_position_embeddings=4096,
            rope_scaling=_longrope(48),
            sliding_window=262144,
            rms_norm_eps=1e-5,
            hidden_act="silu",
        ),
        tokenizer_class="GPT2Tokenizer",
        tokenizer_kind="bpe-o200k",
        bos="<|endoftext|>",
        eos="<|endoftext|>",
        pad="<|endoftext|>",
        unk="<|endoftext|>",
        added=PHI4_SPECIALS,
        template="microsoft-Phi-4-mini-instruct.jinja",
        gen_eos=("<|end|>", "<|endoftext|>"),
        gen_pad="<|endoftext|>",
        config_eos=("<|endoftext|>",),
        tokenizer_config=dict(add_bos_token=False, add_eos_token=False, model_max_length=131072),
        end_of_turn="<|end|>",
        system="native",
        drops_reasoning=False,
        gguf_arch="phi3",
        pad_vocab_to=64,
        notes="Partial rotary (0.75), tied embeddings, GPT-4o-style byte-level BPE; no newlines "
        "between turns; eos_token appended after a render without generation prompt.",
    )
)
_add(
    Family(
        name="smollm2-instruct",
        mimics="HuggingFaceTB/SmolLM2-360M-Instruct",
        architecture="LlamaForCausalLM",
        model_type="llama",
        config=dict(
            tie_word_embeddings=True,
            rope_theta=100000.0,
            max_position_embeddings=8192,
            rms_norm_eps=1e-5,
        ),
        tokenizer_class="GPT2Tokenizer",
        tokenizer_kind="bpe-gpt2",
        bos="<|im_start|>",
        eos="<|im_end|>",
        pad="<|im_end|>",
        unk="<|endoftext|>",
        added=SMOLLM2_SPECIALS,
        specials_first=True,
        template="HuggingFaceTB-SmolLM2-Instruct.jinja",
        gen_eos=("<|im_end|>",),
        gen_pad="<|im_end|>",
        tokenizer_config=dict(add_prefix_space=False, model_max_length=8192, vocab_size=49152),
        end_of_turn="<|im_end|>",
        system="native",
        drops_reasoning=False,
        gguf_arch="llama",
        notes="ChatML with a default system prompt; bos_token is <|im_start|> but the template never writes bos_token.",
    )
)


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"no zoo family {name!r}; known: {', '.join(FAMILIES)}") from None
