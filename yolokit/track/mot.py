"""MOTChallenge text files, the edge where boxes are ``x, y, w, h`` and frames are 1-based.

A line: ``frame, id, x, y, w, h, score, ...`` (top-left corner and size in pixels). Detection files
(``det.txt``, the public-detections protocol) have ``id = -1``; ground truth and tracker results have
the track id. Inside yolokit a frame's boxes are ``[K, 6]`` xyxy + score + class (detections) or
``[M, 7]`` with the track id appended (tracks); class is 0 for MOT files, which carry none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from yolokit.errors import DataError
from yolokit.fileio import write_text_atomic
from yolokit.ops.boxes_np import xywh_to_xyxy, xyxy_to_xywh

MAX_FRAME = 10_000_000  # about four days of video at 30 fps


def read_mot(path: str | Path) -> np.ndarray:
    """All lines of a MOTChallenge file as ``[L, 7+]`` float rows ``frame, id, x, y, w, h, score, ...``.

    Raises DataError naming the file and line for a line that is not at least 7 numbers, a frame < 1,
    or a negative width/height."""
    from yolokit.fileio import read_text

    path = Path(path)
    text = read_text(path, "MOT file", 1 << 30)  # a regular file (not /dev/zero), at most 1 GB
    rows = []
    width = None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            values = [float(v) for v in line.replace(" ", "").split(",")]
        except ValueError:
            raise DataError(f"{path}:{lineno}: expected comma-separated numbers "
                            f"'frame,id,x,y,w,h,score,...', got {line[:80]!r}") from None
        if len(values) < 7:
            raise DataError(f"{path}:{lineno}: expected at least 7 values (frame,id,x,y,w,h,score), "
                            f"got {len(values)}")
        if values[0] < 1 or values[0] != int(values[0]):
            raise DataError(f"{path}:{lineno}: frame {values[0]:g} is not an integer >= 1 (MOT frames are 1-based)")
        if values[0] > MAX_FRAME:  # every frame up to the last gets a slot: 10**9 would take 15 GB
            raise DataError(f"{path}:{lineno}: frame {values[0]:.0f} is past the last frame yolokit tracks "
                            f"({MAX_FRAME})")
        if values[4] < 0 or values[5] < 0:
            raise DataError(f"{path}:{lineno}: negative box size w={values[4]:g} h={values[5]:g}")
        width = len(values) if width is None else min(width, len(values))
        rows.append(values)
    if not rows:
        return np.empty((0, 7))
    return np.array([r[:width] for r in rows], dtype=np.float64)


def detections_by_frame(rows: np.ndarray) -> tuple[list[np.ndarray], int]:
    """MOT rows -> (per-frame detections ``[K, 6]`` xyxy/score/class 0 for frames 1..N, N = last frame)."""
    n_frames = int(rows[:, 0].max()) if len(rows) else 0
    dets = np.zeros((len(rows), 6))
    dets[:, :4] = xywh_to_xyxy(rows[:, 2:6])
    dets[:, 4] = rows[:, 6]
    frames = rows[:, 0].astype(np.int64)
    order = np.argsort(frames, kind="stable")
    dets, frames = dets[order], frames[order]
    bounds = np.searchsorted(frames, np.arange(1, n_frames + 2))  # rows of frame f: bounds[f-1]:bounds[f]
    return [dets[bounds[f]:bounds[f + 1]] for f in range(n_frames)], n_frames


def track_detections(tracker, frames: list[np.ndarray]) -> list[np.ndarray]:
    """Run ``tracker`` (reset first) over per-frame detections; returns per-frame tracks ``[M, 7]``."""
    tracker.reset()
    return [tracker.update(d) for d in frames]


def format_mot(tracks_per_frame: Iterable[np.ndarray], first_frame: int = 1) -> str:
    """Per-frame tracks ``[M, 7]`` -> MOTChallenge result lines ``frame,id,x,y,w,h,score,-1,-1,-1``."""
    lines = []
    for frame, tracks in enumerate(tracks_per_frame, first_frame):
        tracks = np.asarray(tracks).reshape(-1, 7)
        for (x, y, w, h), score, tid in zip(xyxy_to_xywh(tracks[:, :4]), tracks[:, 4], tracks[:, 6]):
            lines.append(f"{frame},{int(tid)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{score:.4f},-1,-1,-1")
    return "\n".join(lines) + ("\n" if lines else "")


def write_mot(path: str | Path, tracks_per_frame: Iterable[np.ndarray], first_frame: int = 1) -> Path:
    """Write :func:`format_mot` lines to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, format_mot(tracks_per_frame, first_frame))
    return path
