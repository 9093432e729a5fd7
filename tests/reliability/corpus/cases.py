"""The bad-input corpus: each case is a `sage-ft-tui start ... --no-tui` command line and
what the user must be told.

Files live next to this module in files/ (small, committed) or are generated at test
time (`gen`: the 10 MB single line, the million tiny rows, a model without a chat
template). `{F}` in an argument is the files/ folder, `{T}` the case's tmp folder.

`expect`: substrings of the one `error: ...` line on stderr (what, where, what to do), or
None for input that is messy but valid (BOM, CRLF): it must be accepted with every row.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

FILES = Path(__file__).resolve().parent / "files"
HW_NO_GPU = Path(__file__).resolve().parents[2] / "unit" / "fixtures" / "hardware" / "no_gpu.json"


@dataclass
class Case:
    id: str
    group: str  # data | config | model | environment
    what: str  # the bad input, in words (docs/RELIABILITY.md)
    args: list[str]
    expect: Optional[list[str]]  # substrings of the error line; None: accepted
    gen: Optional[Callable[[Path], None]] = None  # builds files in {T}
    env: dict = field(default_factory=dict)
    rows: int = 0  # accepted cases: train samples expected
    skipped: int = 0  # accepted cases: bad rows expected
    warn: list[str] = field(default_factory=list)  # accepted cases: substrings of its `warning:` lines
    absent: list[str] = field(default_factory=list)  # accepted cases: text found nowhere in the run folder


def _huge_line(t: Path) -> None:
    with open(t / "huge_line.jsonl", "w") as fh:
        fh.write(
            json.dumps({"instruction": "summarise: " + "lorem ipsum dolor sit amet " * 370_000, "output": "ok"}) + "\n"
        )


def _million_rows(t: Path) -> None:
    with open(t / "million.jsonl", "w") as fh:
        fh.write('{"q":1}\n' * 1_000_000)


def _no_template_model(t: Path) -> None:
    from sage_ft_tui.engine.models.tiny import ensure_tiny_model

    src = ensure_tiny_model()
    dst = t / "no_template_model"
    dst.mkdir()
    for f in src.iterdir():
        if f.name in ("chat_template.jinja", "model.safetensors"):
            continue
        shutil.copy2(f, dst / f.name)
    (dst / "model.safetensors").symlink_to(src / "model.safetensors")
    tc = json.loads((dst / "tokenizer_config.json").read_text())
    tc.pop("chat_template", None)
    (dst / "tokenizer_config.json").write_text(json.dumps(tc))


def _existing_run_name(t: Path) -> None:
    pass  # the run "keep" exists in every case's runs folder (see test_bad_inputs.py)


def _yaml(name: str, text: str) -> Callable[[Path], None]:
    def gen(t: Path) -> None:
        (t / name).write_text(text)

    return gen


def _yaml_case(id: str, what: str, name: str, text: str, expect: list[str]) -> Case:
    """A config case: `--config {T}/<name>` holding `text` (and good data), refused with `expect`."""
    return Case(id, "config", what, ["--config", "{T}/" + name] + OK, expect, gen=_yaml(name, text))


def _custom_code_model(t: Path) -> None:
    """A model folder whose architecture only its own (absent) code knows."""
    from sage_ft_tui.engine.models.tiny import ensure_tiny_model

    dst = t / "custom_model"
    shutil.copytree(ensure_tiny_model(), dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg.update(model_type="mycustomlm", architectures=["MyModel"], auto_map={"AutoModelForCausalLM": "modeling_my.M"})
    (dst / "config.json").write_text(json.dumps(cfg))


def _odd_folder_model(t: Path) -> None:
    from sage_ft_tui.engine.models.tiny import ensure_tiny_model

    shutil.copytree(ensure_tiny_model(), t / "My Model (v2)")


I = ["--task", "instruction", "--model", "tiny-demo"]
Q = ["--task", "qa", "--model", "tiny-demo"]
OK = ["--data", "{F}/crlf_ok.jsonl"]

CASES: list[Case] = [
    # ---- data files --------------------------------------------------------------------
    Case(
        "empty_file",
        "data",
        "empty .jsonl",
        I + ["--data", "{F}/empty.jsonl"],
        ["empty.jsonl: no rows", "add examples"],
    ),
    Case(
        "blank_lines",
        "data",
        "only blank lines",
        I + ["--data", "{F}/blank_lines.jsonl"],
        ["blank_lines.jsonl: no rows"],
    ),
    Case(
        "not_json",
        "data",
        ".json that is not JSON",
        I + ["--data", "{F}/not_json.json"],
        ["not_json.json:1: not valid JSON", "fix the JSON"],
    ),
    Case(
        "not_jsonl",
        "data",
        ".jsonl of plain text lines",
        I + ["--data", "{F}/not_jsonl.jsonl"],
        ["not_jsonl.jsonl: no usable rows", "not_jsonl.jsonl:1: not valid JSON"],
    ),
    Case(
        "json_object",
        "data",
        "JSON object instead of a list",
        I + ["--data", "{F}/object.json"],
        ["object.json: a JSON object, not a list of rows", "array of objects"],
    ),
    Case(
        "json_scalar",
        "data",
        "JSON number instead of a list",
        I + ["--data", "{F}/scalar.json"],
        ["scalar.json: JSON int, not a list of rows"],
    ),
    Case(
        "mixed_formats",
        "data",
        "alpaca, qa and messages rows in one file",
        I + ["--data", "{F}/mixed_formats.jsonl"],
        ["2 of 3 rows are bad", "mixed_formats.jsonl:2", "max_bad_share"],
    ),
    Case(
        "missing_output",
        "data",
        "instruction rows without the answer field",
        I + ["--data", "{F}/missing_output.jsonl"],
        ["missing_output.jsonl:1: missing field 'output'", "data.field_map"],
    ),
    Case(
        "qa_missing_answer",
        "data",
        "qa rows without 'answer'",
        Q + ["--data", "{F}/qa_missing_answer.jsonl"],
        ["qa_missing_answer.jsonl:1", "answer"],
    ),
    Case(
        "wrong_types",
        "data",
        "numbers/lists where text belongs",
        I + ["--data", "{F}/wrong_types.jsonl"],
        ["wrong_types.jsonl:1: field 'output' is list, expected text"],
    ),
    Case(
        "invalid_utf8_jsonl",
        "data",
        "invalid UTF-8 bytes in .jsonl",
        I + ["--data", "{F}/invalid_utf8.jsonl"],
        ["invalid_utf8.jsonl:1: not valid UTF-8 (byte 0xe9"],
    ),
    Case(
        "invalid_utf8_csv",
        "data",
        "invalid UTF-8 bytes in .csv",
        Q + ["--data", "{F}/invalid_utf8.csv"],
        ["invalid_utf8.csv:2: not valid UTF-8", "as UTF-8"],
    ),
    Case(
        "huge_single_line",
        "data",
        "a 10 MB single line",
        I + ["--data", "{T}/huge_line.jsonl"],
        ["huge_line.jsonl:1: row too long", "characters", "training.max_length"],
        gen=_huge_line,
    ),
    Case(
        "million_tiny_rows",
        "data",
        "1,000,000 tiny rows of no known format",
        I + ["--data", "{T}/million.jsonl"],
        ["million.jsonl: cannot tell the data format", "['q']", "data.field_map"],
        gen=_million_rows,
    ),
    Case(
        "crlf_bad_row",
        "data",
        "Windows line endings + a bad row (line numbers right)",
        I + ["--data", "{F}/crlf_bad_row.jsonl"],
        ["1 of 2 rows are bad", "crlf_bad_row.jsonl:2: missing field 'output'"],
    ),
    Case(
        "bom_bad_row",
        "data",
        "UTF-8 BOM + a torn row (line numbers right)",
        I + ["--data", "{F}/bom_bad_row.jsonl"],
        ["1 of 2 rows are bad", "bom_bad_row.jsonl:2"],
    ),
    Case("crlf_ok", "data", "Windows line endings (valid file)", I + ["--data", "{F}/crlf_ok.jsonl"], None, rows=30),
    Case("bom_ok", "data", "UTF-8 BOM (valid file)", Q + ["--data", "{F}/bom_ok.jsonl"], None, rows=30),
    Case(
        "bom_crlf_csv_ok", "data", "BOM + CRLF CSV (valid file)", Q + ["--data", "{F}/bom_crlf_ok.csv"], None, rows=30
    ),
    Case(
        "csv_nan",
        "data",
        "NaN / empty answers in CSV",
        Q + ["--data", "{F}/nan.csv"],
        ["nan.csv: no usable rows as qa", "nan.csv:2: missing field 'answer'"],
    ),
    Case(
        "csv_columns",
        "data",
        "CSV rows with more columns than the header",
        Q + ["--data", "{F}/csv_columns.csv"],
        ["csv_columns.csv: no usable rows", "3 columns, the header has 2"],
    ),
    Case(
        "parquet_schema",
        "data",
        "parquet with unexpected columns",
        Q + ["--data", "{F}/unexpected_schema.parquet"],
        ["unexpected_schema.parquet: cannot tell the data format", "['bar', 'foo']", "data.field_map"],
    ),
    Case(
        "parquet_corrupt",
        "data",
        "a file named .parquet that is not parquet",
        Q + ["--data", "{F}/corrupt.parquet"],
        ["corrupt.parquet: cannot read parquet", "valid parquet"],
    ),
    Case(
        "dir_no_data",
        "data",
        "a folder with no data files",
        I + ["--data", "{F}/no_data_dir"],
        ["no_data_dir holds no data files", ".jsonl"],
    ),
    Case(
        "missing_data",
        "data",
        "a data path that does not exist",
        I + ["--data", "{T}/nope.jsonl"],
        ["nope.jsonl does not exist", "check the path"],
    ),
    Case(
        "unsupported_type",
        "data",
        "an .xlsx file",
        I + ["--data", "{F}/data.xlsx"],
        ["data.xlsx: unsupported file type '.xlsx'", ".jsonl"],
    ),
    Case(
        "torn_only_row",
        "data",
        "a single torn row (no closing brace)",
        I + ["--data", "{F}/torn_only_row.jsonl"],
        ["torn_only_row.jsonl:1: torn last line"],
    ),
    Case("no_data_given", "data", "no --data at all", I, ["no training data given", "--data"]),
    # ---- config: trust (issue 12) ---------------------------------------------------------
    _yaml_case(
        "yaml_duplicate_key",
        "a key given twice in config.yaml",
        "dup.yaml",
        "task: instruction\ntraining:\n  epochs: 1\n  epochs: 5\n",
        ["dup.yaml:4: key 'epochs' is given twice (first on line 3)", "keep one"],
    ),
    _yaml_case(
        "yaml_duplicate_top_key",
        "a top-level section given twice",
        "dup_top.yaml",
        "task: qa\nmodel: {name: tiny-demo}\ntask: instruction\n",
        ["dup_top.yaml:3: key 'task' is given twice (first on line 1)"],
    ),
    _yaml_case(
        "yaml_empty",
        "an empty config.yaml",
        "empty.yaml",
        "",
        ["empty.yaml: the config is empty", "examples"],
    ),
    _yaml_case(
        "yaml_only_comments",
        "a config.yaml of comments only",
        "comments.yaml",
        "# task: qa\n# model: tiny-demo\n",
        ["comments.yaml: the config is empty"],
    ),
    _yaml_case(
        "yaml_empty_mapping",
        "a config.yaml holding {}",
        "braces.yaml",
        "{}\n",
        ["braces.yaml: the config is empty"],
    ),
    _yaml_case(
        "yaml_unknown_preset",
        "an unknown preset: in config.yaml",
        "preset.yaml",
        "task: instruction\npreset: rtx_9090\nmodel: {name: tiny-demo}\n",
        ["preset.yaml: preset: unknown preset 'rtx_9090'", "rtx_4090"],
    ),
    Case(
        "flag_unknown_preset",
        "config",
        "an unknown --preset",
        I + OK + ["--preset", "fastest"],
        ["unknown preset 'fastest'", "auto"],
    ),
    Case(
        "set_unknown_preset",
        "config",
        "an unknown preset through --set",
        I + OK + ["--set", "preset=fastest"],
        ["unknown preset 'fastest'"],
    ),
    Case(
        "lora_target_typo",
        "config",
        "a LoRA target module the model does not have",
        I + OK + ["--set", "lora.target_modules=[q_prj, v_proj]"],
        ["lora.target_modules: 'q_prj' is not a module of tiny-demo", "q_proj", "all-linear"],
    ),
    _yaml_case(
        "lora_target_typo_yaml",
        "LoRA target modules of another architecture (config.yaml)",
        "targets.yaml",
        "task: instruction\nmodel: {name: tiny-demo}\nlora: {target_modules: [c_attn, c_proj]}\n",
        ["'c_attn', 'c_proj' are not a module of tiny-demo", "k_proj"],
    ),
    Case(
        "model_custom_code",
        "model",
        "a model folder whose architecture needs its own code (trust_remote_code off)",
        ["--task", "instruction", "--model", "{T}/custom_model", "--set", "lora.target_modules=[q_proj]"] + OK,
        ["needs the Python code shipped with it", "model.trust_remote_code"],
        gen=_custom_code_model,
    ),
    # ---- environment ----------------------------------------------------------------------
    Case(
        "home_not_permitted",
        "environment",
        "a runs home that may not be created (EPERM even for root)",
        I + OK,
        ["permission denied", "/sys/sage-ft-home", "SAGE_FT_HOME"],
        env={"SAGE_FT_HOME": "/sys/sage-ft-home"},
    ),
    Case(
        "cache_not_permitted",
        "environment",
        "a cache that may not be created, the tiny model not built yet",
        I + OK,
        ["permission denied", "/sys/sage-ft-cache", "SAGE_FT_CACHE"],
        env={"SAGE_FT_CACHE": "/sys/sage-ft-cache"},
    ),
    Case(
        "home_is_a_file",
        "environment",
        "SAGE_FT_HOME pointing at a file",
        I + OK,
        ["is a file, not a folder", "SAGE_FT_HOME"],
        env={"SAGE_FT_HOME": str(FILES / "empty.jsonl")},
    ),
    Case(
        "model_folder_odd_name",
        "environment",
        "a model folder named `My Model (v2)` (the run name derived from it is sanitised)",
        ["--task", "instruction", "--model", "{T}/My Model (v2)", "--data", "{F}/crlf_ok.jsonl"],
        None,
        gen=_odd_folder_model,
        rows=30,
    ),
    # ---- config ------------------------------------------------------------------------
    Case(
        "unknown_key_flag",
        "config",
        "unknown key (--set)",
        I + OK + ["--set", "foo=1"],
        ["unknown key 'foo'", "examples"],
    ),
    Case(
        "unknown_key_yaml",
        "config",
        "unknown key (config.yaml)",
        ["--config", "{F}/unknown_key.yaml"] + OK,
        ["unknown_key.yaml: unknown key 'foo'", "spelling"],
    ),
    Case(
        "wrong_type_flag",
        "config",
        "wrong type (--set)",
        I + OK + ["--set", "training.micro_batch_size=abc"],
        ["training.micro_batch_size", "valid integer", "fix training.micro_batch_size"],
    ),
    Case(
        "wrong_type_yaml",
        "config",
        "wrong type (config.yaml)",
        ["--config", "{F}/wrong_type.yaml"] + OK,
        ["wrong_type.yaml: training.learning_rate", "valid number"],
    ),
    Case(
        "negative_lr",
        "config",
        "negative learning rate",
        I + OK + ["--lr", "-1"],
        ["training.learning_rate: Input should be greater than 0", "fix training.learning_rate"],
    ),
    Case(
        "max_length_0",
        "config",
        "max length 0",
        I + OK + ["--max-length", "0"],
        ["training.max_length: Input should be greater than 0"],
    ),
    Case(
        "quantization_on_cpu",
        "config",
        "4-bit quantization on a machine without a GPU",
        I + OK + ["--set", "model.quantization=4bit"],
        ["model.quantization 4bit needs an NVIDIA GPU", "quantization=none"],
        env={"SAGE_FT_HW_RECORDED": str(HW_NO_GPU)},
    ),
    Case(
        "yaml_python_apply",
        "config",
        "YAML with !!python/object/apply (runs a command if loaded unsafely)",
        ["--config", "{F}/python_apply_tag.yaml"] + OK,
        ["python_apply_tag.yaml:1: not valid YAML", "!!python/object are refused"],
    ),
    Case(
        "yaml_python_object",
        "config",
        "YAML with !!python/object",
        ["--config", "{F}/python_object_tag.yaml"] + OK,
        ["python_object_tag.yaml:1: not valid YAML", "refused"],
    ),
    Case(
        "yaml_syntax",
        "config",
        "YAML syntax error",
        ["--config", "{F}/syntax.yaml"] + OK,
        ["syntax.yaml:", "not valid YAML"],
    ),
    Case(
        "config_missing",
        "config",
        "--config that does not exist",
        ["--config", "{T}/nope.yaml"] + OK,
        ["nope.yaml: no such config file"],
    ),
    Case(
        "run_name_dotdot",
        "config",
        "run name with ../",
        I + OK + ["--name", "../escaped"],
        ["invalid run name '../escaped'", "no '..'"],
    ),
    Case(
        "run_name_slash",
        "config",
        "run name with / (absolute)",
        I + OK + ["--name", "/tmp/abs"],
        ["invalid run name '/tmp/abs'"],
    ),
    Case(
        "run_name_exists",
        "config",
        "a run name that already exists",
        I + OK + ["--name", "keep"],
        ["a run named 'keep' already exists", "choose another --name"],
        gen=_existing_run_name,
    ),
    # ---- model -------------------------------------------------------------------------
    Case(
        "model_missing",
        "model",
        "model path that does not exist",
        ["--task", "instruction", "--model", "{T}/no/such/model"] + OK,
        ["model path", "does not exist", "tiny-demo"],
    ),
    Case(
        "model_not_a_model",
        "model",
        "a folder that is not a model",
        ["--task", "instruction", "--model", "{F}/not_a_model"] + OK,
        ["not_a_model is not a model folder (no config.json)", "save_pretrained"],
    ),
    Case(
        "model_bad_config",
        "model",
        "a model folder with broken config.json",
        ["--task", "instruction", "--model", "{F}/bad_config_model"] + OK,
        ["config.json: not valid JSON", "re-download"],
    ),
    Case(
        "model_hub_offline",
        "model",
        "a hub id not cached, HF_HUB_OFFLINE=1",
        ["--task", "instruction", "--model", "nosuch-org/nosuch-model"] + OK,
        ["nosuch-org/nosuch-model is not in the local Hugging Face cache", "HF_HUB_OFFLINE"],
    ),
    Case(
        "model_no_chat_template",
        "model",
        "a model without a chat template, chat task",
        [
            "--task",
            "chat",
            "--model",
            "{T}/no_template_model",
            "--data",
            str(FILES.parents[3] / "sage_ft_tui" / "samples" / "chat_messages.jsonl"),
        ],
        ["has no chat template, which the chat task needs", "instruction or text task"],
        gen=_no_template_model,
    ),
]
