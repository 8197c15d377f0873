"""Reading images: the one decoder behind ``check``, ``train``, ``eval`` and ``detect``.

Every door decodes through :func:`decode_image` (Pillow), so an image gets the same verdict everywhere:

* **Pixels as stored.** EXIF orientation is ignored (Pillow never applies it; ``cv2.imread`` would).
  VOC/COCO/YOLO boxes and the width/height fields of annotation files refer to the stored pixel grid,
  and so must the detector's input, or boxes land on rotated pictures.
* **The decoder decides** whether a file is truncated or corrupt: Pillow raises on a short entropy stream
  ("image file is truncated") and on a broken one ("broken data stream"), where OpenCV fills the rest with
  grey and says nothing. Bytes after a JPEG's end-of-image marker are not an error (real datasets pad
  files with over a kilobyte of zeros).
* **Over-limit images** (Pillow's decompression-bomb limit, ``PIL.Image.MAX_IMAGE_PIXELS``, ~89 MP) are a
  per-image problem (``oversized_image``), never an abort of the whole dataset.

:func:`read_image` returns RGB (the dataset contract), :func:`read_image_bgr` OpenCV's BGR (video and
image sources of ``detect``). Both raise :class:`ImageError` (a ``DataError``) naming the file and the kind.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from yolokit.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ImageError(DataError):
    """An image that cannot be used. ``kind``: missing_image, corrupt_image, truncated_image or
    oversized_image (the problem kinds of :mod:`yolokit.data.sample`); ``detail``: the decoder's words."""

    def __init__(self, path, kind: str, detail: str = ""):
        self.path, self.kind, self.detail = Path(path), kind, detail
        what = {"missing_image": "image file missing", "corrupt_image": "image cannot be decoded",
                "truncated_image": "image file truncated",
                "oversized_image": "image over the decompression-bomb limit"}[kind]
        super().__init__(f"{path}: {what}" + (f" ({detail})" if detail else ""))


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _open(path: Path, data: bytes | None = None):
    """``PIL.Image.open`` of ``path`` (or of ``data``, the encoded bytes that ``path`` names) with every failure as
    an :class:`ImageError` (the bomb warning is one too: an image between 1x and 2x the limit is refused like one
    above 2x, so the verdict does not depend on warning filters)."""
    import io

    from PIL import Image, UnidentifiedImageError

    if data is None and not path.is_file():
        raise ImageError(path, "missing_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path if data is None else io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(path, "oversized_image", str(exc).split(",")[0]) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError(path, "corrupt_image", str(exc) or type(exc).__name__) from None


def probe_image(path: Path) -> tuple[tuple[int, int] | None, str | None, str]:
    """An image's stored size from its header, without decoding the pixels (indexing a dataset).

    Returns ``((height, width), None, "")``, or ``(None, kind, detail)`` for an image that is missing, not an
    image, or over the size limit. Truncation and a corrupt middle only show at decode (:func:`verify_image`).
    """
    try:
        with _open(Path(path)) as im:
            w, h = im.size
    except ImageError as exc:
        return None, exc.kind, exc.detail
    return (h, w), None, ""


def checked_size(path: Path, report, note: str = "") -> tuple[int, int] | None:
    """:func:`probe_image` for an adapter: the stored ``(height, width)``, or None after adding the problem
    (``note`` appended to its detail) to ``report`` -- the caller then leaves the image out."""
    size, bad, detail = probe_image(path)
    if bad:
        report.add(path, bad, " ".join(t for t in (detail, note) if t))
        return None
    return size


def decode_image(path: str | Path, data: bytes | None = None) -> np.ndarray:
    """Decode ``path`` to ``uint8 [H, W, 3]`` RGB in stored pixel order (EXIF orientation ignored). ``data``: the
    file's encoded bytes when they are already in memory (a shard member); ``path`` then names them in errors.

    Raises :class:`ImageError` (missing, corrupt, truncated, oversized). Grey, palette, CMYK and alpha images
    become RGB; 16-bit images are scaled to 8 bits (as OpenCV's ``IMREAD_COLOR`` does)."""
    path = Path(path)
    with _open(path, data) as im:
        try:
            im.load()
        except OSError as exc:
            msg = str(exc)
            raise ImageError(path, "truncated_image" if "truncated" in msg else "corrupt_image", msg) from None
        except (ValueError, SyntaxError, EOFError) as exc:
            raise ImageError(path, "corrupt_image", str(exc) or type(exc).__name__) from None
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            grey = np.asarray(im)
            grey = (grey >> 8 if im.mode != "I" else np.clip(grey, 0, 65535) >> 8).astype(np.uint8)
            return np.repeat(grey[:, :, None], 3, axis=2)
        if im.mode != "RGB":
            im = im.convert("RGB")
        return np.array(im, dtype=np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """The dataset reader: ``uint8 [H, W, 3]`` RGB (see :func:`decode_image`)."""
    return decode_image(path)


def read_image_bgr(path: str | Path) -> np.ndarray:
    """The same pixels in OpenCV's BGR order (``detect``'s image sources, drawing)."""
    return np.ascontiguousarray(decode_image(path)[:, :, ::-1])


def verify_image(path: Path) -> tuple[str | None, str]:
    """Fully decode ``path`` (``check``, and ``load_dataset(..., decode=True)`` for training).
    Returns ``(None, "")`` or ``(kind, detail)``."""
    try:
        decode_image(path)
    except ImageError as exc:
        return exc.kind, exc.detail
    return None, ""
