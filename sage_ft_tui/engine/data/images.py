"""Images in conversation rows: where each one is, and whether it can be trained on.

A normalised image row keeps `images: list[str]` — absolute paths, in order — and its
messages' text holds one IMAGE_PLACEHOLDER ("<image>", LLaMA-Factory's) per image, in the
same order. Paths are resolved relative to the data file (`../` is allowed; an error names
where it points). A data URL (`data:image/png;base64,...`) is decoded once into the cache
(`$SAGE_FT_CACHE/images/<sha256>.<ext>`, content-addressed, so a re-run reuses it) and the
row keeps that file's path. `file://` URLs are paths. http(s) URLs are refused: nothing is
downloaded.

Every image is opened and fully decoded with PIL at inspection (missing, empty, not an
image, truncated, absurd sizes) and the failure becomes the row's bad-row reason, so it
is reported with file:line like every other bad row. PIL is imported inside functions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlparse

from sage_ft_tui.engine.paths import cache_home

IMAGE_PLACEHOLDER = "<image>"
# Row fields that hold a row's images (LLaMA-Factory: `images`; some exports: `image`).
IMAGE_FIELDS = ("images", "image")
# Content parts that hold an image (OpenAI `image_url`, Responses `input_image`, plain `image`).
IMAGE_PART_TYPES = ("image_url", "input_image", "image")
# Beyond these an image is a mistake, not a picture: vision processors refuse aspect ratios
# over 200 (Qwen2-VL) and resize anything big; 16384 px a side is past any real photo.
MAX_SIDE = 16384
MAX_ASPECT = 200
MIN_SIDE = 2
MAX_PIXELS = 64 * 1024 * 1024


class ImageError(ValueError):
    """One image that cannot be used; the message is the bad-row reason."""


@dataclass(frozen=True)
class ImageRef:
    """One checked image: its absolute path and its size in pixels (the Data step shows them)."""

    path: str
    width: int
    height: int

    def label(self) -> str:
        """What a terminal that draws no image shows: [image 640×480 receipt.png]."""
        return f"[image {self.width}×{self.height} {Path(self.path).name}]"


def images_cache() -> Path:
    return cache_home() / "images"


_DATA_URL = re.compile(r"^data:(image/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.IGNORECASE)
_EXT = {"image/png": ".png", "image/jpeg": ".jpg", "image/jpg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}


def _decode_data_url(url: str, where: str) -> str:
    m = _DATA_URL.match(url)
    if not m:
        raise ImageError(f"{where}: a data URL that is not base64 image data (data:image/png;base64,...)")
    try:
        raw = base64.b64decode(url[m.end() :].strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(f"{where}: the data URL's base64 is damaged") from None
    if not raw:
        raise ImageError(f"{where}: the data URL holds no bytes")
    digest = hashlib.sha256(raw).hexdigest()
    out = images_cache() / f"{digest}{_EXT.get((m.group(1) or '').lower(), '.img')}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, out)
    return str(out)


def resolve_ref(ref: Any, base: Path, where: str) -> str:
    """A row's image reference (a path, file:// or data URL, or a {"path"/"url"} dict) → an
    absolute path. Relative paths are relative to `base` (the data file's folder)."""
    if isinstance(ref, dict):  # {"path": ...}, {"url": ...}, OpenAI's {"image_url": {"url": ...}}
        inner = ref.get("image_url", ref)
        ref = inner.get("url", inner.get("path")) if isinstance(inner, dict) else inner
    if not isinstance(ref, str) or not ref.strip():
        raise ImageError(f"{where}: expected a path or URL, got {type(ref).__name__}")
    ref = ref.strip()
    low = ref[:16].lower()
    if low.startswith("data:"):
        return _decode_data_url(ref, where)
    if low.startswith(("http://", "https://")):
        raise ImageError(f"{where}: {ref[:80]} is a web address; download the image and give its path")
    if low.startswith("file://"):
        ref = unquote(urlparse(ref).path)
    p = Path(ref).expanduser()
    return os.path.normpath(p if p.is_absolute() else base / p)


@lru_cache(maxsize=4096)
def _checked(path: str, size: int, mtime_ns: int) -> tuple[int, int]:
    """Open and fully decode one image (cached by path, size and mtime): its (width, height)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w < MIN_SIDE or h < MIN_SIDE or max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
                    raise ImageError(f"{w}×{h} px is no usable picture (sides {MIN_SIDE}–{MAX_SIDE} px)")
                if max(w, h) / min(w, h) > MAX_ASPECT:
                    raise ImageError(f"{w}×{h} px: aspect ratio over {MAX_ASPECT}:1")
                im.load()  # a truncated file fails here, not at open
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image PIL can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("far too many pixels (a decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"truncated or damaged ({str(e)[:80]})") from None
    return w, h


def check_image(path: str, shown_as: str = "") -> ImageRef:
    """An ImageRef for a usable image; ImageError (one line, naming the file) otherwise."""
    name = shown_as if shown_as and shown_as != path else ""
    label = f"{name} → {path}" if name else path
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except OSError as e:
        raise ImageError(f"{label}: cannot be read ({e.strerror})") from None
    if not os.path.isfile(path):
        raise ImageError(f"{label}: not a regular file")
    if st.st_size == 0:
        raise ImageError(f"{label}: empty file (0 bytes)")
    try:
        w, h = _checked(path, st.st_size, st.st_mtime_ns)
    except ImageError as e:
        raise ImageError(f"{label}: {e}") from None
    return ImageRef(path, w, h)


def content_parts(messages: list[dict]) -> list[dict]:
    """Messages whose text content becomes a list of parts, as vision templates and processors
    read them: text pieces as {"type": "text"}, each IMAGE_PLACEHOLDER as {"type": "image"}."""
    out = []
    for m in messages:
        c = m.get("content")
        if isinstance(c, str):
            parts: list[dict] = []
            for i, piece in enumerate(c.split(IMAGE_PLACEHOLDER)):
                if i:
                    parts.append({"type": "image"})
                if piece:
                    parts.append({"type": "text", "text": piece})
            m = {**m, "content": parts}
        out.append(m)
    return out


def vision_examples(rec: dict) -> list[dict]:
    """A normalised image row as TRL's vision prompt-completion examples, one per trained
    answer: the conversation before it as the prompt (parts, with the images its placeholders
    name, in order), the answer as the completion. So every answer is trained exactly as
    inference renders it (the processor's template with the generation prompt), and the
    prompt and image tokens are not."""
    msgs = [{k: v for k, v in m.items() if k in ("role", "content")} for m in rec["messages"]]
    images = list(rec.get("images") or [])
    out = []
    for k, m in enumerate(rec["messages"]):
        if m["role"] != "assistant" or m.get("train") is False or not str(m.get("content") or "").strip():
            continue
        n = placeholder_count(msgs[:k])
        out.append(
            {
                "prompt": content_parts(msgs[:k]),
                "completion": content_parts([msgs[k]]),
                "images": images[:n],
            }
        )
    return out


def placeholder_count(messages: list[dict]) -> int:
    return sum(str(m.get("content") or "").count(IMAGE_PLACEHOLDER) for m in messages)


def resolve_row_images(rec: dict, data_file: str) -> list[ImageRef]:
    """Resolve and check a normalised record's images in place (rec["images"] becomes absolute
    paths). Raises ImageError with the bad-row reason. A record without images: []."""
    raw = rec.get("images") or []
    n_ph = placeholder_count(rec.get("messages") or [])
    if len(raw) != n_ph:
        raise ImageError(
            f"{n_ph} {IMAGE_PLACEHOLDER} placeholder{'s' if n_ph != 1 else ''} but {len(raw)} "
            f"image{'s' if len(raw) != 1 else ''}: put one {IMAGE_PLACEHOLDER} in the text where each image goes"
        )
    if not raw:
        rec.pop("images", None)
        return []
    base = Path(data_file).resolve().parent if data_file else Path.cwd()
    refs = []
    for i, r in enumerate(raw):
        where = f"images[{i}]"
        path = resolve_ref(r, base, where)
        shown_as = r if isinstance(r, str) and not r.startswith("data:") and len(r) < 200 else ""
        try:
            refs.append(check_image(path, shown_as))
        except ImageError as e:
            raise ImageError(f"{where} {e}") from None
    rec["images"] = [x.path for x in refs]
    return refs


def row_image_refs(rec: dict) -> list[ImageRef]:
    """ImageRefs of an already-resolved record (the preview); an image gone since: skipped."""
    out = []
    for p in rec.get("images") or []:
        try:
            out.append(check_image(p))
        except ImageError:
            continue
    return out


def raw_images(d: dict) -> Optional[list]:
    """The images a raw row names in its own field (a list, or one path), or None."""
    for k in IMAGE_FIELDS:
        v = d.get(k)
        if v in (None, "", []):
            continue
        return list(v) if isinstance(v, (list, tuple)) else [v]
    return None
