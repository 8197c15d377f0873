"""Reference numbers for the TIDE tests: tidecv 1.0.1 (test-only dependency) fed yolokit's arrays, and the
real detections the tests score (voc2012_rodm's; pretrained yolov3-tiny on coco128)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np


def tidecv_breakdown(gt, det, class_names) -> dict:
    """tidecv's AP and dAPs for yolokit :class:`GroundTruth` / :class:`Detections`, Data objects built
    directly (its COCO loader wants ``segmentation`` in every annotation). Difficult and crowd boxes
    are ignore regions of their class, as yolokit treats them."""
    from tidecv import TIDE, Data

    gd, pd = Data("gt", max_dets=100), Data("pred", max_dets=100)
    for c, n in enumerate(class_names):
        gd.add_class(c, n)
        pd.add_class(c, n)
    for i in range(gt.num_images):
        gd.add_image(i, str(gt.image_ids[i]))
    for b, c, im, ig in zip(gt.boxes, gt.labels, gt.image, gt.difficult | gt.iscrowd):
        xywh = [b[0], b[1], b[2] - b[0], b[3] - b[1]]
        (gd.add_ignore_region if ig else gd.add_ground_truth)(int(im), int(c), xywh)
    for b, s, c, im in zip(det.boxes, det.scores, det.labels, det.image):
        pd.add_detection(int(im), int(c), float(s), [b[0], b[1], b[2] - b[0], b[3] - b[1]])
    t = TIDE()
    with contextlib.redirect_stdout(io.StringIO()):
        run = t.evaluate(gd, pd, mode=TIDE.BOX)
        errors = t.get_all_errors()
    return {"ap": run.ap, "main": errors["main"]["pred"], "special": errors["special"]["pred"],
            "counts": {e.short_name: len(v) for e, v in run.error_dict.items()}}


def rodm_dataset(shared: Path):
    """voc2012_rodm (VOC XML, 38 difficult boxes) and its 452 detections, one (K, 6) per image."""
    from yolokit.data import load_dataset

    root = shared / "voc2012_rodm" / "data" / "database"
    spec = {"format": "voc", "root": str(root), "names": "voc.names",
            "splits": {"val": {"images": "images", "annotations": "gts/pascalvoc_format"}}}
    ds = load_dataset(spec, "val")
    dets = []
    for r in ds.records:
        f = root / "dets" / "abs_xyx2y2" / f"{r.path.stem}.txt"
        a = np.loadtxt(f, ndmin=2).reshape(-1, 6) if f.exists() else np.zeros((0, 6))
        # "<class> <score> xmin ymin xmax ymax" in VOC's 1-based pixels -> yolokit's xyxy
        dets.append(np.c_[a[:, 2] - 1, a[:, 3] - 1, a[:, 4], a[:, 5], a[:, 1], a[:, 0]])
    return ds, dets


def coco128_dataset(shared: Path):
    """coco128 (COCO JSON, 10 crowd boxes), straight from ../shared (no dataset YAML)."""
    from yolokit.data import load_dataset

    spec = {"format": "coco", "root": str(shared / "coco128_cocojson"),
            "splits": {"val": {"images": "val2017", "annotations": "annotations/instances_val2017.json"}}}
    return load_dataset(spec, "val")


def yolov3_tiny_detections(shared: Path, ds) -> list:
    """Pretrained yolov3-tiny (Darknet weights) on ``ds``, eval thresholds (conf 0.001, NMS IoU 0.6)."""
    import yolokit
    from yolokit.eval import predict_dataset

    d = shared / "yolov3_tiny_darknet"
    model = yolokit.load(d / "yolov3-tiny.cfg", d / "yolov3-tiny.weights", device="cpu")
    return predict_dataset(lambda images: model.predict(images, conf=0.001, iou=0.6), ds, batch_size=8)
