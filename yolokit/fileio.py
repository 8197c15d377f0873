"""Writing files atomically: every file yolokit writes (checkpoints, Darknet weights, HOG models, results.csv,
metrics and detections JSON, split lists, MOT results) goes through :func:`write_atomic`, so a crash, a kill or a
full disk mid-write leaves the previous file whole, never a truncated one. A leaf module: any floor may use it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, write) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path`` (binary mode), fsync it, then ``os.replace`` it
    onto ``path``. On an exception the temporary file is removed and ``path`` is untouched. Killed writes leave
    ``NAME.<random>.tmp`` files, which the trainer cleans at its next start."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """:func:`write_atomic` for UTF-8 text."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda f: f.write(data))
