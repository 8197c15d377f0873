"""Smoke test of ``yolokit bench tta`` on the raccoon val split with the pretrained COCO model (small input)."""

from pathlib import Path

import pytest

from yolokit.cli import main

RACCOON = Path(__file__).resolve().parents[2] / "configs" / "data" / "raccoon.yaml"


@pytest.mark.slow
def test_bench_tta_rows(shared, tmp_path):
    tiny = shared / "yolov3_tiny_darknet"
    md = tmp_path / "B.md"
    code = main(["bench", "tta", "--model", str(tiny / "yolov3-tiny.cfg"), "--weights", str(tiny / "yolov3-tiny.weights"),
                 "--data", str(RACCOON), "--imgsz", "128", "--write", str(md)])
    assert code == 0
    rows = [line for line in md.read_text().splitlines() if line.startswith("| ") and "ms/image" not in line]
    assert [r.split("|")[1].strip() for r in rows] == ["none", "flip, averaged (--tta)", "scales 1, 0.83, 0.67, union",
                                                       "flip + scales 1, 0.83, 0.67"]
    assert rows[0].split("|")[2].strip() == "1 (128)" and rows[1].split("|")[2].strip() == "2 (128)"
