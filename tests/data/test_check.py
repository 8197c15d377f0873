"""``yolokit check``: the JSON contract, exit codes and every problem with its file."""

import json
from pathlib import Path

from yolokit.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


def test_check_json_on_raccoon_is_clean(shared, capsys):
    assert main(["check", str(CONFIGS / "raccoon.yaml"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"images", "boxes", "per_class", "problems"}
    assert out == {"images": 200, "boxes": 217, "per_class": {"raccoon": 217}, "problems": []}


def test_check_paths_lists_every_problem(bad_voc, capsys):
    rc = main(["check", "--format", "voc", "--images", str(bad_voc / "images"),
               "--annotations", str(bad_voc / "annotations"), "--names", "raccoon,other", "--json"])
    assert rc == 1
    out = json.loads(capsys.readouterr().out)
    files = {Path(p["file"]).name for p in out["problems"]}
    assert files == {"clip.xml", "zero.xml", "unknown.xml", "broken.xml", "orphan.xml", "truncated.jpg",
                     "corrupt.jpg", "background.jpg"}
    assert all(set(p) == {"file", "problem"} for p in out["problems"])
    # ok (1) + clip (1) + zero (1 of 2 kept) + unknown (0) + background (0)
    assert out["images"] == 5 and out["boxes"] == 3 and out["per_class"] == {"raccoon": 3, "other": 0}


def test_check_malformed_json_names_file_and_line(tmp_path, capsys):
    (tmp_path / "i.json").write_text('{"images": [],\n "categories": [}\n')
    rc = main(["check", "--format", "coco", "--images", str(tmp_path), "--annotations", str(tmp_path / "i.json"),
               "--json"])
    assert rc == 1
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    assert problem["file"].endswith("i.json") and "2:" in problem["problem"] and "malformed JSON" in problem["problem"]


def test_check_text_table_has_splits(shared, capsys):
    assert main(["check", str(CONFIGS / "coco128_yolo.yaml"), "--no-decode"]) == 1  # 2 orphan label files
    text = capsys.readouterr().out
    assert "train" in text.splitlines()[0] and "val" in text.splitlines()[0]
    assert "000000000656.txt" in text and "000000000659.txt" in text
