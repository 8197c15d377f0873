"""What :func:`yolokit.eval.evaluate` takes, read into one form: the ground truth (a dataset, records or a
:class:`GroundTruth`), detections (per-image arrays, :class:`Detections`, a COCO results list or file) and the
category ids that map a results file's classes; :func:`save_detections` writes them back as COCO results."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from yolokit.errors import DataError
from yolokit.eval.coco import COCO80_TO_91, coco_image_ids, detections_to_coco, save_coco_results
from yolokit.eval.voc import Detections, GroundTruth
from yolokit.ops.boxes_np import xywh_to_xyxy


def ground_truth_from(source) -> GroundTruth:
    """A :class:`GroundTruth` from a dataset (its annotation records: no image is decoded), a list of
    samples/records, or a GroundTruth (returned as is)."""
    if isinstance(source, GroundTruth):
        return source
    return GroundTruth.from_samples(getattr(source, "records", source))


CATEGORY_MODES = ("zero", "one", "coco91")


def default_category_ids(class_names: Sequence[str], dataset=None) -> list[int]:
    """COCO category id of each contiguous class: the dataset's own ids for COCO files; COCO's 91-id
    space for an 80-class COCO-named dataset (coco.names order, "person" first); else 1..C."""
    ids = getattr(dataset, "index_to_cat_id", None)
    if ids is not None:
        return list(ids)
    if len(class_names) == 80 and class_names[0] == "person":
        return list(COCO80_TO_91)
    return list(range(1, len(class_names) + 1))


def category_ids_for(mode, n: int) -> list[int]:
    """An explicit id space: "zero" (0..C-1), "one" (1..C), "coco91" (80 classes), or a list."""
    if not isinstance(mode, str):
        return [int(c) for c in mode]
    if mode == "zero":
        return list(range(n))
    if mode == "one":
        return list(range(1, n + 1))
    if mode == "coco91":
        if n != 80:
            raise DataError(f"category ids 'coco91' need 80 classes, the dataset has {n}")
        return list(COCO80_TO_91)
    raise DataError(f"unknown category id mode {mode!r}: expected one of {CATEGORY_MODES} or a list")


def detections_from_coco(results, gt: GroundTruth, class_names: Sequence[str],
                         category_ids: Sequence[int] | None = None, source: str = "detections") -> tuple[Detections, dict]:
    """Detections from a COCO results list (``loadRes`` format) or a COCO dict with ``images``,
    ``categories`` and scored ``annotations`` (matched to the ground truth by file name and category name).

    Returns ``(detections, skipped)``; ``skipped`` counts records left out ``{"unknown_image": n,
    "unknown_category": n}`` -- images outside this split, classes the dataset does not have."""
    img_lookup: dict = {}
    for k, (iid, cid) in enumerate(zip(gt.image_ids, coco_image_ids(gt.image_ids))):
        img_lookup[cid] = k
        img_lookup[iid] = k
    cat_lookup: dict
    if isinstance(results, dict):  # a dataset-style dict: ids are its own, names are the link
        try:
            by_name = {Path(f).name: k for k, f in enumerate(getattr(gt, "files", None) or [])}
            by_stem = {Path(str(i)).stem: k for k, i in enumerate(gt.image_ids)}
            img_lookup = {}
            for im in results["images"]:
                k = by_name.get(Path(im["file_name"]).name, by_stem.get(Path(im["file_name"]).stem))
                if k is not None:
                    img_lookup[im["id"]] = k
            name_to_label = {n: i for i, n in enumerate(class_names)}
            cat_lookup = {c["id"]: name_to_label[c["name"]] for c in results["categories"] if c["name"] in name_to_label}
            records = results["annotations"]
        except (KeyError, TypeError) as exc:
            raise DataError(f"{source}: a COCO dict needs images (id, file_name), categories (id, name) "
                            f"and annotations; missing {exc}") from exc
    else:
        records = results
        if category_ids is None:
            category_ids = infer_category_ids({r.get("category_id") for r in records}, class_names, source)
        cat_lookup = {int(c): i for i, c in enumerate(category_ids)}
    boxes, scores, labels, image = [], [], [], []
    skipped = {"unknown_image": 0, "unknown_category": 0}
    for n, r in enumerate(records):
        try:
            k = img_lookup.get(r["image_id"])
            c = cat_lookup.get(r["category_id"])
            if not all(_is_number(v) for v in (*r["bbox"], r["score"])):
                raise TypeError(f"bbox {r['bbox']!r} and score {r['score']!r} must be JSON numbers")
            x, y, w, h = (float(v) for v in r["bbox"])
            s = float(r["score"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: record {n}: expected image_id, category_id, bbox [x, y, w, h] "
                            f"and score ({exc})") from exc
        # a NaN score sorts anywhere and a negative-size box matches nothing: bad records, never scored
        finite = all(map(math.isfinite, (x, y, w, h, s)))
        if not finite or w < 0 or h < 0:
            why = "a NaN or infinite number" if not finite else "a negative width or height"
            raise DataError(f"{source}: record {n} (image_id {r['image_id']!r}) has {why}: "
                            f"bbox {r['bbox']}, score {r['score']!r}")
        if k is None:
            skipped["unknown_image"] += 1
            continue
        if c is None:
            skipped["unknown_category"] += 1
            continue
        boxes.append((x, y, w, h))
        scores.append(s)
        labels.append(c)
        image.append(k)
    boxes = xywh_to_xyxy(np.asarray(boxes, np.float64).reshape(-1, 4))  # COCO xywh -> xyxy at the edge
    return Detections(boxes, scores, labels, image), skipped


def _is_number(v) -> bool:
    """A JSON number (int or float), not a string that looks like one, nor a bool."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def infer_category_ids(seen: set, class_names: Sequence[str], source: str = "detections") -> list[int]:
    """Which id space a results file uses, from the ids it contains: 0-based when it has a 0; COCO's
    91 ids for an 80-class dataset when they all fit; else 1-based. Pass ``category_ids`` explicitly
    (CLI ``--category-ids``) where a file is ambiguous, e.g. 0-based without any class-0 detection."""
    seen = {int(s) for s in seen if s is not None}
    n = len(class_names)
    if 0 in seen and seen <= set(range(n)):
        return list(range(n))
    if n == 80 and seen <= set(COCO80_TO_91):
        return list(COCO80_TO_91)
    if seen <= set(range(1, n + 1)):
        return list(range(1, n + 1))
    raise DataError(f"{source}: category ids {sorted(seen)[:10]} fit neither 0..{n - 1}, 1..{n}"
                    + (" nor COCO's 91-id space" if n == 80 else "") + f" for {n} classes")


