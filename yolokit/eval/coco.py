"""COCO metrics through pycocotools' ``COCOeval`` (the reference implementation, so the numbers are
pycocotools' numbers), plus the conversions at the edge: yolokit's xyxy detections <-> COCO results
JSON (``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]``, what ``COCO.loadRes`` takes).

Backends: ``"pycocotools"`` (default) is the stock ``COCOeval``; ``"faster"`` is faster-coco-eval's C++
``COCOeval_faster`` when that package is installed (``pip install "yolokit[coco-fast]"``), several times faster
and equal to pycocotools' stats to ~1e-16. yolokit does not re-implement COCOeval: the well-kept libraries do it.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from yolokit.errors import DataError
from yolokit.eval.voc import Detections, GroundTruth
from yolokit.fileio import write_text_atomic
from yolokit.ops.boxes_np import xyxy_to_xywh

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")

# The 80 contiguous COCO classes (coco.names order) -> the 91-id space of the COCO annotation files.
COCO80_TO_91 = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57,
    58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87,
    88, 89, 90,
)


def coco_image_ids(image_ids: Sequence) -> list[int]:
    """Integer COCO image ids for a dataset's ``image_ids``: kept when they are all integers (COCO
    files); the numbers of all-digit file stems (``000000000009`` -> 9, as COCO-derived YOLO datasets
    and other tools' results files use them) when those are unique; else 1..N in dataset order."""
    if all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in image_ids):
        return [int(i) for i in image_ids]
    stems = [str(i) for i in image_ids]
    if stems and all(s.isdigit() for s in stems) and len({int(s) for s in stems}) == len(stems):
        return [int(s) for s in stems]
    return list(range(1, len(image_ids) + 1))


def detections_to_coco(det: Detections, image_ids: Sequence[int | str], category_ids: Sequence[int],
                       box_decimals: int | None = None, score_decimals: int | None = None) -> list[dict]:
    """COCO results list: ``image_ids[det.image]`` (ints, or strings such as a file stem), ``category_ids[
    det.labels]``, bbox as COCO ``[x, y, w, h]`` pixels (converted from xyxy here, at the edge), each number
    rounded to ``box_decimals`` / ``score_decimals`` when given (a smaller file for ``yolokit detect``)."""
    ids = [i if isinstance(i, str) else int(i) for i in image_ids]
    cat = np.asarray(category_ids, dtype=np.int64)[det.labels]

    def rnd(v: float, decimals: int | None) -> float:
        return float(v) if decimals is None else round(float(v), decimals)

    xywh = xyxy_to_xywh(det.boxes)
    return [{"image_id": ids[i], "category_id": int(c), "bbox": [rnd(v, box_decimals) for v in b],
             "score": rnd(s, score_decimals)}
            for i, c, b, s in zip(det.image.tolist(), cat.tolist(), xywh, det.scores.tolist())]


def save_coco_results(path: str | Path, results: list[dict]) -> Path:
    """Write a COCO results list as JSON (readable by ``COCO.loadRes``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(results))
    return path


def ground_truth_to_coco(gt: GroundTruth, category_ids: Sequence[int], class_names: Sequence[str],
                         image_ids: Sequence[int] | None = None) -> dict:
    """A COCO instances dict for ``gt``. COCO has no ``difficult``: such boxes count as ordinary
    objects (as on a COCO export of VOC); ``iscrowd`` is kept. ``area`` is the annotation's area when
    known (COCO files: the segmentation area, which decides small/medium/large), else the box area."""
    image_ids = coco_image_ids(gt.image_ids) if image_ids is None else list(image_ids)
    sizes = gt.sizes if gt.sizes is not None else np.zeros((len(image_ids), 2), np.int64)
    images = [{"id": int(i), "height": int(h), "width": int(w)} for i, (h, w) in zip(image_ids, sizes.tolist())]
    xywh = xyxy_to_xywh(gt.boxes)
    area = gt.area if gt.area is not None else xywh[:, 2] * xywh[:, 3]
    cats = np.asarray(category_ids, dtype=np.int64)
    anns = [{"id": k + 1,  # pycocotools treats id 0 as "unmatched": ids start at 1
             "image_id": int(image_ids[i]), "category_id": int(cats[c]), "bbox": [float(v) for v in b],
             "area": float(a), "iscrowd": int(crowd)}
            for k, (i, c, b, a, crowd) in enumerate(zip(gt.image.tolist(), gt.labels.tolist(), xywh,
                                                        np.asarray(area).tolist(), gt.iscrowd.tolist()))]
    categories = [{"id": int(c), "name": str(n)} for c, n in zip(category_ids, class_names)]
    return {"images": images, "annotations": anns, "categories": categories}


@dataclass
class CocoResult:
    """``stats``: the 12 ``COCOeval.stats`` by name (AP, AP50, ..., ARl; -1 where undefined);
    ``per_category``: {category_id: {"AP": .., "AP50": ..}}; ``summary``: pycocotools' printout."""

    stats: dict
    per_category: dict = field(default_factory=dict)
    summary: str = ""
    backend: str = "pycocotools"


