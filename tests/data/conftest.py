"""Hand-made bad data for the data tests (built in tmp_path from real images)."""

import shutil

import pytest


def _voc_xml(objects, size=(100, 200)):
    objs = "".join(f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                   f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b in objects)
    return f"<annotation><size><width>{size[1]}</width><height>{size[0]}</height></size>{objs}</annotation>"


@pytest.fixture
def bad_voc(tmp_path, shared):
    """A flat VOC folder with one of every problem, built from real raccoon images."""
    src = shared / "raccoon" / "images"
    img, ann = tmp_path / "images", tmp_path / "annotations"
    img.mkdir(), ann.mkdir()
    good = src / "raccoon-1.jpg"  # 650 x 417
    for name in ("ok", "clip", "zero", "unknown", "broken", "background"):
        shutil.copy(good, img / f"{name}.jpg")
    data = good.read_bytes()
    (img / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (img / "corrupt.jpg").write_bytes(b"not a jpeg at all")
    size = (417, 650)
    (ann / "ok.xml").write_text(_voc_xml([("raccoon", (1, 1, 650, 417))], size))
    (ann / "clip.xml").write_text(_voc_xml([("raccoon", (10, 10, 700, 400))], size))
    (ann / "zero.xml").write_text(_voc_xml([("raccoon", (10, 10, 9, 50)), ("raccoon", (5, 5, 50, 50))], size))
    (ann / "unknown.xml").write_text(_voc_xml([("dog", (5, 5, 50, 50))], size))
    (ann / "broken.xml").write_text("<annotation>\n<size>\n<width>650</width>\n</annotation>\n")
    (ann / "orphan.xml").write_text(_voc_xml([("raccoon", (5, 5, 50, 50))], size))
    for name in ("truncated", "corrupt"):
        (ann / f"{name}.xml").write_text(_voc_xml([("raccoon", (5, 5, 50, 50))], size))
    return tmp_path
