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
import math
from pathlib import Path

import numpy as np

from yolokit.data.images import checked_size
from yolokit.data.sample import ProblemReport, Record, empty_record, sanitize_boxes
from yolokit.errors import DataError
from yolokit.ops.boxes_np import xywh_to_xyxy, xyxy_to_xywh


def load_json(path: Path) -> dict:
    """``json.load`` with errors that name the file, line and column."""
    from yolokit.fileio import load_json as parse, read_bytes

    # a regular file (not /dev/zero, not a FIFO) of at most 4 GB; deep nesting and huge numbers are one line
    return parse(read_bytes(path, "annotation file", 4 << 30), str(path))


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _image_fault(im) -> str | None:
    """Why an ``images`` record cannot be used, or None. Ids are ints (or strings, as some exports write)."""
    if not isinstance(im, dict):
        return f"is a {type(im).__name__}, not an object"
    missing = [f for f in ("id", "file_name") if f not in im]
    if missing:
        return f"lacks {', '.join(missing)}"
    if not (_int(im["id"]) or isinstance(im["id"], str)):
        return f"id {im['id']!r} is not an integer"
    if not isinstance(im["file_name"], str) or not im["file_name"]:
        return f"file_name {im['file_name']!r} is not a file name"
    rel = Path(im["file_name"].replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or "\0" in im["file_name"]:
        return f"file_name {im['file_name'][:80]!r} points outside the images folder"
    for k in ("width", "height"):
        if k in im and not (_int(im[k]) and im[k] > 0):
            return f"{k} {im[k]!r} is not a positive integer"
    return None


def _annotation_fault(a) -> tuple[str, str] | None:
    """``(kind, why)`` an ``annotations`` record cannot be used, or None."""
    if not isinstance(a, dict):
        return "bad_record", f"is a {type(a).__name__}, not an object"
    missing = [f for f in ("id", "image_id", "category_id", "bbox") if f not in a]
    if missing:
        return "malformed", f"lacks {', '.join(missing)}"
    if not _int(a["id"]):
        return "bad_record", f"id {a['id']!r} is not an integer"
    if not (_int(a["image_id"]) or isinstance(a["image_id"], str)):
        return "bad_record", f"image_id {a['image_id']!r} is not an integer"
    if not _int(a["category_id"]):
        return "bad_record", f"category_id {a['category_id']!r} is not an integer"
    box = a["bbox"]
    if not (isinstance(box, list) and len(box) == 4):
        return "malformed", f"bbox {box!r} is not [x, y, w, h]"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        return "bad_record", f"bbox {box!r} holds a non-number"
    if not all(map(math.isfinite, box)):
        return "bad_number", f"bbox {box!r}"
    if "area" in a and not _finite(a["area"]):
        return "bad_number" if isinstance(a["area"], float) else "bad_record", f"area {a['area']!r}"
    if a.get("iscrowd", 0) not in (0, 1):  # True/False compare equal to 1/0
        return "bad_record", f"iscrowd {a['iscrowd']!r} is not 0 or 1"
    return None


def coco_from_json(path: Path, report: ProblemReport):
    """A ``pycocotools.coco.COCO`` built from ``path``. Every record pycocotools or the adapter cannot use is
    reported (named by list position and id) and left out instead of crashing or misleading pycocotools:
    missing keys, wrong types (a bbox of strings or nulls, an id that is a list, width ``"640px"``), NaN/inf
    numbers, and duplicate ids -- two images with one id make their boxes ambiguous (both are dropped, with
    their annotations); a repeated annotation id keeps its first record."""
    from pycocotools.coco import COCO

    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("categories"), list):
        raise DataError(f"{path}: not a COCO instances file (needs 'images' and 'categories' lists)")
    data.setdefault("annotations", [])
    if not isinstance(data["annotations"], list):
        raise DataError(f"{path}: 'annotations' must be a list, got {type(data['annotations']).__name__}")

    cats, cat_seen = [], set()
    for i, c in enumerate(data["categories"]):
        if not isinstance(c, dict) or not _int(c.get("id")) or not isinstance(c.get("name"), str):
            report.add(path, "bad_record", f"categories[{i}] {str(c)[:60]} needs an integer id and a string name "
                                           "(record skipped)")
        elif not c["name"].strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in c["name"]):
            report.add(path, "bad_record", f"categories[{i}]: name {c['name'][:40]!r} is empty or holds a line break/"
                                           "control character (record skipped)")
        elif c["id"] in cat_seen:
            report.add(path, "duplicate_id", f"categories[{i}]: category id {c['id']} repeated (later one dropped)")
        else:
            cat_seen.add(c["id"])
            cats.append(c)

    images, by_id = [], {}
    for i, im in enumerate(data["images"]):
        why = _image_fault(im)
        if why:
            report.add(path, "bad_record", f"images[{i}] {why} (record skipped)")
            continue
        by_id.setdefault(im["id"], []).append((i, im))
    dup_images = set()
    for img_id, recs in by_id.items():
        if len(recs) > 1:
            dup_images.add(img_id)
            where = ", ".join(f"images[{i}] '{im['file_name']}'" for i, im in recs)
            report.add(path, "duplicate_id", f"image id {img_id!r} is used by {where}: which file its boxes belong "
                                             "to is ambiguous (all dropped with their annotations)")
        else:
            images.append(recs[0][1])

    anns, ann_seen = [], {}
    image_ids = {im["id"] for im in images}
    for i, a in enumerate(data["annotations"]):
        fault = _annotation_fault(a)
        if fault:
            report.add(path, fault[0], f"annotations[{i}]" + (f" (id {a['id']!r})" if isinstance(a, dict) and
                                                               "id" in a else "") + f": {fault[1]} (record skipped)")
            continue
        if a["id"] in ann_seen:
            report.add(path, "duplicate_id", f"annotations[{i}]: annotation id {a['id']} already used by "
                                             f"annotations[{ann_seen[a['id']]}] (this one dropped)")
            continue
        ann_seen[a["id"]] = i
        if a["image_id"] in dup_images:
            continue  # reported with its duplicate image id
        if a["image_id"] not in image_ids:
            report.add(path, "label_without_image", f"annotation id {a['id']} refers to image id {a['image_id']!r}, "
                                                    "which the file does not list (or whose record was skipped)")
            continue
        anns.append(a)
    data.update(images=images, annotations=anns, categories=cats)
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
    for img_id in sorted(coco.imgs, key=lambda i: (isinstance(i, str), i)):  # int ids, then string ids
        info = coco.imgs[img_id]
        image = images / info["file_name"]
        if wanted is not None and image.stem not in wanted:
            continue
        size = (int(info.get("height", 0)), int(info.get("width", 0)))
        if check_images:
            real = checked_size(image, report, f"(image id {img_id} in {annotations.name})")
            if real is None:
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
            boxes.append([x, y, w, h])
            labels.append(cat_index[a["category_id"]])
            crowd.append(bool(a.get("iscrowd", 0)))
            diff.append(bool(a.get("difficult", 0)))  # not COCO; written by yolokit so VOC round-trips
            what.append(f"annotation id {a['id']} ({info['file_name']})")
        boxes = xywh_to_xyxy(np.asarray(boxes, np.float64).reshape(-1, 4))  # COCO xywh -> xyxy
        boxes, keep = sanitize_boxes(boxes, size, annotations, report, what)
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
        xywh = xyxy_to_xywh(np.asarray(r.boxes, np.float64).reshape(-1, 4)).tolist()
        for (x, y, w, h), label, crowd, diff in zip(xywh, r.labels, r.iscrowd, r.difficult):
            ann = {"id": len(anns) + 1, "image_id": img_id, "category_id": cat_ids[int(label)],
                   "bbox": [x, y, w, h], "area": w * h,
                   "iscrowd": int(bool(crowd)), "segmentation": []}
            if diff:
                ann["difficult"] = 1  # an extra key (pycocotools ignores it) so VOC -> COCO -> VOC is lossless
            anns.append(ann)
    cats = [{"id": c, "name": n, "supercategory": ""} for c, n in zip(cat_ids, names)]
    return {"info": {"description": "written by yolokit convert"}, "images": images,
            "annotations": anns, "categories": cats}