def _quiet(fn, *args, **kwargs):
    """Call a pycocotools function without its prints; return (result, captured text)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        out = fn(*args, **kwargs)
    return out, buf.getvalue()


def load_coco(source, backend: str = "pycocotools"):
    """A COCO ground-truth object from a path, a dict, or an existing COCO object."""
    coco_cls = _backend(backend)[0]
    if isinstance(source, (str, Path)):
        path = Path(source)
        from yolokit.fileio import load_json, read_bytes

        data = load_json(read_bytes(path, "COCO annotation JSON", 4 << 30), str(path))  # any depth/digits: one line
        source = data
    if not isinstance(source, dict) and not isinstance(source, coco_cls):
        source = source.dataset  # a COCO object of the other backend: rebuild from its dict
    if isinstance(source, dict):
        coco = coco_cls()
        coco.dataset = source
        _quiet(coco.createIndex)
        return coco
    return source


BACKENDS = ("pycocotools", "faster")


def _backend(name: str):
    if name == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        return COCO, COCOeval
    if name == "faster":
        try:
            from faster_coco_eval import COCO, COCOeval_faster
        except ImportError as exc:
            raise DataError("COCO backend 'faster' needs faster-coco-eval: pip install faster-coco-eval") from exc
        return COCO, COCOeval_faster
    raise DataError(f"unknown COCO backend {name!r}: expected one of {BACKENDS}")


def coco_evaluate(coco_gt, results: list[dict], max_dets: int = 100, backend: str = "pycocotools",
                  image_ids: Sequence[int] | None = None) -> CocoResult:
    """Run COCOeval (bbox) on ``coco_gt`` (path, dict or COCO object) and a results list.

    ``max_dets`` is the last of COCO's maxDets (1, 10, max_dets), the one AP uses. ``image_ids``
    restricts the evaluation (default: every image of the ground truth)."""
    coco_cls, eval_cls = _backend(backend)
    gt = load_coco(coco_gt, backend)
    if results:
        known = set(gt.getImgIds())
        unknown = {r["image_id"] for r in results} - known
        if unknown:
            raise DataError(f"detections refer to {len(unknown)} image ids absent from the ground truth "
                            f"(e.g. {sorted(unknown)[:3]}); expected ids of the annotation file's images")
        dt = _quiet(gt.loadRes, [dict(r) for r in results])[0]  # loadRes adds keys: give it copies
    else:  # loadRes cannot take an empty list; an empty result set scores 0 where there is ground truth
        dt = coco_cls()
        dt.dataset = {"images": gt.dataset["images"], "categories": gt.dataset.get("categories", []),
                      "annotations": []}
        _quiet(dt.createIndex)
    if backend == "faster":
        ev = eval_cls(gt, dt, "bbox", print_function=print)
    else:
        ev = eval_cls(gt, dt, "bbox")
    ev.params.maxDets = [1, 10, max_dets]
    if image_ids is not None:
        ev.params.imgIds = list(image_ids)
    _, t1 = _quiet(ev.evaluate)
    _, t2 = _quiet(ev.accumulate)
    _, text = _quiet(ev.summarize)
    stats = {k: float(v) for k, v in zip(STAT_NAMES, ev.stats)}
    per_cat = {}
    precision = ev.eval["precision"]  # [T iou, R recall, K cat, A area, M maxdets]
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        p50 = precision[0, :, k, 0, -1]
        per_cat[int(cat_id)] = {"AP": float(p[p > -1].mean()) if (p > -1).any() else float("nan"),
                                "AP50": float(p50[p50 > -1].mean()) if (p50 > -1).any() else float("nan")}
    return CocoResult(stats=stats, per_category=per_cat, summary=text.strip(), backend=backend)
