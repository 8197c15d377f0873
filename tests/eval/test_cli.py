"""``yolokit eval`` end to end: --data/--format ground truth, --pred JSON, --model, --json."""

import json
from pathlib import Path

import pytest

from tests.eval.refs import rodm_coco_reference
from tests.eval.test_coco import direct_pycocotools
from yolokit.cli import main
from yolokit.eval import STAT_NAMES

ROOT = "voc2012_rodm/data/database"
REPO = Path(__file__).resolve().parents[2]


def run_json(capsys, *argv):
    assert main(["eval", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_format_coco_with_pred_json(shared, capsys, tmp_path):
    db = shared / ROOT
    m = run_json(capsys, "--format", "coco", "--images", db / "images",
                 "--annotations", db / "gts/coco_format_v1/instances_default.json",
                 "--pred", db / "dets/coco_format/coco_dets.json", "--save-pred", tmp_path / "res.json")
    ref = rodm_coco_reference(shared / "voc2012_rodm" / "REFERENCE_RESULTS.txt", "2b")
    assert {k: round(v, 6) for k, v in m["coco"].items()} == ref
    assert set(m) >= {"voc07", "voc", "coco", "per_class"}
    # --save-pred wrote a plain COCO results list that pycocotools scores identically
    res = json.loads((tmp_path / "res.json").read_text())
    assert len(res) == 452 and set(res[0]) == {"image_id", "category_id", "bbox", "score"}
    assert direct_pycocotools(db / "gts/coco_format_v1/instances_default.json", res) == m["coco"]


def test_data_yaml_voc_and_yolo_forms_agree(shared, capsys):
    db = shared / ROOT
    pred = db / "dets/coco_format/coco_dets.json"
    voc = run_json(capsys, "--data", REPO / "configs/data/voc2012_rodm.yaml", "--pred", pred, "--metrics", "voc")
    yolo = run_json(capsys, "--format", "yolo", "--images", db / "images",
                    "--annotations", db / "gts/yolo_format/obj_train_data",
                    "--names", db / "gts/yolo_format/obj.names", "--pred", pred, "--metrics", "voc")
    assert voc["objects"] == yolo["objects"] == 273
    assert voc["detections"] == yolo["detections"] == 452
    # YOLO txt has no difficult flag (all 273 boxes count) and other class order: per-class counts differ
    assert sum(r["n_gt"] for r in voc["per_class"].values()) == 273 - 38
    assert sum(r["n_gt"] for r in yolo["per_class"].values()) == 273
    assert 0.3 < yolo["voc"] < 0.9 and 0.3 < voc["voc"] < 0.9


def test_table_output_and_plots(shared, capsys, tmp_path):
    pred = shared / ROOT / "dets/coco_format/coco_dets.json"
    assert main(["eval", "--data", str(REPO / "configs/data/voc2012_rodm.yaml"), "--pred", str(pred),
                 "--out", str(tmp_path), "--plots", "--pixel-offset", "1"]) == 0
    out = capsys.readouterr().out
    assert "VOC2010+ all-point mAP@0.5" in out and "+1 pixel" in out and "aeroplane" in out
    assert (tmp_path / "confusion_matrix.png").is_file() and (tmp_path / "pr" / "pr_curves.png").is_file()


def test_usage_errors_exit_2(capsys, tmp_path):
    assert main(["eval", "--pred", str(tmp_path / "x.json")]) == 2
    assert "ground truth needed" in capsys.readouterr().err


@pytest.mark.slow
def test_pretrained_yolov3_tiny_on_coco128_equals_pycocotools(shared, capsys, tmp_path):
    net = shared / "yolov3_tiny_darknet"
    m = run_json(capsys, "--data", REPO / "configs/data/coco128.yaml", "--model", net / "yolov3-tiny.cfg",
                 "--weights", net / "yolov3-tiny.weights", "--metrics", "coco", "--save-pred", tmp_path / "pred.json")
    direct = direct_pycocotools(shared / "coco128_cocojson/annotations/instances_val2017.json",
                                str(tmp_path / "pred.json"))
    assert m["coco"] == direct  # exactly pycocotools' numbers
    assert 0.05 < m["coco"]["AP"] < m["coco"]["AP50"]  # a working COCO model, not noise
    assert set(m["coco"]) == set(STAT_NAMES)


@pytest.mark.slow
def test_model_with_tta_hook(shared, capsys, tmp_path):
    names = sorted(p.name for p in (shared / "coco128_cocojson/val2017").glob("*.jpg"))[:3]
    (tmp_path / "list.txt").write_text("\n".join(names))
    (tmp_path / "data.yaml").write_text(
        f"format: coco\nroot: {shared / 'coco128_cocojson'}\nsplits:\n  val:\n    images: val2017\n"
        f"    annotations: annotations/instances_val2017.json\n    list: {tmp_path / 'list.txt'}\n")
    net = shared / "yolov3_tiny_darknet"
    args = ["--data", tmp_path / "data.yaml", "--model", net / "yolov3-tiny.cfg", "--weights", net / "yolov3-tiny.weights",
            "--metrics", "coco,voc", "--imgsz", 320]
    plain = run_json(capsys, *args)
    tta = run_json(capsys, *args, "--tta")
    assert plain["images"] == tta["images"] == 3
    assert tta["detections"] != plain["detections"]  # the TTA predict_fn ran (more views, other boxes)
    assert tta["coco"]["AP50"] > 0.2 and plain["coco"]["AP50"] > 0.2
