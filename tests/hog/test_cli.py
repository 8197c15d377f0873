"""``yolokit hog train`` / ``yolokit hog detect`` end to end on a few real images, and the people reference."""

import json

import pytest

from yolokit.cli import main


@pytest.fixture(scope="module")
def tiny_yaml(shared, tmp_path_factory):
    d = tmp_path_factory.mktemp("hogdata")
    names = ["raccoon-1.jpg", "raccoon-10.jpg", "raccoon-100.jpg", "raccoon-105.jpg", "raccoon-108.jpg"]
    (d / "list.txt").write_text("\n".join(names) + "\n")
    root = shared / "raccoon"
    (d / "data.yaml").write_text(
        f"format: voc\nroot: {root}\nnames: [raccoon]\n"
        f"splits:\n  train:\n    images: images\n    annotations: annotations\n    list: {d / 'list.txt'}\n")
    return d / "data.yaml"


def test_train_then_detect(tiny_yaml, shared, tmp_path, capsys):
    model = tmp_path / "m.npz"
    assert main(["hog", "train", "--data", str(tiny_yaml), "--out", str(model), "--imgsz", "160",
                 "--inner", "32", "--rounds", "1"]) == 0
    assert model.exists()
    image = shared / "raccoon" / "images" / "raccoon-1.jpg"
    out = tmp_path / "det"
    assert main(["hog", "detect", str(image), "--model", str(model), "--out", str(out), "--save-json",
                 "--conf", "0.01", "--no-progress"]) == 0
    assert (out / image.name).exists()                                   # annotated copy, same name
    results = json.loads(next(out.glob("*.json")).read_text())
    assert results and all(0 <= r["score"] <= 1 for r in results)
    assert len({r["category_id"] for r in results}) == 1                  # a one-class detector


def test_train_refuses_an_unknown_class(tiny_yaml, tmp_path, capsys):
    assert main(["hog", "train", "--data", str(tiny_yaml), "--out", str(tmp_path / "m.npz"),
                 "--class", "zebra"]) == 2
    assert "zebra" in capsys.readouterr().err


def test_detect_reports_a_bad_model_file(shared, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    image = shared / "raccoon" / "images" / "raccoon-1.jpg"
    assert main(["hog", "detect", str(image), "--model", str(bad), "--no-save", "--no-progress"]) == 2
    assert "bad.npz" in capsys.readouterr().err


def test_people_detector_finds_the_person(shared):
    import cv2
    import torch

    from yolokit.hog.people import PeopleDetector

    image = cv2.imread(str(shared / "yolo_fastest_darknet" / "data" / "person.jpg"))
    image = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    dets = PeopleDetector(scale=1.1).predict(image, conf=0.5)[0]
    assert dets.shape[1] == 6 and len(dets) >= 1
    assert torch.all(dets[:, 5] == 0) and torch.all(dets[:-1, 4] >= dets[1:, 4])
    # the person as yolo-fastest-1.1_body finds it (REFERENCE_OPENCV_OUTPUTS.txt), in the halved image
    person = torch.tensor([[184.0, 98.4, 273.1, 375.0]]) / 2
    from yolokit.ops.boxes import box_iou

    assert box_iou(dets[:1, :4], person).item() > 0.4
