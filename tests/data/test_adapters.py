"""The three adapters on real data (counts from each folder's PROVENANCE.txt) and on hand-made bad data."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from yolokit.data import load_dataset
from yolokit.errors import ConfigError, DataError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


def kinds(ds):
    return ds.problems.counts()


def test_raccoon_fixed_split_and_voc_pixel_convention(shared):
    train = load_dataset(CONFIGS / "raccoon.yaml", "train")
    val = load_dataset(CONFIGS / "raccoon.yaml", "val")
    assert (len(train), len(val)) == (160, 40)
    assert (train.num_boxes, val.num_boxes) == (173, 44)  # rows of train_labels.csv / test_labels.csv
    assert not {r.image_id for r in train.records} & {r.image_id for r in val.records}
    assert len(train.problems) == 0 and len(val.problems) == 0
    # raccoon-1.xml: <xmin>81</xmin><ymin>88</ymin><xmax>522</xmax><ymax>408</ymax> (1-based inclusive)
    ds = train if any(r.image_id == "raccoon-1" for r in train.records) else val
    i = [r.image_id for r in ds.records].index("raccoon-1")
    np.testing.assert_array_equal(ds.records[i].boxes, [[80, 87, 522, 408]])
    s = ds[i]
    np.testing.assert_array_equal(s.boxes, [[80, 87, 522, 408]])
    assert s.image.dtype == np.uint8 and s.image.shape == (417, 650, 3) and s.orig_size == (417, 650)
    assert s.labels.dtype == np.int64 and s.boxes.dtype == np.float32


def test_voc2012_difficult_and_class_counts(shared):
    ds = load_dataset(CONFIGS / "voc2012_rodm.yaml", "val")
    assert len(ds) == 100 and ds.num_boxes == 273
    assert sum(int(r.difficult.sum()) for r in ds.records) == 38
    pc = ds.per_class()
    assert pc["person"] == 91 and pc["cat"] == 5 and len(pc) == 20
    assert ds.class_names[0] == "aeroplane" and ds.class_names[19] == "tvmonitor"


def test_vocdevkit_layout_matches_flat_layout(shared):
    """The CVAT 'imagenet' export is an Annotations/ + ImageSets/Main/ tree with float coordinates."""
    base = shared / "voc2012_rodm" / "data" / "database"
    devkit = load_dataset({"format": "voc", "root": str(base / "gts" / "imagenet_format"),
                           "names": str(base / "voc.names"),
                           "splits": {"all": {"images": str(base / "images"),
                                              "list": "ImageSets/Main/default.txt"}}}, "all")
    flat = load_dataset(CONFIGS / "voc2012_rodm.yaml", "val")
    assert len(devkit) == 100 and len(devkit.problems) == 0
    by_id = {r.image_id: r for r in flat.records}
    for r in devkit.records:
        o = by_id[r.image_id]
        order_a, order_b = np.lexsort(r.boxes.T), np.lexsort(o.boxes.T)
        np.testing.assert_allclose(r.boxes[order_a], o.boxes[order_b])
        np.testing.assert_array_equal(r.labels[order_a], o.labels[order_b])


def test_coco128_category_mapping_both_ways(shared):
    ds = load_dataset(CONFIGS / "coco128.yaml", "train")
    assert len(ds) == 128 and ds.num_boxes == 939
    assert sum(int(r.iscrowd.sum()) for r in ds.records) == 10
    assert len(ds.class_names) == 80 and ds.class_names[0] == "person" and ds.class_names[79] == "toothbrush"
    assert ds.index_to_cat_id[79] == 90 and ds.cat_id_to_index[90] == 79
    for c, i in ds.cat_id_to_index.items():
        assert ds.index_to_cat_id[i] == c and ds.coco.cats[c]["name"] == ds.class_names[i]
    assert kinds(ds) == {"background": 2}
    assert {Path(p.file).name for p in ds.problems} == {"000000000250.jpg", "000000000508.jpg"}


def test_coco128_yolo_orphans_reported_and_boxes_equal_coco(shared):
    yolo = load_dataset(CONFIGS / "coco128_yolo.yaml", "train")
    coco = load_dataset(CONFIGS / "coco128.yaml", "train")
    assert len(yolo) == 128 and yolo.num_boxes == 929
    assert kinds(yolo) == {"background": 2, "label_without_image": 2}
    orphans = {Path(p.file).name for p in yolo.problems if p.kind == "label_without_image"}
    assert orphans == {"000000000656.txt", "000000000659.txt"}
    # Same images, same non-crowd boxes: class index = rank of the COCO category id.
    by_name = {r.path.name: r for r in coco.records}
    for r in yolo.records:
        c = by_name[r.path.name]
        keep = ~c.iscrowd
        assert len(r.boxes) == int(keep.sum())
        if len(r.boxes):
            dist = np.abs(r.boxes[:, None] - c.boxes[keep][None]).max(-1)  # [N, N] L-inf distance
            match = dist.argmin(1)
            assert dist.min(1).max() < 0.01 and len(set(match)) == len(match)
            np.testing.assert_array_equal(r.labels, c.labels[keep][match])


# ----------------------------------------------------------------------------- bad data
def test_every_voc_problem_is_named(bad_voc):
    spec = {"format": "voc", "root": str(bad_voc), "names": ["raccoon"],
            "splits": {"all": {"images": "images", "annotations": "annotations"}}}
    # headers only: a truncated JPEG has a fine header; its verdict comes from the decoder
    assert "truncated_image" not in kinds(load_dataset(spec, "all"))
    ds = load_dataset(spec, "all", decode=True)
    by_kind = {}
    for p in ds.problems:
        by_kind.setdefault(p.kind, []).append(Path(p.file).name)
    assert by_kind == {"clipped_box": ["clip.xml"], "zero_area_box": ["zero.xml"], "unknown_class": ["unknown.xml"],
                       "malformed": ["broken.xml"], "label_without_image": ["orphan.xml"],
                       "truncated_image": ["truncated.jpg"], "corrupt_image": ["corrupt.jpg"],
                       "background": ["background.jpg"]}
    malformed = next(p for p in ds.problems if p.kind == "malformed")
    assert "line 4" in malformed.problem  # </annotation> closes <size> on line 4
    recs = {r.image_id: r for r in ds.records}
    assert sorted(recs) == ["background", "clip", "ok", "unknown", "zero"]
    np.testing.assert_array_equal(recs["ok"].boxes, [[0, 0, 650, 417]])
    np.testing.assert_array_equal(recs["clip"].boxes, [[9, 9, 650, 400]])
    assert len(recs["zero"].boxes) == 1 and len(recs["unknown"].boxes) == 0


def test_malformed_coco_json_names_file_and_line(tmp_path):
    bad = tmp_path / "instances.json"
    bad.write_text('{\n  "images": [],\n  "categories": [,]\n}\n')
    with pytest.raises(DataError, match=r"instances.json:3:\d+: malformed JSON"):
        load_dataset({"format": "coco", "root": str(tmp_path),
                      "splits": {"val": {"images": ".", "annotations": "instances.json"}}}, "val")


def test_coco_bad_records_reported(tmp_path, shared):
    shutil.copy(shared / "raccoon" / "images" / "raccoon-1.jpg", tmp_path / "a.jpg")
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 650, "height": 417},
                       {"id": 2, "file_name": "missing.jpg", "width": 10, "height": 10}],
            "categories": [{"id": 7, "name": "raccoon"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [600, 10, 100, 10]},
                            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5]},
                            {"id": 3, "image_id": 9, "category_id": 7, "bbox": [1, 1, 5, 5]},
                            {"id": 4, "image_id": 1, "category_id": 7}]}
    (tmp_path / "i.json").write_text(json.dumps(data))
    ds = load_dataset({"format": "coco", "root": str(tmp_path),
                       "splits": {"val": {"images": ".", "annotations": "i.json"}}}, "val")
    assert kinds(ds) == {"clipped_box": 1, "unknown_class": 1, "label_without_image": 1, "malformed": 1,
                         "missing_image": 1}
    assert len(ds) == 1
    np.testing.assert_allclose(ds.records[0].boxes, [[600, 10, 650, 20]])
    assert ds.index_to_cat_id == [7]


def test_yolo_bad_lines(tmp_path, shared):
    (tmp_path / "images").mkdir(), (tmp_path / "labels").mkdir()
    shutil.copy(shared / "raccoon" / "images" / "raccoon-1.jpg", tmp_path / "images" / "a.jpg")
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.1\nx 0.5 0.5 0.1 0.1\n5 0.5 0.5 0.1 0.1\n"
                                               "0 0.95 0.5 0.2 0.2\n")
    ds = load_dataset({"format": "yolo", "root": str(tmp_path), "names": ["a", "b"],
                       "splits": {"train": {"images": "images"}}}, "train")  # labels found by images -> labels
    assert kinds(ds) == {"bad_record": 2, "unknown_class": 1, "clipped_box": 1}
    r = ds.records[0]
    np.testing.assert_allclose(r.boxes[0], [0.4 * 650, 0.4 * 417, 0.6 * 650, 0.6 * 417], rtol=1e-5)
    np.testing.assert_allclose(r.boxes[1], [0.85 * 650, 0.4 * 417, 650, 0.6 * 417], rtol=1e-5)


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        load_dataset({"format": "voc", "splits": {"a": {}}, "nmes": []}, "a")
    with pytest.raises(ConfigError, match="no split 'test'"):
        load_dataset(CONFIGS / "raccoon.yaml", "test")
    bad = tmp_path / "d.yaml"
    bad.write_text("format: voc\nsplits: [\n")
    with pytest.raises(ConfigError, match="d.yaml:3"):
        load_dataset(bad, "a")


def test_truncated_image_at_load_time_names_file(tmp_path, shared):
    """An image that goes bad after indexing still fails with its name, never a bare cv2 error."""
    shutil.copy(shared / "raccoon" / "images" / "raccoon-1.jpg", tmp_path / "a.jpg")
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    ds = load_dataset({"format": "yolo", "root": str(tmp_path), "names": ["a"],
                       "splits": {"t": {"images": ".", "labels": "."}}}, "t")
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "a.jpg").write_bytes(data[:-5000])
    with pytest.raises(DataError, match="a.jpg"):
        ds[0]


def test_ultralytics_data_yaml_is_read_as_is(shared, tmp_path):
    """``path/train/val/names`` YAML with the images -> labels folder rule (built with symlinks)."""
    src = shared / "coco128_yolo"
    (tmp_path / "images").mkdir(), (tmp_path / "labels").mkdir()
    (tmp_path / "images" / "train2017").symlink_to(src / "images" / "train2017")
    (tmp_path / "labels" / "train2017").symlink_to(src / "object_detection" / "labels" / "train2017")
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: images/train2017\n"
                                        f"names: {src / 'object_detection' / 'config.yaml'}\n")
    (tmp_path / "inline.yaml").write_text("path: .\ntrain: images/train2017\nnames: {0: person, 1: bicycle}\n")
    ds = load_dataset(tmp_path / "data.yaml", "train")
    assert len(ds) == 128 and ds.num_boxes == 929 and len(ds.class_names) == 80
    assert kinds(ds) == {"background": 2, "label_without_image": 2}
    small = load_dataset(tmp_path / "inline.yaml", "train")
    assert small.class_names == ["person", "bicycle"] and kinds(small)["unknown_class"] > 0


def test_exif_rotated_jpeg_keeps_stored_pixels(tmp_path, shared):
    """Boxes refer to the stored pixel grid; an EXIF orientation tag must not rotate the decoded image."""
    from PIL import Image

    with Image.open(shared / "raccoon" / "images" / "raccoon-1.jpg") as im:
        exif = Image.Exif()
        exif[274] = 6  # "rotate 90 CW to display"
        im.save(tmp_path / "a.jpg", exif=exif.tobytes())
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    ds = load_dataset({"format": "yolo", "root": str(tmp_path), "names": ["a"],
                       "splits": {"t": {"images": ".", "labels": "."}}}, "t")
    s = ds[0]
    assert s.image.shape == (417, 650, 3) and s.orig_size == (417, 650)


def test_coco_bad_types_nan_and_duplicate_ids_are_named_and_left_out(tmp_path, shared):
    """Each bad record is one problem naming its list position or id; the good ones load as usual."""
    shutil.copy(shared / "raccoon" / "images" / "raccoon-1.jpg", tmp_path / "a.jpg")
    shutil.copy(shared / "raccoon" / "images" / "raccoon-1.jpg", tmp_path / "b.jpg")
    shutil.copy(shared / "raccoon" / "images" / "raccoon-1.jpg", tmp_path / "c.jpg")
    im = lambda i, f, **kw: {"id": i, "file_name": f, "width": 650, "height": 417, **kw}  # noqa: E731
    an = lambda i, img, box, **kw: {"id": i, "image_id": img, "category_id": 1, "bbox": box, **kw}  # noqa: E731
    data = {"images": [im(1, "a.jpg"), im(2, "b.jpg"), im(2, "c.jpg"), im([3], "d.jpg"), im(4, "e.jpg", width="640px")],
            "categories": [{"id": 1, "name": "raccoon"}],
            "annotations": [an(1, 1, [10, 10, 50, 50]), an(1, 1, [60, 60, 50, 50]), an(2, 1, [float("nan"), 1, 2, 3]),
                            an(3, 1, ["1", 2, 3, 4]), an(4, 2, [1, 1, 5, 5]), an(5, 1, [1, 1, 5, 5], iscrowd=7)]}
    (tmp_path / "i.json").write_text(json.dumps(data))
    ds = load_dataset({"format": "coco", "root": str(tmp_path),
                       "splits": {"val": {"images": ".", "annotations": "i.json"}}}, "val")
    assert kinds(ds) == {"duplicate_id": 2, "bad_record": 4, "bad_number": 1}
    text = "\n".join(p.problem for p in ds.problems)
    for needle in ("image id 2 is used by images[1] 'b.jpg', images[2] 'c.jpg'", "images[3] id [3]",
                   "images[4] width '640px'", "annotations[1]: annotation id 1 already used by annotations[0]",
                   "annotations[2] (id 2): bbox [nan", "annotations[3] (id 3): bbox ['1'", "iscrowd 7"):
        assert needle in text, needle
    assert [r.path.name for r in ds.records] == ["a.jpg"]
    np.testing.assert_allclose(ds.records[0].boxes, [[10, 10, 60, 60]])
    assert len(ds.coco.dataset["annotations"]) == 1  # pycocotools never sees a dropped record


def test_nan_and_inf_boxes_are_dropped_not_clipped(tmp_path, shared):
    from yolokit.data.sample import ProblemReport, sanitize_boxes

    report = ProblemReport()
    boxes = np.array([[1, 1, 5, 5], [np.nan, 1, 5, 5], [1, 1, np.inf, 5], [-5, 1, 5, 5]], np.float64)
    clipped, keep = sanitize_boxes(boxes, (10, 10), "f.txt", report, ["line 1", "line 2", "line 3", "line 4"])
    assert keep.tolist() == [True, False, False, True]
    assert np.isfinite(clipped).all()
    assert [(p.kind, p.problem.split(": ")[1].split(" (")[0]) for p in report] == [
        ("bad_number", "line 2"), ("bad_number", "line 3"), ("clipped_box", "line 4")]
