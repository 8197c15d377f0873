"""Reference numbers for the TIDE tests: tidecv 1.0.1 (test-only dependency) fed yolokit's arrays (the adapter is
the eval bench's, where tidecv is the timed peer), and the real detections the tests score (voc2012_rodm's;
pretrained yolov3-tiny on coco128)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.eval import tidecv_breakdown  # noqa: F401  (re-exported for the tests)


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