def _load_results(detections):
    """A results path is read here; anything else is returned as is."""
    if isinstance(detections, (str, Path)):
        from yolokit.fileio import load_json, read_bytes

        # a regular file; nesting 200,000 deep or a 5,000-digit id is one line, not a traceback
        try:
            data = load_json(read_bytes(detections, "detections JSON", 4 << 30), str(detections))
        except DataError as exc:
            raise DataError(f"{detections}: cannot read detections JSON ({str(exc).split(': ', 1)[-1]})") from None
        if not (isinstance(data, dict) or (isinstance(data, list) and all(isinstance(r, dict) for r in data))):
            raise DataError(f"{detections}: expected a COCO results list [{{image_id, category_id, bbox, score}}, "
                            f"...] or a COCO dict, got {type(data).__name__} {str(data)[:40]}")
        for n, r in enumerate(data if isinstance(data, list) else ()):
            if not isinstance(r.get("category_id"), int) or isinstance(r.get("category_id"), bool):
                raise DataError(f"{detections}: record {n}: category_id must be an integer, "
                                f"got {r.get('category_id')!r}")
        return data, str(detections)
    return detections, "detections"


def _is_results_list(detections) -> bool:
    return isinstance(detections, list) and bool(detections) and isinstance(detections[0], dict)


