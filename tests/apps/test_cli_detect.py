import json

import cv2
import pytest

from yolokit.cli import main


def model_args(tiny_dir):
    return ["--model", str(tiny_dir / "yolov3-tiny.cfg"), "--weights", str(tiny_dir / "yolov3-tiny.weights")]


def test_detect_directory_with_class_filter_and_json(tiny_dir, photos, tmp_path, capsys):
    code = main(["detect", str(photos), *model_args(tiny_dir), "--imgsz", "320", "--classes", "dog", "horse",
                 "--out", str(tmp_path), "--save-json", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    for stage in ("decode", "preprocess", "infer", "postprocess", "draw/encode", "FPS"):
        assert stage in out
    rows = json.loads((tmp_path / "data.json").read_text())
    names = {r["category_name"] for r in rows}
    assert names == {"dog", "horse"}                   # person.jpg's person and sheep are filtered out
    assert {r["category_id"] for r in rows} == {18, 19}  # COCO ids of dog and horse, as yolokit eval reads them
    assert {r["image_id"] for r in rows} <= {"dog", "horses", "person"}
    assert cv2.imread(str(tmp_path / "person.jpg")) is not None


def test_detect_several_sources_and_video(tiny_dir, photos, video02, tmp_path, capsys):
    code = main(["detect", str(photos / "dog.jpg"), str(video02), *model_args(tiny_dir), "--imgsz", "160",
                 "--max-frames", "3", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    assert (tmp_path / "dog.jpg").is_file() and (tmp_path / "video02.mp4").is_file()
    assert "video02: 3 frames" in capsys.readouterr().out


def test_detect_errors_are_one_line_exit_2(tiny_dir, photos, tmp_path, capsys):
    assert main(["detect", str(tmp_path / "nope.jpg"), *model_args(tiny_dir)]) == 2
    assert "nope.jpg: no such file" in capsys.readouterr().err
    # a real photo folder and a real model: only the size is wrong, and the message says so
    assert main(["detect", str(photos), *model_args(tiny_dir), "--imgsz", "300", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "yolokit detect: error: --imgsz 300: must be a positive multiple of 32 (the YOLO stride), " \
                  "e.g. 320, 416, 640"
    assert not any(tmp_path.iterdir())  # nothing was written


def test_unknown_class_name_is_an_error(tiny_dir, photos, capsys):
    assert main(["detect", str(photos), *model_args(tiny_dir), "--classes", "raccoon"]) == 2
    assert "unknown class 'raccoon'" in capsys.readouterr().err


def test_show_without_gui_is_a_clear_error(tiny_dir, photos, tmp_path, capsys):
    import pytest

    try:
        cv2.namedWindow("probe")
        cv2.destroyWindow("probe")
        pytest.skip("this OpenCV has a GUI")
    except cv2.error:
        pass
    assert main(["detect", str(photos / "dog.jpg"), *model_args(tiny_dir), "--show", "--out", str(tmp_path)]) == 2
    assert "--show needs an OpenCV build with a GUI" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--no-save"])
def test_no_save_still_writes_json(flag, tiny_dir, photos, tmp_path):
    code = main(["detect", str(photos / "dog.jpg"), *model_args(tiny_dir), "--imgsz", "160", flag,
                 "--save-json", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dog.json"]
