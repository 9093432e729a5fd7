"""Image rows (engine/data/images.py through the real load_training_data and inspect_data):
the three formats people have, paths relative to the data file, and every broken image a
bad row with file:line."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from sage_ft_tui.engine.data.images import ImageRef
from sage_ft_tui.engine.data.inspect import inspect_data
from sage_ft_tui.engine.data.load import load_training_data
from sage_ft_tui.engine.errors import SageError


def png_bytes(w=32, h=24, color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def lf_row(*images: str, q="What colour is this?", a="Red.") -> dict:
    """LLaMA-Factory's mllm_demo shape."""
    ph = "<image>" * len(images)
    return {
        "messages": [{"role": "user", "content": f"{ph}{q}"}, {"role": "assistant", "content": a}],
        "images": list(images),
    }


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "red.png").write_bytes(png_bytes())
    (tmp_path / "imgs" / "blue.png").write_bytes(png_bytes(40, 40, (0, 0, 255)))
    return tmp_path


def write(p: Path, rows: list) -> Path:
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_llamafactory_openai_and_sharegpt_rows_resolve_to_checked_absolute_paths(folder):
    red = folder / "imgs" / "red.png"
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes(8, 8)).decode()
    rows = [
        lf_row("imgs/red.png"),
        lf_row("imgs/red.png", "imgs/blue.png", q="Which is blue?", a="The second."),
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare "},
                        {"type": "image_url", "image_url": {"url": f"file://{red}"}},
                        {"type": "image_url", "image_url": {"url": data_url}},
                    ],
                },
                {"role": "assistant", "content": "Both are squares."},
            ]
        },
        {
            "conversations": [{"from": "human", "value": "<image>Colour?"}, {"from": "gpt", "value": "Blue."}],
            "images": ["imgs/blue.png"],
        },
    ]
    # the data file lives in a sub-folder: paths are relative to it, not to the cwd
    sub = folder / "sub"
    sub.mkdir()
    for r in rows:
        r["images"] = ["../" + p for p in r.get("images", [])] if r.get("images") else r.get("images")
        if r.get("images") is None:
            r.pop("images")
    got = load_training_data(write(sub / "d.jsonl", rows[:2]), task="chat")
    assert got.records[1]["images"] == [str(red), str(folder / "imgs" / "blue.png")]
    assert got.records[1]["messages"][0]["content"] == "<image><image>Which is blue?"
    oa = load_training_data(write(folder / "oa.jsonl", [rows[2]]), task="chat").records[0]
    assert oa["messages"][0]["content"] == "Compare <image><image>"
    assert oa["images"][0] == str(red) and Path(oa["images"][1]).read_bytes() == png_bytes(8, 8)
    sg = load_training_data(write(sub / "sg.jsonl", [rows[3]]), task="chat").records[0]
    assert sg["images"] == [str(folder / "imgs" / "blue.png")] and sg["messages"][0]["content"] == "<image>Colour?"


def test_the_inspection_previews_each_rows_images_with_their_size(folder, vlm_zoo):
    p = write(folder / "d.jsonl", [lf_row("imgs/red.png"), lf_row("imgs/blue.png", "imgs/red.png")])
    ins = inspect_data([str(p)], task="chat", model=str(vlm_zoo["llava-interleave-qwen"]), preview=5)
    assert ins.error is None, ins.error
    # the processor's template reads parts: the image renders where the placeholder stood
    assert ins.preview[0][0][0].endswith("user\n<image>\nWhat colour is this?<|im_end|>\n<|im_start|>assistant\n")
    assert ins.preview[0][1] == ("Red.<|im_end|>", True)
    assert ins.images == [
        [ImageRef(str(folder / "imgs" / "red.png"), 32, 24)],
        [ImageRef(str(folder / "imgs" / "blue.png"), 40, 40), ImageRef(str(folder / "imgs" / "red.png"), 32, 24)],
    ]
    assert ins.images[0][0].label() == "[image 32×24 red.png]"


