"""Explaining the AP: F1-optimal class thresholds (and detect's use of them), COCO analysis bands,
per-image drill-down and worst-image drawings, `yolokit eval --tide/--analysis/--worst`."""

import json

import numpy as np
import pytest
import torch

from tests.eval.tide_ref import rodm_dataset
from yolokit.cli import main
from yolokit.errors import DataError
from yolokit.eval import Detections, evaluate, voc_evaluate
from yolokit.eval.drilldown import drilldown, render_worst
from yolokit.eval.inputs import ground_truth_from
from yolokit.eval.thresholds import (ClassThresholdPredictor, f1_optimal_thresholds, filter_by_class,
                                     load_class_thresholds)
from yolokit.eval.tide import tide


@pytest.fixture(scope="module")
def rodm(shared):
    ds, dets = rodm_dataset(shared)
    return ds, dets, ground_truth_from(ds), Detections.from_lists(dets)


def test_f1_optimal_threshold_is_the_best_of_every_threshold(rodm):
    ds, _, gt, det = rodm
    voc = voc_evaluate(gt, det, 20)
    th = f1_optimal_thresholds(voc, ds.class_names)["per_class"]
    checked = 0
    for c, name in enumerate(ds.class_names):
        row = th[name]
        if row["conf"] is None:
            continue
        # brute force: F1 at every distinct score of the class, from the plain precision/recall at a threshold
        best = max((voc.precision_recall_at(s)["per_class_f1"][c], s) for s in np.unique(voc.curves[c].scores)
                   if not np.isnan(voc.precision_recall_at(s)["per_class_f1"][c]))
        at = voc.precision_recall_at(row["conf"])
        assert row["f1"] == pytest.approx(best[0]), name
        assert row["precision"] == pytest.approx(at["per_class_precision"][c])
        assert row["recall"] == pytest.approx(at["per_class_recall"][c])
        checked += 1
    assert checked >= 15


