"""The data classes of the bad-input corpus: readers, silent mis-training, secrets.

Same contract as cases.py (each is a real `sage-ft-tui start ... --no-tui`), plus for
accepted cases: `warn` (substrings of the `warning:` lines the user must see), `skipped`
(bad rows expected) and `absent` (text that must not be anywhere in the new run folder:
the secrets). Every file is generated in the case's own folder ({T}); the runner hashes
the inputs before and after (nothing is modified). Secrets are assembled at run time so
no credential-shaped literal sits in the repository.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
from pathlib import Path

from .cases import Case

I = ["--task", "instruction", "--model", "tiny-demo"]
ROWS = [{"instruction": f"Name the number {i}.", "output": f"The number is {i}."} for i in range(30)]

# Assembled here, never written whole in the source.
SECRETS = {
    "openai": "sk-" + "proj-" + "Q9x" * 12,
    "github": "gh" + "p_" + "A1b2" * 9,
    "aws": "AK" + "IA" + "QWERTYUIOPASDFGH",
    "jwt": "ey" + "JhbGciOiJIUzI1NiJ9." + "ey" + "JzdWIiOiIxMjM0NTY3ODkwIn0." + "SflKxwRJSMeKKF2QT4fwpMeJf36POk6y",
    "url": "postgres://admin:" + "Tr0ub4dor" + "x@db.internal.example/app",
    "key": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA" + "x" * 40 + "\n-----END RSA PRIVATE KEY-----",
}


def _jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _write(name: str, content):
    def gen(t: Path) -> None:
        data = content(t) if callable(content) else content
        p = t / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())

    return gen


def _many(*gens):
    def gen(t: Path) -> None:
        for g in gens:
            g(t)

    return gen


def _with_secret(kind: str):
    return _write("s.jsonl", _jsonl(ROWS + [{"instruction": "What is the key?", "output": f"Use {SECRETS[kind]}"}]))


def _fifo(t: Path) -> None:
    os.mkfifo(t / "pipe.jsonl")


def _deep_row() -> str:
    return _jsonl(ROWS) + '{"instruction": "x", "output": ' + "[" * 50_000 + "]" * 50_000 + "}\n"


CSV_U2028 = 'instruction,output\n"first\u2028line",ok\n"two\nphysical lines",ok\n"next\u0085line",ok\n'
CSV_BAD_AT_5 = 'instruction,output\nq1,a1\n"q2\nspans two lines",a2\nq3,a3\nonly-one-cell\n'
LONG = [{"instruction": f"Write about {i}.", "output": " ".join(["word"] * (60 + i))} for i in range(30)]
NO_TRAINED = ROWS + [{"instruction": "context " * 80, "output": "yes"}] * 2


DATA_CASES: list[Case] = [
    # ---- readers ---------------------------------------------------------------------
    Case(
        "deep_json_row",
        "data",
        "one row nested 50,000 levels deep in a .jsonl",
        I + ["--data", "{T}/d.jsonl"],
        None,
        _write("d.jsonl", _deep_row()),
        rows=30,
        skipped=1,
    ),
    Case(
        "deep_json_file",
        "data",
        "a .json array nested 200,000 levels deep",
        I + ["--data", "{T}/d.json"],
        ["d.json: JSON nested deeper", ".jsonl"],
        _write("d.json", "[" * 200_000 + "]" * 200_000),
    ),
    Case(
        "fifo_data",
        "data",
        "a FIFO given as the data file",
        I + ["--data", "{T}/pipe.jsonl"],
        ["pipe.jsonl is a FIFO (named pipe)", "regular file"],
        _fifo,
    ),
    Case(
        "device_data",
        "data",
        "/dev/zero given as data",
        I + ["--data", "/dev/zero"],
        ["/dev/zero is a device", "regular file"],
    ),
    Case(
        "gzip_jsonl",
        "data",
        "rows.jsonl.gz",
        I + ["--data", "{T}/rows.jsonl.gz"],
        None,
        _write("rows.jsonl.gz", gzip.compress(_jsonl(ROWS).encode())),
        rows=30,
    ),
    Case(
        "gzip_named_jsonl",
        "data",
        "a .jsonl that is really gzip",
        I + ["--data", "{T}/rows.jsonl"],
        None,
        _write("rows.jsonl", gzip.compress(_jsonl(ROWS).encode())),
        rows=30,
    ),
    Case(
        "bz2_jsonl",
        "data",
        "rows.jsonl.bz2",
        I + ["--data", "{T}/rows.jsonl.bz2"],
        None,
        _write("rows.jsonl.bz2", bz2.compress(_jsonl(ROWS).encode())),
        rows=30,
    ),
    Case(
        "xz_csv",
        "data",
        "rows.csv.xz",
        I + ["--data", "{T}/rows.csv.xz"],
        None,
        _write(
            "rows.csv.xz", lzma.compress(("instruction,output\n" + "".join(f"q{i},a{i}\n" for i in range(30))).encode())
        ),
        rows=30,
    ),
    Case(
        "zip_named_jsonl",
        "data",
        "a zip archive named .jsonl",
        I + ["--data", "{T}/z.jsonl"],
        ["z.jsonl: a zip archive", "unzip"],
        _write("z.jsonl", b"PK\x03\x04" + b"\0" * 60),
    ),
    Case(
        "broken_gzip",
        "data",
        "a truncated .jsonl.gz",
        I + ["--data", "{T}/b.jsonl.gz"],
        ["b.jsonl.gz: a broken gzip file"],
        _write("b.jsonl.gz", gzip.compress(_jsonl(ROWS).encode())[:40]),
    ),
    Case(
        "zstd_jsonl",
        "data",
        "a zstd-compressed .jsonl.zst",
        I + ["--data", "{T}/r.jsonl.zst"],
        ["r.jsonl.zst", "zstd"],
        _write("r.jsonl.zst", b"\x28\xb5\x2f\xfd" + b"\0" * 30),
    ),
    Case(
        "csv_unicode_separators",
        "data",
        "CSV cells holding U+2028, U+0085 and a quoted newline",
        I + ["--data", "{T}/u.csv"],
        None,
        _write("u.csv", CSV_U2028),
        rows=3,
    ),
    Case(
        "csv_bad_record_line",
        "data",
        "CSV with a bad record after a two-line cell",
        I + ["--data", "{T}/b.csv"],
        ["1 of 4 rows are bad", "b.csv:6", "1 columns"],
        _write("b.csv", CSV_BAD_AT_5),
    ),
    Case(
        "csv_duplicate_header",
        "data",
        "CSV header naming 'output' twice",
        I + ["--data", "{T}/dup.csv"],
        ["dup.csv:1: the header names column 'output' twice", "rename"],
        _write("dup.csv", "instruction,output,output\nq,a,b\n"),
    ),
    Case(
        "csv_huge_cell",
        "data",
        "a CSV cell of 150,000 characters (past the csv module's default field limit)",
        I + ["--data", "{T}/h.csv", "--max-length", "4096"],
        None,
        _write(
            "h.csv",
            "instruction,output\n" + "".join(f"q{i},a{i}\n" for i in range(29)) + "q," + "long " * 30_000 + "\n",
        ),
        rows=30,
    ),
    Case(
        "tsv",
        "data",
        "tab-separated rows with commas in cells",
        I + ["--data", "{T}/r.tsv"],
        None,
        _write("r.tsv", "instruction\toutput\n" + "".join(f"q, {i}\ta, {i}\n" for i in range(30))),
        rows=30,
    ),
    Case(
        "folder_unusable_file",
        "data",
        "a folder whose small second file has no known format",
        I + ["--data", "{T}/d"],
        ["d/z.jsonl: cannot tell the data format", "field_map"],
        _many(_write("d/a.jsonl", _jsonl(ROWS * 4)), _write("d/z.jsonl", '{"foo": 1}\n')),
    ),
    Case(
        "folder_formats_per_file",
        "data",
        "a folder of an alpaca file and a qa file",
        ["--task", "qa", "--model", "tiny-demo", "--data", "{T}/d"],
        None,
        _many(
            _write("d/a.jsonl", _jsonl(ROWS)),
            _write("d/b.jsonl", _jsonl([{"question": f"q{i}?", "answer": f"a{i}"} for i in range(10)])),
        ),
        rows=40,
    ),
    Case(
        "same_file_twice",
        "data",
        "the same file given twice",
        I + ["--data", "{T}/a.jsonl", "--data", "{T}/a.jsonl"],
        None,
        _write("a.jsonl", _jsonl(ROWS)),
        rows=30,
        warn=["given more than once"],
    ),
    Case(
        "copied_file_split",
        "data",
        "a file and its copy, with an eval split",
        I + ["--data", "{T}/a.jsonl", "--data", "{T}/b.jsonl", "--set", "data.validation_split=0.2"],
        None,
        _many(_write("a.jsonl", _jsonl(ROWS)), _write("b.jsonl", _jsonl(ROWS))),
        rows=48,
        warn=["30 rows are exact duplicates", "across files"],
    ),
    Case(
        "field_map_set",
        "data",
        "--set data.field_map.question=q as the README says",
        [
            "--task",
            "qa",
            "--model",
            "tiny-demo",
            "--data",
            "{T}/qa.csv",
            "--set",
            "data.field_map.question=q",
            "--set",
            "data.field_map.answer=a",
        ],
        None,
        _write("qa.csv", "q,a\n" + "".join(f"question {i}?,answer {i}\n" for i in range(30))),
        rows=30,
    ),
    # ---- silent mis-training ------------------------------------------------------------
    Case(
        "dpo_to_sft",
        "mistraining",
        "chosen/rejected rows given to the instruction task",
        I + ["--data", "{T}/p.jsonl"],
        ["this is preference data", "--task preference"],
        _write("p.jsonl", _jsonl([{"prompt": f"p{i}", "chosen": "good", "rejected": "bad"} for i in range(9)])),
    ),
    Case(
        "kto_to_sft",
        "mistraining",
        "KTO rows (label false) given to the chat task",
        ["--task", "chat", "--model", "tiny-demo", "--data", "{T}/k.jsonl"],
        ["this is preference data", "--task preference"],
        _write("k.jsonl", _jsonl([{"prompt": f"p{i}", "completion": "c", "label": i % 2 == 0} for i in range(9)])),
    ),
    Case(
        "images_field",
        "mistraining",
        "rows with an images field",
        I + ["--data", "{T}/m.jsonl"],
        ["field 'images'", "text only"],
        _write("m.jsonl", _jsonl([dict(r, images=["a.png"]) for r in ROWS])),
    ),
    Case(
        "image_token",
        "mistraining",
        "an <image> token in an instruction",
        I + ["--data", "{T}/m.jsonl"],
        ["<image> token in 'instruction'", "m.jsonl:31"],
        _write("m.jsonl", _jsonl(ROWS + [{"instruction": "<image>What is this?", "output": "A cat."}])),
    ),
    Case(
        "image_part",
        "mistraining",
        "an image_url content part in messages",
        ["--task", "chat", "--model", "tiny-demo", "--data", "{T}/m.jsonl"],
        ["image_url content part"],
        _write(
            "m.jsonl",
            _jsonl(
                [
                    {
                        "messages": [
                            {
                                "role": "user",
                                "content": [
                                    {"type": "text", "text": "what?"},
                                    {"type": "image_url", "image_url": {"url": "x.png"}},
                                ],
                            },
                            {"role": "assistant", "content": "a cat"},
                        ]
                    }
                ]
            ),
        ),
    ),
    Case(
        "audio_field",
        "mistraining",
        "rows with an audios field",
        I + ["--data", "{T}/a.jsonl"],
        ["field 'audios'"],
        _write("a.jsonl", _jsonl([dict(r, audios=["a.wav"]) for r in ROWS])),
    ),
    Case(
        "placeholders",
        "mistraining",
        "{{name}} template placeholders left in rows",
        I + ["--data", "{T}/t.jsonl"],
        None,
        _write("t.jsonl", _jsonl(ROWS + [{"instruction": "Greet {{name}}.", "output": "Hello {{name}}!"}])),
        rows=31,
        warn=["placeholders would be trained literally", "{{name}}", "data.replace.name"],
    ),
    Case(
        "placeholders_replaced",
        "mistraining",
        "placeholders filled with --set data.replace.name=Ada",
        I + ["--data", "{T}/t.jsonl", "--set", "data.replace.name=Ada"],
        None,
        _write("t.jsonl", _jsonl(ROWS + [{"instruction": "Greet {{name}}.", "output": "Hello {{name}}!"}])),
        rows=31,
        absent=["{{name}}"],
    ),
    Case(
        "max_length_8",
        "mistraining",
        "--max-length 8: no answer token survives",
        I + ["--data", "{T}/a.jsonl", "--max-length", "8"],
        ["no sample keeps an answer token within max length 8", "raise --max-length"],
        _write("a.jsonl", _jsonl(ROWS)),
    ),
    Case(
        "eos_lost",
        "mistraining",
        "answers longer than the max length lose their EOS",
        I + ["--data", "{T}/l.jsonl", "--max-length", "48"],
        None,
        _write("l.jsonl", _jsonl(LONG)),
        rows=30,
        warn=["lose their end (EOS) at max length 48", "keeps 95% whole"],
    ),
    Case(
        "no_trained_rows",
        "mistraining",
        "two rows whose prompt fills the whole max length",
        I + ["--data", "{T}/n.jsonl", "--max-length", "64"],
        None,
        _write("n.jsonl", _jsonl(NO_TRAINED)),
        rows=30,
        warn=["2 rows keep no answer token within max length 64"],
    ),
    # ---- secrets ---------------------------------------------------------------------
    *[
        Case(
            f"secret_{kind}",
            "secrets",
            f"a row holding a {label}",
            I + ["--data", "{T}/s.jsonl"],
            None,
            _with_secret(kind),
            rows=30,
            skipped=1,
            warn=[f"hold secrets ({label}", "s.jsonl:31"],
            absent=[SECRETS[kind]],
        )
        for kind, label in (
            ("openai", "openai key"),
            ("github", "github token"),
            ("aws", "aws access key id"),
            ("jwt", "json web token"),
            ("url", "password in a URL"),
            ("key", "private key block"),
        )
    ],
    Case(
        "secrets_allowed",
        "secrets",
        "data.allow_secrets: true trains the row, with a warning",
        I + ["--data", "{T}/s.jsonl", "--set", "data.allow_secrets=true"],
        None,
        _with_secret("openai"),
        rows=31,
        warn=["allow_secrets is on"],
    ),
    Case(
        "secrets_everywhere",
        "secrets",
        "every row holds a secret",
        I + ["--data", "{T}/s.jsonl"],
        ["no usable rows", "holds a secret (github token)"],
        _write("s.jsonl", _jsonl([{"instruction": f"q{i}", "output": SECRETS["github"]} for i in range(5)])),
    ),
]
