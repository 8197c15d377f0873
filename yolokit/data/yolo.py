"""YOLO txt labels: one ``<class> <cx> <cy> <w> <h>`` line per box, normalised to [0, 1] by the image size.

Where the labels are: the split's ``labels`` folder (``<labels>/<image stem>.txt``) when given, else the
Ultralytics/Darknet rule -- the image path with its last ``images`` folder replaced by ``labels`` and the
suffix by ``.txt``. A missing label file means a background image (reported, kept); an empty one is an
explicit background and not a problem. Lines with more than 5 numbers are polygons (Ultralytics
segments): their bounding box is used. Class names come from the data YAML (``names``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from yolokit.data.images import checked_size, is_image, probe_image
from yolokit.data.sample import ProblemReport, Record, empty_record, sanitize_boxes

#: Without a names list, class indices are the names: a bound keeps a stray "1000000000" from becoming a
#: billion-name list (15 GB). With names, the names are the bound.
MAX_UNNAMED_CLASSES = 10_000
MAX_LABEL_BYTES = 64 << 20
from yolokit.ops.boxes_np import cxcywh_to_xyxy, xyxy_to_cxcywh


def label_path_for(image: Path, labels: Path | None) -> Path:
    if labels is not None:
        return labels / (image.stem + ".txt")
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def parse_yolo_txt(path: Path, report: ProblemReport) -> list[tuple[int, list[float], int]]:
    """``[(class, [cx, cy, w, h] normalised, line_number), ...]``; bad lines are reported and skipped."""
    from yolokit.errors import DataError
    from yolokit.fileio import read_bytes

    out = []
    try:
        raw = read_bytes(path, "label file", MAX_LABEL_BYTES)  # not a FIFO or /dev/zero; bounded
    except DataError as exc:
        report.add(path, "malformed", str(exc).split(": ", 1)[-1])
        return out
    for n, bline in enumerate(raw.splitlines(), start=1):
        try:
            line = bline.decode("utf-8")
        except UnicodeDecodeError as exc:
            report.add(path, "bad_record", f"line {n}: not UTF-8 text (byte {bline[exc.start]:#04x} at column "
                                           f"{exc.start + 1})")
            continue
        tok = line.split()
        if not tok:
            continue
        try:
            vals = [float(t) for t in tok]
        except ValueError:
            report.add(path, "bad_record", f"line {n}: expected numbers '<class> <cx> <cy> <w> <h>', got {line!r}")
            continue
        if not all(math.isfinite(v) for v in vals):
            report.add(path, "bad_number", f"line {n}: NaN or infinite value in {line.strip()!r}")
            continue
        if len(vals) == 5:
            cls, box = vals[0], vals[1:]
        elif len(vals) >= 7 and len(vals) % 2 == 1:  # class + polygon x1 y1 x2 y2 ...
            xs, ys = vals[1::2], vals[2::2]
            cls = vals[0]
            box = [(min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys)]
        else:
            report.add(path, "bad_record", f"line {n}: expected 5 values '<class> <cx> <cy> <w> <h>', got {len(vals)}")
            continue
        if cls != int(cls) or cls < 0:
            report.add(path, "bad_record", f"line {n}: class must be a non-negative integer, got {tok[0]!r}")
            continue
        out.append((int(cls), box, n))
    return out


def read_yolo(images: Path | list[Path], labels: Path | None, names: list[str] | None, report: ProblemReport,
              check_images: bool = True) -> tuple[list[Record], list[str]]:
    """Read a YOLO-txt split. ``images``: a folder (every image in it) or a list of image paths.

    ``names`` None: classes are named by their index ("0" .. max index found), and unknown class
    indices cannot be detected. Returns ``(records, names)``."""
    nc = len(names) if names is not None else None
    top = -1
    if isinstance(images, Path):
        files = sorted(p for p in images.iterdir() if is_image(p)) if images.is_dir() else []
        image_dir = images
    else:
        files, image_dir = list(images), None
    records = []
    seen_labels = set()
    for image in files:
        lab = label_path_for(image, labels)
        seen_labels.add(lab.name)
        size = checked_size(image, report) if check_images else probe_image(image)[0] or (0, 0)
        if size is None:
            continue
        if not lab.is_file():
            report.add(image, "background", f"no label file {lab}")
            records.append(empty_record(image, image.stem, size))
            continue
        lines = parse_yolo_txt(lab, report)
        h, w = size
        boxes, cls_ids, what = [], [], []
        for cls, (cx, cy, bw, bh), n in lines:
            if nc is not None and cls >= nc:
                report.add(lab, "unknown_class", f"line {n}: class {cls} but only {nc} names")
                continue
            if nc is None and cls >= MAX_UNNAMED_CLASSES:
                report.add(lab, "unknown_class", f"line {n}: class {cls} with no names list (without 'names:' "
                                                 f"class ids must be below {MAX_UNNAMED_CLASSES})")
                continue
            top = max(top, cls)
            boxes.append([cx, cy, bw, bh])
            cls_ids.append(cls)
            what.append(f"line {n}")
        boxes = cxcywh_to_xyxy(np.asarray(boxes, np.float64).reshape(-1, 4)) * (w, h, w, h)  # normalised -> pixels
        boxes, keep = sanitize_boxes(boxes, size, lab, report, what)
        k = int(keep.sum())
        records.append(Record(image, image.stem, size, boxes[keep], np.asarray(cls_ids, np.int64)[keep],
                              np.zeros(k, bool), np.zeros(k, bool), lab))
    # Orphan label files: only knowable when the images are a folder and the labels folder is known.
    label_dir = labels if labels is not None else (label_path_for(image_dir / "x.jpg", None).parent
                                                  if image_dir is not None else None)
    if label_dir is not None and label_dir.is_dir():
        for lab in sorted(label_dir.glob("*.txt")):
            if lab.name not in seen_labels and lab.name != "classes.txt":
                report.add(lab, "label_without_image", f"no image '{lab.stem}.*' in {image_dir}")
    return records, (list(names) if names is not None else [str(i) for i in range(top + 1)])


def format_yolo_lines(record: Record) -> list[str]:
    """The label lines of one record, 6 significant digits (``%g``, as the common COCO->YOLO exports)."""
    h, w = record.size
    lines = []
    for (cx, cy, bw, bh), label in zip(xyxy_to_cxcywh(np.asarray(record.boxes, np.float64).reshape(-1, 4)),
                                       record.labels):
        lines.append(f"{int(label)} {cx / w:g} {cy / h:g} {bw / w:g} {bh / h:g}")
    return lines