def test_class_thresholds_file_filter_and_predictor(tmp_path):
    names = ["cat", "dog", "bird"]
    metrics = {"thresholds": {"per_class": {"cat": {"conf": 0.6}, "dog": {"conf": None}, "bird": {"conf": 0.3}}}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    thr = load_class_thresholds(tmp_path / "metrics.json", names, default=0.25)
    assert thr.tolist() == [0.6, 0.25, 0.3]  # dog has no threshold: --conf
    (tmp_path / "plain.json").write_text(json.dumps({"dog": 0.9}))
    assert load_class_thresholds(tmp_path / "plain.json", names, 0.25).tolist() == [0.25, 0.9, 0.25]
    (tmp_path / "other.json").write_text(json.dumps({"car": 0.9}))
    with pytest.raises(DataError, match="none of its classes"):
        load_class_thresholds(tmp_path / "other.json", names, 0.25)

    dets = torch.tensor([[0, 0, 1, 1, 0.5, 0], [0, 0, 1, 1, 0.7, 0], [0, 0, 1, 1, 0.3, 1],
                         [0, 0, 1, 1, 0.31, 2], [0, 0, 1, 1, 0.2, 2], [0, 0, 1, 1, 0.01, 7]])
    kept = filter_by_class(dets, thr)
    assert kept[:, 4].tolist() == pytest.approx([0.7, 0.3, 0.31, 0.01])  # class 7 is beyond the table: kept
    assert np.array_equal(filter_by_class(dets.numpy(), thr), kept.numpy())

    class Fake:  # the Predictor surface the pipeline uses
        conf = 0.5

        def __call__(self, images):
            return [dets]

        def postprocess(self, pred, batch):
            return [dets, dets[:0]]

    fake = Fake()
    p = ClassThresholdPredictor(fake, thr)
    assert fake.conf == 0.25  # the NMS runs at the lowest class threshold
    assert len(p(None)[0]) == 4 and [len(d) for d in p.postprocess(None, None)] == [4, 0]


def test_analysis_bands_match_coco_and_are_ordered(rodm, tmp_path):
    ds, dets, _, _ = rodm
    m = evaluate(ds, dets, analysis=True, save_dir=tmp_path)
    bands = m["analysis"]["overall"]
    # the C75 / C50 bands are pycocotools' AP75 / AP50 (same matching, same class average)
    assert bands["C75"] == pytest.approx(m["coco"]["AP75"], abs=1e-4)
    assert bands["C50"] == pytest.approx(m["coco"]["AP50"], abs=1e-4)
    values = [bands[k] for k in ("C75", "C50", "Loc", "Sim", "Oth", "BG", "FN")]
    assert values == sorted(values) and values[-1] == 1.0 and values[2] > values[1]
    assert len(m["analysis"]["per_class"]) == 20
    assert (tmp_path / "analysis" / "overall.png").stat().st_size > 20_000
    assert (tmp_path / "analysis" / "class_person.png").stat().st_size > 10_000


def test_drilldown_counts_and_worst_images(rodm, tmp_path):
    import cv2

    ds, dets, gt, det = rodm
    rep = drilldown(gt, det, conf=0.3, num_classes=20)
    t = rep["totals"]
    sub = tide(gt, det.filter(det.scores >= 0.3), num_classes=20)
    assert t["TP"] == sub.counts["TP"] and t["FP"] == sub.counts["FP"]
    assert t["TP"] + t["FN"] == t["gt"] == 273 - 38  # difficult boxes are ignore regions
    assert t["FP"] == sum(t[k] for k in ("Cls", "Loc", "Both", "Dupe", "Bkg"))
    assert len(rep["outcome"]) == len(det) and rep["outcome"].count("dropped") == int((det.scores < 0.3).sum())
    errs = [r["errors"] for r in rep["images"]]
    assert errs == sorted(errs, reverse=True) and errs[0] > 0
    paths = render_worst(gt, det, ds.class_names, tmp_path / "worst", 3, conf=0.3)
    assert len(paths) == 3 and paths[0].name.startswith(f"01_{errs[0]}err_")
    image = cv2.imread(str(paths[0]))
    assert image is not None and image.shape[0] > 46 + 300  # the image below a legend strip


def test_cli_tide_json_and_files(shared, capsys, tmp_path):
    db = shared / "voc2012_rodm" / "data" / "database"
    argv = ["eval", "--format", "voc", "--images", db / "images", "--annotations", db / "gts/pascalvoc_format",
            "--names", db / "voc.names", "--pred", db / "dets/coco_format/coco_dets.json", "--metrics", "voc",
            "--tide", "--worst", "2", "--out", tmp_path, "--json"]
    assert main([str(a) for a in argv]) == 0
    m = json.loads(capsys.readouterr().out)
    assert set(m["tide"]["main"]) == {"Cls", "Loc", "Both", "Dupe", "Bkg", "Miss"}
    assert set(m["tide"]["special"]) == {"FalsePos", "FalseNeg"}
    assert m["tide"]["main"]["Bkg"] > m["tide"]["main"]["Dupe"]
    assert json.loads((tmp_path / "metrics.json").read_text())["thresholds"]["per_class"]["person"]["conf"] > 0
    assert len(list((tmp_path / "worst").glob("*.png"))) == 2 and (tmp_path / "drilldown.json").is_file()
    assert main(["eval", "--format", "voc", "--images", str(db / "images"), "--annotations",
                 str(db / "gts/pascalvoc_format"), "--names", str(db / "voc.names"), "--pred",
                 str(db / "dets/coco_format/coco_dets.json"), "--worst", "2"]) == 2  # needs --out


def test_detect_conf_file_end_to_end(shared, tmp_path):
    """`yolokit detect --conf-file`: the NMS runs at the lowest class threshold, each class keeps its own."""
    d = shared / "yolov3_tiny_darknet"
    (tmp_path / "thr.json").write_text(json.dumps({"dog": 0.01, "bicycle": 0.9, "car": 0.9, "truck": 0.9}))
    argv = ["detect", shared / "yolo_fastest_darknet" / "data" / "dog.jpg", "--model", d / "yolov3-tiny.cfg",
            "--weights", d / "yolov3-tiny.weights", "--conf", "0.5", "--save-json", "--no-save",
            "--out", tmp_path / "out", "--no-progress"]
    assert main([str(a) for a in argv]) == 0
    plain = json.loads((tmp_path / "out" / "dog.json").read_text())
    assert {r["category_id"] for r in plain} >= {2, 18}  # bicycle and dog at --conf 0.5 (COCO ids)
    # a second run into a folder holding a run goes to out2 (run folders never mix)
    assert main([str(a) for a in argv] + ["--conf-file", str(tmp_path / "thr.json")]) == 0
    per_class = json.loads((tmp_path / "out2" / "dog.json").read_text())
    assert {r["category_id"] for r in per_class} == {18}  # bicycle/car/truck need 0.9 now
    assert min(r["score"] for r in per_class) < 0.5  # dog's 0.01 reaches below --conf
    assert all(r["score"] >= 0.01 for r in per_class)
