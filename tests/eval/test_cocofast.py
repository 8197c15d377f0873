"""The vectorised COCOeval gives pycocotools' arrays bit for bit (``==``, not approx)."""

import contextlib
import copy
import io
import json

import numpy as np
import pytest

from yolokit.eval.cocofast import COCOevalVectorised


def run_both(gt, results, img_ids=None):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out = []
    for cls in (COCOeval, COCOevalVectorised):
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(gt)) if not isinstance(gt, dict) else COCO()
            if isinstance(gt, dict):
                coco.dataset = copy.deepcopy(gt)
                coco.createIndex()
            ev = cls(coco, coco.loadRes(copy.deepcopy(results)), "bbox")
            if img_ids is not None:
                ev.params.imgIds = img_ids
            ev.evaluate(); ev.accumulate(); ev.summarize()
        out.append(ev)
    return out


def assert_identical(stock, ours):
    for key in ("precision", "recall", "scores"):
        assert np.array_equal(stock.eval[key], ours.eval[key]), key
    assert np.array_equal(stock.stats, ours.stats)


def synthetic(seed, n_img=40, n_cat=4, crowd_p=0.2, max_dets=150):
    """GT with crowd boxes, duplicate boxes (IoU ties), segmentation-like areas; detections with tied
    scores, wrong classes, images without GT and groups with more than 100 detections."""
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": 200, "height": 200} for i in range(n_img)]
    anns, res = [], []
    for im in images:
        n = int(rng.integers(0, 12))
        mine = []
        for _ in range(n):
            b = (list(anns[-1]["bbox"]) if mine and rng.random() < 0.15
                 else [*rng.integers(0, 150, 2).astype(float), *rng.integers(1, 80, 2).astype(float)])
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": int(rng.integers(1, n_cat + 1)),
                         "bbox": b, "area": float(b[2] * b[3] * rng.uniform(0.4, 1.0)),
                         "iscrowd": int(rng.random() < crowd_p)})
            mine.append(anns[-1])
        for _ in range(int(rng.integers(0, max_dets))):
            if mine and rng.random() < 0.5:
                g = mine[int(rng.integers(0, len(mine)))]
                b = [v + rng.normal(0, 3) for v in g["bbox"]]
                b[2], b[3] = max(b[2], 0.5), max(b[3], 0.5)
                c = g["category_id"] if rng.random() < 0.9 else int(rng.integers(1, n_cat + 1))
            else:
                b = [*rng.uniform(0, 180, 2), *rng.uniform(1, 60, 2)]
                c = int(rng.integers(1, n_cat + 1))
            res.append({"image_id": im["id"], "category_id": c, "bbox": [float(v) for v in b],
                        "score": float(np.round(rng.random(), 2))})
    return {"images": images, "annotations": anns, "categories": [{"id": c} for c in range(1, n_cat + 1)]}, res


@pytest.mark.parametrize("seed", range(4))
def test_synthetic_identical(seed):
    gt, res = synthetic(seed, n_cat=1 if seed == 3 else 4)  # seed 3: >100 detections per group
    assert_identical(*run_both(gt, res))


def test_reference_set_identical(shared):
    root = shared / "voc2012_rodm" / "tests" / "test_coco_eval"
    assert_identical(*run_both(root / "gts" / "sampled_gts_bbox_area.json",
                               json.loads((root / "cocoapi_results.json").read_text())))


def test_coco128_with_crowds_identical(shared):
    path = shared / "coco128_cocojson" / "annotations" / "instances_val2017.json"
    gt = json.loads(path.read_text())
    assert any(a["iscrowd"] for a in gt["annotations"])
    rng = np.random.default_rng(0)
    res = []
    for a in gt["annotations"]:
        for _ in range(3):
            b = [v + rng.normal(0, 0.05 * max(a["bbox"][2], 1)) for v in a["bbox"]]
            res.append({"image_id": a["image_id"], "category_id": a["category_id"],
                        "bbox": [b[0], b[1], max(b[2], 1.0), max(b[3], 1.0)], "score": float(rng.random())})
    stock, ours = run_both(path, res)
    assert_identical(stock, ours)
    assert 0.2 < ours.stats[0] < 1


def test_image_subset_and_string_ids_identical():
    gt, res = synthetic(5)
    assert_identical(*run_both(gt, res, img_ids=[3, 1, 7, 12]))  # unsorted subset: pycocotools sorts it
    for im in gt["images"]:
        im["id"] = f"img{im['id']:03d}"
    for a in gt["annotations"] + res:
        a["image_id"] = f"img{a['image_id']:03d}"
    assert_identical(*run_both(gt, res))


def test_empty_detections_identical():
    gt, _ = synthetic(7)
    res = [{"image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 5.0, 5.0], "score": 0.5}]
    assert_identical(*run_both(gt, res))
