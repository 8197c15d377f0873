"""Reading images: a cheap header check at indexing time, a full decode at load time.

Truncated JPEGs are common in scraped sets and OpenCV decodes them *without an error* (it prints
"Premature end of JPEG file" and fills the rest with grey), so truncation is checked explicitly: a JPEG
must end with the EOI marker ``FF D9``. Entropy-coded JPEG data stuffs every ``FF`` byte as ``FF 00``, so
``FF D9`` can only be a marker; the tail is searched (not just the last two bytes) because some encoders
append a few padding bytes after EOI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from yolokit.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_JPEG_TAIL = 1024  # bytes searched for the EOI marker


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _jpeg_truncated(path: Path, data: bytes | None = None) -> bool:
    if data is None:
        with open(path, "rb") as f:
            head = f.read(2)
            if head != b"\xff\xd8":
                return False  # not a JPEG after all; the decoder judges it
            f.seek(0, 2)
            f.seek(max(0, f.tell() - _JPEG_TAIL))
            tail = f.read()
    else:
        if data[:2] != b"\xff\xd8":
            return False
        tail = data[-_JPEG_TAIL:]
    return b"\xff\xd9" not in tail


def probe_image(path: Path) -> tuple[tuple[int, int] | None, str | None, str]:
    """Read an image's size from its header without decoding the pixels.

    Returns ``((height, width), None, "")`` for a readable image, or ``(None, kind, detail)`` with kind one of
    ``missing_image``, ``corrupt_image``, ``truncated_image``.
    """
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        return None, "missing_image", ""
    try:
        with Image.open(path) as im:
            w, h = im.size
            fmt = im.format
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return None, "corrupt_image", str(exc)
    if fmt == "JPEG" and _jpeg_truncated(path):
        return None, "truncated_image", "no JPEG end-of-image marker"
    return (h, w), None, ""


def verify_image(path: Path) -> tuple[str | None, str]:
    """Fully decode ``path`` (what ``yolokit check`` does). Returns ``(None, "")`` or ``(kind, detail)``."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        return "missing_image", ""
    try:
        with Image.open(path) as im:
            im.load()  # raises OSError "image file is truncated" on a short file
    except OSError as exc:
        kind = "truncated_image" if "truncated" in str(exc) else "corrupt_image"
        return kind, str(exc)
    except (UnidentifiedImageError, ValueError) as exc:
        return "corrupt_image", str(exc)
    if _jpeg_truncated(path):
        return "truncated_image", "no JPEG end-of-image marker"
    return None, ""


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to ``uint8`` RGB ``[H, W, 3]``; raises :class:`DataError` naming the file."""
    import cv2

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read image ({exc.strerror})") from exc
    # Pixels as stored: EXIF orientation is ignored, because annotation tools and the COCO/VOC boxes refer
    # to the stored pixel grid (and the header size used for indexing is the stored one).
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise DataError(f"{path}: not a decodable image")
    if _jpeg_truncated(path, data):
        raise DataError(f"{path}: truncated JPEG (no end-of-image marker)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
