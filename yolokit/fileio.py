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
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the mode open() would give it
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process umask, read without changing it (os.umask sets it: another thread creating a file meanwhile
    would get the wrong mode); Linux states it in /proc/self/status, elsewhere it is read by setting it back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> Path:
    """:func:`write_atomic` for UTF-8 text."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda f: f.write(data))
