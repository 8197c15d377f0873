"""The one sample contract shared by every adapter, and the problem report.

A :class:`Sample` is what ``dataset[i]`` returns, whatever the file format was:

* ``image``      -- ``uint8`` RGB array ``[H, W, 3]``;
* ``boxes``      -- ``float32 [N, 4]`` xyxy in absolute pixels of ``image`` (yolokit's one box convention);
* ``labels``     -- ``int64 [N]`` contiguous class indices into ``dataset.class_names``;
* ``difficult``  -- ``bool [N]`` (VOC's flag; all False for COCO and YOLO txt);
* ``iscrowd``    -- ``bool [N]`` (COCO's flag; all False for VOC and YOLO txt);
* ``image_id``   -- the COCO image id (int) or the file stem (str) for VOC / YOLO txt;
* ``path``       -- the image file;
* ``orig_size``  -- ``(height, width)`` of the image as stored on disk.

A :class:`Record` is the same thing before the image is decoded: the adapters build records once
(parsing every annotation and reading every image header), so a dataset knows all of its boxes and
image sizes without decoding a pixel -- ``check``, ``convert``, ``split`` and ``anchors`` work on records.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Sample:
    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    image_id: int | str
    path: Path
    orig_size: tuple[int, int]
    difficult: np.ndarray
    iscrowd: np.ndarray


@dataclass
class Record:
    """One image's annotations, before decoding. ``size`` is ``(height, width)``.

    Boxes are kept in float64 here (float32 in :class:`Sample`) so that conversions reproduce the
    source's digits: COCO's two-decimal pixels survive a trip through normalised YOLO txt.
    """

    path: Path
    image_id: int | str
    size: tuple[int, int]
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    iscrowd: np.ndarray
    annotation: Path | None = None  # the file the boxes came from (None: background image)

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        n = len(self.boxes)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(n)
        self.difficult = np.asarray(self.difficult, dtype=bool).reshape(n)
        self.iscrowd = np.asarray(self.iscrowd, dtype=bool).reshape(n)


def empty_record(path: Path, image_id, size, annotation=None) -> Record:
    return Record(path, image_id, size, np.zeros((0, 4), np.float64), np.zeros(0, np.int64),
                  np.zeros(0, bool), np.zeros(0, bool), annotation)


# Problem kinds. "background" and "clipped" are notices (the data is still used); the others mean
# something was dropped: a whole image (missing/corrupt/truncated, label without image, bad file) or a box.
KINDS = {
    "missing_image": "image file missing (record skipped)",
    "corrupt_image": "image cannot be decoded (record skipped)",
    "truncated_image": "image file truncated (record skipped)",
    "oversized_image": "image over the decompression-bomb limit (record skipped)",
    "label_without_image": "label file has no image (skipped)",
    "background": "image without label (kept as a background image)",
    "clipped_box": "box extends outside the image (clipped)",
    "zero_area_box": "box has zero area (dropped)",
    "unknown_class": "unknown class (box dropped)",
    "malformed": "malformed annotation file (skipped)",
    "bad_record": "bad annotation record (skipped)",
    "bad_number": "NaN or infinite number (box dropped)",
    "duplicate_id": "duplicate id (records dropped)",
    "size_mismatch": "annotated image size differs from the image file (file size used)",
}


@dataclass
class Problem:
    """One thing wrong with the data. ``file`` names it; ``problem`` says what and what was done."""

    file: str
    problem: str
    kind: str

    def as_dict(self) -> dict:
        return {"file": self.file, "problem": self.problem}


@dataclass
class ProblemReport:
    """Every problem found while reading a dataset; nothing is skipped without an entry here."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, file, kind: str, detail: str = "") -> None:
        assert kind in KINDS, kind
        text = KINDS[kind] + (f": {detail}" if detail else "")
        self.problems.append(Problem(str(file), text, kind))

    def extend(self, other: "ProblemReport") -> None:
        self.problems.extend(other.problems)

    def counts(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems))

    def __len__(self) -> int:
        return len(self.problems)

    def __iter__(self):
        return iter(self.problems)

    def summary(self) -> str:
        """One line, e.g. ``2 label_without_image, 2 background (first: FILE: WHAT)``; ``no problems`` when
        clean. The first problem that drops data is named, so every command's one-line report points at a file
        and record (``yolokit check`` lists them all)."""
        c = self.counts()
        if not c:
            return "no problems"
        text = ", ".join(f"{n} {k}" for k, n in sorted(c.items()))
        first = next((p for p in self.problems if p.kind not in ("background", "clipped_box")), None)
        return text + (f" (first: {first.file}: {first.problem})" if first is not None else "")


CLIP_TOLERANCE = 0.01  # pixels


def sanitize_boxes(boxes: np.ndarray, size: tuple[int, int], file, report: ProblemReport,
                   what: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Clip xyxy ``boxes [N,4]`` to an image of ``size = (h, w)``; returns ``(clipped, keep)``.

    Every clipped box is reported as ``clipped_box`` and every box without area (before or after
    clipping) as ``zero_area_box``; ``keep [N]`` is False for the latter. ``what[i]`` names box ``i`` in
    the report (e.g. ``object 2 'dog'``).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    names = what if what is not None else [f"box {i}" for i in range(len(boxes))]
    # NaN/inf first: a NaN compares False with everything, so it would pass the area test and be "clipped"
    # into a box made of NaNs. It is a bad record, dropped and named, never repaired.
    finite = np.isfinite(boxes).all(axis=1)
    for i in np.flatnonzero(~finite):
        report.add(file, "bad_number", f"{names[i]} {_fmt(boxes[i])}")
    boxes = np.where(finite[:, None], boxes, 0.0)
    h, w = size
    limit = np.array([w, h, w, h], np.float64)
    clipped = np.clip(boxes, 0, limit)
    # Overshoots below CLIP_TOLERANCE px are rounding noise of normalised 6-decimal labels (YOLO txt):
    # clipped without a report. Anything larger is a real out-of-bounds box and is reported.
    boxes = np.where(np.abs(boxes - clipped) <= CLIP_TOLERANCE, clipped, boxes)
    zero = finite & ((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
                     | (clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1]))
    moved = finite & ~zero & (boxes != clipped).any(axis=1)
    for i in np.flatnonzero(zero | moved):  # loops over the bad boxes only, to name each one
        if zero[i]:
            report.add(file, "zero_area_box", f"{names[i]} {_fmt(boxes[i])} in a {w}x{h} image")
        else:
            report.add(file, "clipped_box",
                       f"{names[i]} {_fmt(boxes[i])} -> {_fmt(clipped[i])} ({w}x{h} image)")
    keep = finite & ~zero
    return clipped, keep


def _fmt(box) -> str:
    return "(" + ", ".join(f"{v:g}" for v in box) + ")"