def test_every_broken_image_is_a_bad_row_with_file_line(folder):
    (folder / "imgs" / "empty.png").write_bytes(b"")
    (folder / "imgs" / "notes.png").write_text("these are my notes, not a picture\n")
    (folder / "imgs" / "cut.png").write_bytes(png_bytes(64, 64)[:60])
    Image.new("L", (100000, 1)).save(folder / "imgs" / "line.png")
    (folder / "other").mkdir()
    bad = [
        (lf_row("imgs/missing.png"), "no such file"),
        (lf_row("imgs/cut.png"), "truncated or damaged"),
        (lf_row("imgs/empty.png"), "empty file (0 bytes)"),
        (lf_row("imgs/notes.png"), "not an image PIL can read"),
        (lf_row("imgs/line.png"), "100000×1 px"),
        (dict(lf_row("imgs/red.png"), images=["imgs/red.png", "imgs/blue.png"]), "1 <image> placeholder but 2 images"),
        (lf_row("data:image/png;base64,@@not-base64@@"), "base64 is damaged"),
        (lf_row("../elsewhere/x.png"), f"../elsewhere/x.png → {folder.parent / 'elsewhere' / 'x.png'}: no such file"),
        (lf_row("https://example.com/cat.png"), "is a web address"),
    ]
    good = [lf_row("imgs/red.png", q=f"Colour {i}?") for i in range(3)]
    p = write(folder / "d.jsonl", good + [r for r, _ in bad])
    got = load_training_data(p, task="chat", max_bad_share=1.0)
    assert len(got.records) == 3
    assert [b.where for b in got.bad] == [f"{p}:{i}" for i in range(4, 4 + len(bad))]
    for b, (_, why) in zip(got.bad, bad):
        assert why in b.reason, (b.reason, why)
        assert "\n" not in b.reason
    # over the bad-row share: one clear refusal naming the first one
    with pytest.raises(SageError) as e:
        load_training_data(p, task="chat")
    assert "rows are bad" in e.value.message and "missing.png" in e.value.message


def test_image_rows_for_a_text_model_are_refused_naming_the_model(folder):
    p = write(folder / "d.jsonl", [lf_row("imgs/red.png")])
    ins = inspect_data([str(p)], task="chat", model="tiny-demo")
    assert ins.error is not None and "model tiny-demo reads text only" in ins.error.message
    assert ins.error.where == f"{p}:1" and "vision-language model" in ins.error.hint


@pytest.mark.parametrize(
    "task,row,named",
    [
        ("preference", {"prompt": "<image>p", "chosen": "a", "rejected": "b", "images": ["x.png"]}, "field 'images'"),
        ("text", {"text": "a picture", "images": ["x.png"]}, "the text task trains text only"),
        ("chat", dict(lf_row("x.png"), videos=["v.mp4"]), "audio or video"),
    ],
)
def test_images_outside_conversations_and_video_are_refused(tmp_path, task, row, named):
    p = write(tmp_path / "d.jsonl", [row])
    with pytest.raises(SageError, match=named) as e:
        load_training_data(p, task=task)
    assert e.value.where == f"{p}:1"


def test_the_text_only_public_api_refuses_image_rows(folder):
    from sage_ft_tui.engine.data.trainer_data import prepare_dataset

    with pytest.raises(SageError, match="tokenizes text only") as e:
        prepare_dataset([lf_row("imgs/red.png")], "tiny-demo", task="chat")
    assert "vision-language model" in e.value.hint


def _png_claiming(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims w×h pixels (a decompression bomb's shape)."""
    import struct
    import zlib

    raw = bytearray(png_bytes(1, 1))
    ihdr = struct.pack(">II", w, h) + bytes(raw[24:29])
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(raw)


def test_hostile_image_files_are_bad_rows_not_hangs(folder):
    import os

    (folder / "imgs" / "bomb.png").write_bytes(_png_claiming(60000, 60000))
    (folder / "imgs" / "big.png").write_bytes(_png_claiming(9000, 9000))
    (folder / "imgs" / "dir.png").mkdir()
    os.mkfifo(folder / "imgs" / "pipe.png")
    cases = [
        ("imgs/bomb.png", "far too many pixels"),
        ("imgs/big.png", "9000×9000 px is no usable picture"),
        ("imgs/dir.png", "not a regular file"),
        ("imgs/pipe.png", "not a regular file"),
    ]
    p = write(folder / "d.jsonl", [lf_row("imgs/red.png")] + [lf_row(img) for img, _ in cases])
    got = load_training_data(p, task="chat", max_bad_share=1.0)
    assert len(got.records) == 1
    for b, (img, why) in zip(got.bad, cases):
        assert img in b.reason and why in b.reason, b.reason
