"""``yolokit convert`` on real data: VOC -> COCO -> VOC is lossless; COCO -> YOLO txt reproduces coco128_yolo."""

from pathlib import Path

import numpy as np

from yolokit.cli import main
from yolokit.data import load_dataset
from yolokit.data.voc import parse_voc_xml

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


def test_voc_to_coco_to_voc_is_lossless(shared, tmp_path):
    assert main(["convert", str(CONFIGS / "voc2012_rodm.yaml"), "--to", "coco", "--out", str(tmp_path / "coco")]) == 0
    coco = load_dataset(tmp_path / "coco" / "data.yaml", "val")
    assert len(coco) == 100 and coco.num_boxes == 273 and len(coco.problems) == 0
    assert main(["convert", str(tmp_path / "coco" / "data.yaml"), "--to", "voc", "--out", str(tmp_path / "voc")]) == 0
    src = shared / "voc2012_rodm" / "data" / "database" / "gts" / "pascalvoc_format"
    xmls = sorted(src.glob("*.xml"))
    assert len(xmls) == 100
    for xml in xmls:  # the XML files themselves, integers and all: names, boxes, difficult, size, file name
        a, b = parse_voc_xml(xml), parse_voc_xml(tmp_path / "voc" / "Annotations" / xml.name)
        assert (a["filename"], a["size"]) == (b["filename"], b["size"])
        assert a["objects"] == b["objects"], xml.name
    assert (tmp_path / "voc" / "Annotations" / "2007_000027.xml").read_text().count("<xmin>174</xmin>") == 1
    back = load_dataset(tmp_path / "voc" / "data.yaml", "val")
    assert back.class_names == load_dataset(CONFIGS / "voc2012_rodm.yaml", "val").class_names


def _rows(path: Path) -> np.ndarray:
    return np.array([[float(v) for v in ln.split()] for ln in path.read_text().splitlines() if ln.strip()]).reshape(-1, 5)


def test_coco128_json_to_yolo_reproduces_coco128_yolo(shared, tmp_path, capsys):
    assert main(["convert", str(CONFIGS / "coco128.yaml"), "--split", "train", "--to", "yolo",
                 "--out", str(tmp_path)]) == 0
    assert "10 iscrowd boxes left out" in capsys.readouterr().out
    ours = {p.name: p for p in (tmp_path / "labels" / "train").glob("*.txt")}
    theirs = {p.name: p for p in (shared / "coco128_yolo" / "object_detection" / "labels" / "train2017").glob("*.txt")}
    # Their two orphan label files have no image (and so no COCO record); our two extra files are the
    # background images, written empty.
    assert set(theirs) - set(ours) == {"000000000656.txt", "000000000659.txt"}
    assert set(ours) - set(theirs) == {"000000000250.txt", "000000000508.txt"}
    assert all(ours[n].read_text() == "" for n in set(ours) - set(theirs))
    for name in set(ours) & set(theirs):  # 126 files, 929 lines, same order
        a, b = _rows(ours[name]), _rows(theirs[name])
        assert a.shape == b.shape, name
        np.testing.assert_array_equal(a[:, 0], b[:, 0])
        np.testing.assert_allclose(a[:, 1:], b[:, 1:], atol=1.5e-6, rtol=0)  # both print 6 significant digits
    assert sum(len(_rows(ours[n])) for n in ours) == 929
    names = (tmp_path / "names.txt").read_text().split("\n")
    assert names[0] == "person" and names[79] == "toothbrush"
    again = load_dataset(tmp_path / "data.yaml", "train")
    assert len(again) == 128 and again.num_boxes == 929 and len(again.problems) == 0
