"""COCO instances JSON, read through pycocotools, and written back.

Category ids in COCO are sparse (1..90 with gaps for the 80 classes); yolokit's labels are contiguous.
The mapping is the rank of the category id: ``index_to_cat_id = sorted(category ids)`` and
``cat_id_to_index = {id: rank}`` -- both kept on the dataset, so detections map back to COCO ids for
pycocotools. COCO ``bbox`` is ``[x, y, w, h]`` in continuous pixels (no +1), converted to xyxy here.
``iscrowd=1`` boxes are kept with their flag (evaluation needs them; the train pipeline drops them).
VOC's ``difficult`` has no COCO field: the writer adds ``"difficult": 1`` to such annotations (pycocotools
ignores unknown keys) and the reader honours it, so VOC -> COCO -> VOC keeps the flag.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np

from yolokit.data.images import probe_image
from yolokit.data.sample import ProblemReport, Record, empty_record, sanitize_boxes
from yolokit.errors import DataError


def load_json(path: Path) -> dict:
    """``json.load`` with errors that name the file, line and column."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: annotation file not found") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from exc


_REQUIRED = {"images": ("id", "file_name"), "annotations": ("id", "image_id", "category_id", "bbox"),
             "categories": ("id", "name")}


def coco_from_json(path: Path, report: ProblemReport):
    """A ``pycocotools.coco.COCO`` built from ``path``; records missing required keys are reported
    (named by list and position) and left out instead of crashing pycocotools."""
    from pycocotools.coco import COCO

    data = load_json(path)
    if not isinstance(data, dict) or "images" not in data or "categories" not in data:
        raise DataError(f"{path}: not a COCO instances file (needs 'images' and 'categories' lists)")
    data.setdefault("annotations", [])
    for key, fields in _REQUIRED.items():
        good = []
        for i, rec in enumerate(data[key]):
            missing = [f for f in fields if not isinstance(rec, dict) or f not in rec]
            if not missing and key == "annotations" and not (isinstance(rec["bbox"], list) and len(rec["bbox"]) == 4):
                missing = ["bbox as [x, y, w, h]"]
            if missing:
                report.add(path, "malformed", f"{key}[{i}] lacks {', '.join(missing)} (record skipped)")
            else:
                good.append(rec)
        data[key] = good
    image_ids = {im["id"] for im in data["images"]}
    orphans = [a for a in data["annotations"] if a["image_id"] not in image_ids]
    for a in orphans:
        report.add(path, "label_without_image", f"annotation id {a['id']} refers to image id {a['image_id']}, "
                                                "which the file does not list")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress
        coco.createIndex()
    return coco


def read_coco(annotations: Path, images: Path, ids: list[str] | None, report: ProblemReport,
              check_images: bool = True):
    """Read a COCO split. ``ids`` restricts to these file names/stems. Returns
    ``(records, class_names, coco, index_to_cat_id)``."""
    coco = coco_from_json(annotations, report)
    cat_ids = sorted(coco.cats)
    names = [coco.cats[c]["name"] for c in cat_ids]
    cat_index = {c: i for i, c in enumerate(cat_ids)}
    wanted = None if ids is None else {Path(s).stem for s in ids}

    records = []
    for img_id in sorted(coco.imgs):
        info = coco.imgs[img_id]
        image = images / info["file_name"]
        if wanted is not None and image.stem not in wanted:
            continue
        size = (int(info.get("height", 0)), int(info.get("width", 0)))
        if check_images:
            real, bad, detail = probe_image(image)
            if bad:
                report.add(image, bad, detail + (" " if detail else "") + f"(image id {img_id} in {annotations.name})")
                continue
            if real != size:
                if size != (0, 0):
                    report.add(annotations, "size_mismatch", f"image id {img_id} '{info['file_name']}': JSON says "
                                                             f"{size[1]}x{size[0]}, file is {real[1]}x{real[0]}")
                size = real
        anns = coco.imgToAnns.get(img_id, [])
        if not anns:
            report.add(image, "background", f"no annotations for image id {img_id} in {annotations.name}")
            records.append(empty_record(image, img_id, size, annotations))
            continue
        boxes, labels, crowd, diff, what = [], [], [], [], []
        for a in anns:
            if a["category_id"] not in cat_index:
                report.add(annotations, "unknown_class",
                           f"annotation id {a['id']}: category_id {a['category_id']} is not in 'categories'")
                continue
            x, y, w, h = (float(v) for v in a["bbox"])
            boxes.append([x, y, x + w, y + h])  # COCO xywh -> xyxy
            labels.append(cat_index[a["category_id"]])
            crowd.append(bool(a.get("iscrowd", 0)))
            diff.append(bool(a.get("difficult", 0)))  # not COCO; written by yolokit so VOC round-trips
            what.append(f"annotation id {a['id']} ({info['file_name']})")
        boxes, keep = sanitize_boxes(np.asarray(boxes, np.float64), size, annotations, report, what)
        records.append(Record(image, img_id, size, boxes[keep], np.asarray(labels, np.int64)[keep],
                              np.asarray(diff, bool)[keep], np.asarray(crowd, bool)[keep], annotations))
    return records, names, coco, cat_ids


def records_to_coco(records: list[Record], names: list[str], cat_ids: list[int] | None = None) -> dict:
    """A COCO instances dict for ``records``. ``cat_ids[i]`` is the category id of class ``i``
    (default ``i + 1``). Image ids are kept where they are ints, otherwise numbered from 1."""
    cat_ids = list(cat_ids) if cat_ids is not None else list(range(1, len(names) + 1))
    images, anns = [], []
    int_ids = all(isinstance(r.image_id, (int, np.integer)) for r in records)
    for k, r in enumerate(records):
        img_id = int(r.image_id) if int_ids else k + 1
        images.append({"id": img_id, "file_name": r.path.name, "height": int(r.size[0]), "width": int(r.size[1])})
        for box, label, crowd, diff in zip(r.boxes, r.labels, r.iscrowd, r.difficult):
            x1, y1, x2, y2 = (float(v) for v in box)
            ann = {"id": len(anns) + 1, "image_id": img_id, "category_id": cat_ids[int(label)],
                   "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                   "iscrowd": int(bool(crowd)), "segmentation": []}
            if diff:
                ann["difficult"] = 1  # an extra key (pycocotools ignores it) so VOC -> COCO -> VOC is lossless
            anns.append(ann)
    cats = [{"id": c, "name": n, "supercategory": ""} for c, n in zip(cat_ids, names)]
    return {"info": {"description": "written by yolokit convert"}, "images": images,
            "annotations": anns, "categories": cats}