def _as_detections(detections, gt: GroundTruth, class_names, category_ids, source="detections"):
    if isinstance(detections, Detections):
        return detections, {}
    if isinstance(detections, dict) or _is_results_list(detections):
        return detections_from_coco(detections, gt, class_names, category_ids, source)
    dets = list(detections)
    if not dets:  # an empty results list: nothing detected
        return Detections(np.zeros((0, 4)), [], [], []), {}
    if len(dets) != gt.num_images:
        raise DataError(f"{source}: {len(dets)} per-image detection tensors for {gt.num_images} images")
    return Detections.from_lists(dets), {}


def _resolve_category_ids(category_ids, dataset, detections, class_names, source) -> list[int]:
    """Explicit ids/mode > the COCO dataset's own ids > the id space a results list uses > default."""
    if category_ids is not None:
        return category_ids_for(category_ids, len(class_names))
    if getattr(dataset, "index_to_cat_id", None) is not None:
        return list(dataset.index_to_cat_id)
    if _is_results_list(detections):
        return infer_category_ids({r.get("category_id") for r in detections}, class_names, source)
    return default_category_ids(class_names)


def _coco_view_ids(dataset, read_ids) -> list[int]:
    """Category ids of the COCO view (scoring, export): a COCO dataset's own, else those the input used
    (so an exported results file reads back the same way)."""
    ids = getattr(dataset, "index_to_cat_id", None)
    return list(ids) if ids is not None else list(read_ids)


def ground_truth_and_names(gt, class_names) -> tuple[GroundTruth, list[str]]:
    """The flat ground truth and one name per class (the dataset's, else ``"0"``, ``"1"``, ... up to the
    largest label)."""
    class_names = list(class_names if class_names is not None else getattr(gt, "class_names", []))
    g = ground_truth_from(gt)
    if not class_names:
        class_names = [str(c) for c in range(int(max(g.labels.max(initial=-1), 0)) + 1)]
    return g, class_names


def read_detections(detections, g: GroundTruth, dataset, class_names: list[str], category_ids):
    """``(Detections, skipped counts, COCO-view category ids)`` from any form :func:`evaluate` takes; a
    detection of a class outside ``class_names`` is counted as ``unknown_category`` and left out."""
    detections, source = _load_results(detections)
    read_ids = _resolve_category_ids(category_ids, dataset, detections, class_names, source)
    det, skipped = _as_detections(detections, g, class_names, read_ids, source)
    out_of_range = (det.labels < 0) | (det.labels >= len(class_names))
    if out_of_range.any():
        skipped["unknown_category"] = skipped.get("unknown_category", 0) + int(out_of_range.sum())
        det = det.filter(~out_of_range)
    return det, skipped, _coco_view_ids(dataset, read_ids)


def save_detections(gt, detections, path: str | Path, class_names: Sequence[str] | None = None,
                    category_ids: Sequence[int] | None = None) -> Path:
    """Write ``detections`` (any form :func:`evaluate` takes) as a COCO results JSON for the images of
    ``gt``, with the same image and category ids :func:`evaluate` scores with."""
    dataset = None if isinstance(gt, (GroundTruth, list)) else gt
    class_names = list(class_names if class_names is not None else getattr(gt, "class_names", []))
    g = ground_truth_from(gt)
    detections, source = _load_results(detections)
    read_ids = _resolve_category_ids(category_ids, dataset, detections, class_names, source)
    det, _ = _as_detections(detections, g, class_names, read_ids, source)
    category_ids = _coco_view_ids(dataset, read_ids)
    det = det.filter((det.labels >= 0) & (det.labels < len(category_ids)))
    return save_coco_results(path, detections_to_coco(det, coco_image_ids(g.image_ids), category_ids))
