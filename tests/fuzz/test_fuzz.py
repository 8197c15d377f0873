"""Bad input through every entry point: the exit code, one line that names the file/record (or the flag), and
never a traceback.

Each case builds its bad input in tmp_path from real files of ../shared/data and runs ``yolokit ARGV`` in
this process (:func:`run_cli`): an exception escaping ``main`` is the traceback a user would see and fails
the case. Expected outcomes:

* exit 2 -- the input cannot be used: exactly one ``error:`` line on stderr, holding every needle;
* exit 0 -- the bad records are reported and left out: one output line holds every needle (file and record);
* exit 1 -- ``yolokit check`` found problems that drop data: the same, one line per problem.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fuzz.conftest import (TINY, VIDEO02, bomb_png, coco_doc, corrupt_middle_jpeg, good_yolo, jpeg, jpeg2,
                                 padded_jpeg, run_cli, truncated_jpeg, voc_xml, write_coco, write_voc, write_yolo)

MICRO_CFG = """[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
size=1
stride=1
pad=1
filters=18
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=1
num=3
"""
FAST = ["--imgsz", "64", "--no-progress"]  # detect: tiny input, no progress bar


def micro_cfg(tmp: Path, text: str = MICRO_CFG, name: str = "micro.cfg") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def bad_cfg(tmp: Path, old: str, new: str, name: str = "bad.cfg") -> Path:
    text = MICRO_CFG.replace(old, new, 1)
    assert text != MICRO_CFG
    return micro_cfg(tmp, text, name)


def checkpoint(tmp: Path, kind: str) -> Path:
    """A .pt that is not a usable yolokit checkpoint."""
    import torch

    path = tmp / f"{kind}.pt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "foreign":
        torch.save({"weight": torch.zeros(3)}, path)  # a plain state_dict of something else
    elif kind == "truncated":
        torch.save({"model": {"w": torch.zeros(1000)}, "cfg": MICRO_CFG}, path)
        path.write_bytes(path.read_bytes()[:2000])
    elif kind == "pickled":
        torch.save({"model": Pickled()}, path)  # loading it fully would call print(); weights-only refuses
    elif kind == "text":
        path.write_text("this is not a checkpoint\n")
    return path


class Pickled:
    def __reduce__(self):
        return (print, ("code ran from a checkpoint",))


def npz(tmp: Path, kind: str) -> Path:
    import numpy as np

    path = tmp / f"{kind}.npz"
    if kind == "empty":
        path.write_bytes(b"")
    else:
        np.savez(path, weights=np.zeros(100))
        if kind == "truncated":
            path.write_bytes(path.read_bytes()[:150])
    return path


def pred(tmp: Path, records) -> Path:
    path = tmp / "pred.json"
    path.write_text(records if isinstance(records, str) else json.dumps(records))
    return path


def good_det(**change):
    rec = {"image_id": "a", "category_id": 0, "bbox": [100.0, 50.0, 200.0, 150.0], "score": 0.9}
    rec.update(change)
    return [rec, {"image_id": "b", "category_id": 0, "bbox": [10.0, 10.0, 50.0, 50.0], "score": 0.5}]


def coco_ann(i, **change):
    doc = coco_doc()
    doc["annotations"][i].update(change)
    return doc


def coco_img(i, **change):
    doc = coco_doc()
    doc["images"][i].update(change)
    return doc


# ----------------------------------------------------------------------------- the cases
# name -> builder(tmp) -> (argv, exit code, needles that one line must hold). `check` exits 1 when it finds
# problems that drop data.
CASES = {
    # --- images: one reader for check, train and detect -------------------------------------------------
    "check/truncated-jpeg": lambda t: (["check", "--data", good_yolo(t, **{"t.jpg": truncated_jpeg()})], 1,
                                       ["t.jpg", "truncated"]),
    "check/corrupt-middle-jpeg": lambda t: (["check", "--data", good_yolo(t, **{"m.jpg": corrupt_middle_jpeg()})],
                                            1, ["m.jpg", "cannot be decoded"]),
    "check/bomb-png": lambda t: (["check", "--data", good_yolo(t, **{"big.png": bomb_png()})], 1,
                                 ["big.png", "decompression-bomb"]),
    "check/not-an-image": lambda t: (["check", "--data", good_yolo(t, **{"x.jpg": b"GIF89a nope"})], 1,
                                     ["x.jpg", "cannot be decoded"]),
    "check/empty-image": lambda t: (["check", "--data", good_yolo(t, **{"e.jpg": b""})], 1,
                                    ["e.jpg", "cannot be decoded"]),
    "detect/truncated-jpeg": lambda t: (["detect", good_yolo(t, **{"t.jpg": truncated_jpeg()}).parent / "images",
                                         "--model", micro_cfg(t), "--random-weights", "--out", t / "o",
                                         "--no-save"] + FAST, 0, ["t.jpg", "truncated"]),
    "detect/corrupt-middle-jpeg": lambda t: (["detect", good_yolo(t, **{"m.jpg": corrupt_middle_jpeg()}).parent /
                                              "images", "--model", micro_cfg(t), "--random-weights", "--out",
                                              t / "o", "--no-save"] + FAST, 0, ["m.jpg", "cannot be decoded"]),
    "detect/bomb-png": lambda t: (["detect", good_yolo(t, **{"big.png": bomb_png()}).parent / "images",
                                   "--model", micro_cfg(t), "--random-weights", "--out", t / "o",
                                   "--no-save"] + FAST, 0, ["big.png", "decompression-bomb"]),
    "detect/missing-source": lambda t: (["detect", t / "nothing.jpg", "--model", micro_cfg(t), "--random-weights"],
                                        2, ["nothing.jpg"]),
    # --- YOLO txt labels -------------------------------------------------------------------------------
    "check/yolo-nan-coordinate": lambda t: (["check", "--data", write_yolo(t, {"a.jpg": jpeg()},
                                            {"a.txt": "0 0.5 0.5 0.2 0.2\n0 nan 0.5 0.2 0.2\n"})], 1,
                                            ["a.txt", "line 2", "NaN"]),
    "check/yolo-inf-class": lambda t: (["check", "--data", write_yolo(t, {"a.jpg": jpeg()},
                                       {"a.txt": "inf 0.5 0.5 0.2 0.2\n"})], 1, ["a.txt", "line 1", "infinite"]),
    "check/yolo-nan-class": lambda t: (["check", "--data", write_yolo(t, {"a.jpg": jpeg()},
                                       {"a.txt": "0 0.5 0.5 0.2 0.2\nnan 0.5 0.5 0.2 0.2\n"})], 1,
                                       ["a.txt", "line 2", "NaN"]),
    "check/yolo-non-utf8": lambda t: (["check", "--data", write_yolo(t, {"a.jpg": jpeg()},
                                      {"a.txt": b"0 0.5 0.5 0.2 0.2\n\xff\xfe 0.5 0.5\n"})], 1,
                                      ["a.txt", "line 2", "UTF-8"]),
    "check/yolo-word-class": lambda t: (["check", "--data", write_yolo(t, {"a.jpg": jpeg()},
                                        {"a.txt": "raccoon 0.5 0.5 0.2 0.2\n"})], 1, ["a.txt", "line 1", "numbers"]),
    "check/yolo-negative-class": lambda t: (["check", "--data", write_yolo(t, {"a.jpg": jpeg()},
                                            {"a.txt": "-1 0.5 0.5 0.2 0.2\n"})], 1,
                                            ["a.txt", "line 1", "non-negative integer"]),
    "check/yolo-four-values": lambda t: (["check", "--data", write_yolo(t, {"a.jpg": jpeg()},
                                         {"a.txt": "0 0.5 0.5 0.2\n"})], 1, ["a.txt", "line 1", "5 values"]),
    # --- VOC XML ---------------------------------------------------------------------------------------
    "check/voc-nan-xmin": lambda t: (["check", "--data", write_voc(t, voc_xml(("nan", 10, 100, 100)))], 1,
                                     ["a.xml", "object 0", "NaN"]),
    "check/voc-inf-xmax": lambda t: (["check", "--data", write_voc(t, voc_xml((10, 10, "inf", 100)))], 1,
                                     ["a.xml", "object 0", "NaN or infinite"]),
    "check/voc-inf-size": lambda t: (["check", "--data", write_voc(t, voc_xml((10, 10, 100, 100), ("inf", "417")))],
                                     0, ["problems: none"]),  # a bad <size> is ignored: the image header decides
    "check/voc-word-coordinate": lambda t: (["check", "--data", write_voc(t, voc_xml(("ten", 10, 100, 100)))], 1,
                                            ["a.xml", "object 0", "numeric"]),
    "check/voc-not-xml": lambda t: (["check", "--data", write_voc(t, "\x00\x01 binary")], 1, ["a.xml", "line 1"]),
    # --- COCO JSON -------------------------------------------------------------------------------------
    "check/coco-nan-bbox": lambda t: (["check", "--data", write_coco(t, None, json.dumps(coco_ann(
                                       1, bbox=[float("nan"), 1, 2, 3])))], 1, ["instances.json", "(id 2)", "nan"]),
    "check/coco-bbox-strings": lambda t: (["check", "--data", write_coco(t, coco_ann(0, bbox=["10", "20", "5",
                                                                                                 "5"]))], 1,
                                          ["instances.json", "annotations[0]", "non-number"]),
    "check/coco-bbox-nulls": lambda t: (["check", "--data", write_coco(t, coco_ann(2, bbox=[None, 1, 2, 3]))], 1,
                                        ["instances.json", "annotations[2]", "non-number"]),
    "check/coco-image-id-list": lambda t: (["check", "--data", write_coco(t, coco_img(1, id=[2]))], 1,
                                           ["instances.json", "images[1]", "not an integer"]),
    "check/coco-ann-image-id-list": lambda t: (["check", "--data", write_coco(t, coco_ann(0, image_id=[1]))], 1,
                                               ["instances.json", "annotations[0]", "image_id"]),
    "check/coco-width-null": lambda t: (["check", "--data", write_coco(t, coco_img(0, width=None))], 1,
                                        ["instances.json", "images[0]", "width None"]),
    "check/coco-width-640px": lambda t: (["check", "--data", write_coco(t, coco_img(0, width="640px"))], 1,
                                         ["instances.json", "images[0]", "640px"]),
    "check/coco-category-id-string": lambda t: (["check", "--data", write_coco(t, coco_ann(1, category_id="1"))],
                                                1, ["instances.json", "annotations[1]", "category_id"]),
    "check/coco-duplicate-image-id": lambda t: (["check", "--data", write_coco(t, coco_img(1, id=1))], 1,
                                                ["instances.json", "image id 1", "a.jpg", "b.jpg"]),
    "check/coco-duplicate-annotation-id": lambda t: (["check", "--data", write_coco(t, coco_ann(2, id=1))], 1,
                                                     ["instances.json", "annotations[2]", "annotation id 1"]),
    "check/coco-annotation-not-object": lambda t: (["check", "--data", write_coco(t, coco_doc(
                                                   annotations=[5] + coco_doc()["annotations"]))], 1,
                                                   ["instances.json", "annotations[0]", "not an object"]),
    "check/coco-json-is-5": lambda t: (["check", "--data", write_coco(t, None, "5")], 1,
                                       ["instances.json", "not a COCO instances file"]),
    "check/coco-malformed-json": lambda t: (["check", "--data", write_coco(t, None, '{"images": [}')], 1,
                                            ["instances.json", "malformed JSON"]),
    "check/data-yaml-missing": lambda t: (["check", "--data", t / "none.yaml"], 2, ["none.yaml", "not found"]),
    "check/data-yaml-malformed": lambda t: (["check", "--data", _write(t / "d.yaml", "format: [yolo\n")], 2,
                                            ["d.yaml"]),
    # --- convert: bad records are never written; a failure leaves no partial output ---------------------
    "convert/coco-nan-bbox-to-voc": lambda t: (["convert", "--data", write_coco(t, None, json.dumps(coco_ann(
                                                2, bbox=[float("nan"), 1, 2, 3]))), "--to", "voc", "--out",
                                                t / "out"], 0, ["source problems: 1", "instances.json", "(id 3)",
                                                                "nan"]),
    "convert/yolo-nan-to-coco": lambda t: (["convert", "--data", write_yolo(t, {"a.jpg": jpeg()},
                                            {"a.txt": "0 nan 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n"}), "--to", "coco",
                                            "--out", t / "out"], 0, ["source problems: 2", "a.txt", "line 1"]),
    "convert/coco-json-is-5": lambda t: (["convert", "--data", write_coco(t, None, "5"), "--to", "voc", "--out",
                                          t / "out"], 2, ["instances.json", "not a COCO instances file"]),
    # --- split -----------------------------------------------------------------------------------------
    "split/bad-ratios": lambda t: (["split", "--data", good_yolo(t), "--ratios", "0.9", "0.9", "--out", t / "s"], 2,
                                   ["ratios"]),
    "split/yolo-nan-label-reported": lambda t: (["split", "--data", write_yolo(t, {"a.jpg": jpeg(), "b.jpg": jpeg2()},
                                                 {"a.txt": "0 0.5 0.5 nan 0.2\n", "b.txt": "0 .5 .5 .2 .2\n"}),
                                                 "--split", "train", "--ratios", "0.5", "0.5", "--out", t / "s"], 0,
                                                ["a.txt", "line 1", "NaN"]),
    "split/missing-data": lambda t: (["split", "--data", t / "none.yaml", "--out", t / "s"], 2, ["none.yaml"]),
    "split/coco-json-is-5": lambda t: (["split", "--data", write_coco(t, None, "5"), "--out", t / "s"], 2,
                                       ["instances.json"]),
    # --- eval --pred ------------------------------------------------------------------------------------
    "eval/pred-nan-score": lambda t: (["eval", "--data", good_yolo(t), "--pred", pred(t, good_det(score=float("nan"))),
                                       "--metrics", "voc"], 2, ["pred.json", "record 0", "NaN"]),
    "eval/pred-inf-bbox": lambda t: (["eval", "--data", good_yolo(t), "--pred",
                                      pred(t, good_det(bbox=[1, 2, float("inf"), 3])), "--metrics", "voc"], 2,
                                     ["pred.json", "record 0", "infinite"]),
    "eval/pred-negative-width": lambda t: (["eval", "--data", good_yolo(t), "--pred",
                                            pred(t, good_det(bbox=[100, 50, -20, 40])), "--metrics", "voc"], 2,
                                           ["pred.json", "record 0", "negative width"]),
    "eval/pred-json-is-5": lambda t: (["eval", "--data", good_yolo(t), "--pred", pred(t, "5")], 2,
                                      ["pred.json", "got int 5"]),
    "eval/pred-list-of-numbers": lambda t: (["eval", "--data", good_yolo(t), "--pred", pred(t, "[1, 2]")], 2,
                                            ["pred.json", "COCO results list"]),
    "eval/pred-bbox-null": lambda t: (["eval", "--data", good_yolo(t), "--pred",
                                       pred(t, good_det(bbox=[None, 1, 2, 3])), "--metrics", "voc"], 2,
                                      ["pred.json", "record 0"]),
    "eval/pred-score-string": lambda t: (["eval", "--data", good_yolo(t), "--pred",
                                          pred(t, good_det(score="0.9")), "--metrics", "voc"], 2,
                                         ["pred.json", "record 0", "JSON numbers"]),
    "eval/pred-category-string": lambda t: (["eval", "--data", good_yolo(t), "--pred",
                                             pred(t, good_det(category_id="dog"))], 2,
                                            ["pred.json", "record 0", "category_id"]),
    "eval/pred-image-id-list": lambda t: (["eval", "--data", good_yolo(t), "--pred",
                                           pred(t, good_det(image_id=[1])), "--metrics", "voc"], 2,
                                          ["pred.json", "record 0"]),
    "eval/pred-not-json": lambda t: (["eval", "--data", good_yolo(t), "--pred", pred(t, "nan nan")], 2,
                                     ["pred.json", "cannot read"]),
    "eval/gt-nan-label-reported": lambda t: (["eval", "--data", write_yolo(t, {"a.jpg": jpeg()},
                                              {"a.txt": "0 0.5 nan 0.2 0.2\n"}), "--pred", pred(t, good_det()[:1]),
                                              "--metrics", "voc"], 0, ["a.txt", "line 1", "NaN"]),
    "eval/model-without-weights": lambda t: (["eval", "--data", good_yolo(t), "--model", micro_cfg(t)], 2,
                                             ["micro.cfg", "--random-weights"]),
    # --- models: cfg values, checkpoints, weights ------------------------------------------------------
    "info/cfg-ignore-thresh-typo": lambda t: (["info", bad_cfg(t, "num=3", "num=3\nignore_thresh = .7.")], 2,
                                              ["bad.cfg:30", "ignore_thresh", ".7."]),
    "info/cfg-negative-filters": lambda t: (["info", bad_cfg(t, "filters=8", "filters=-16")], 2,
                                            ["bad.cfg:8", "filters=-16"]),
    "info/cfg-zero-size": lambda t: (["info", bad_cfg(t, "size=3", "size=0")], 2, ["bad.cfg:9", "size=0"]),
    "info/cfg-nan-scale": lambda t: (["info", bad_cfg(t, "num=3", "num=3\nscale_x_y=nan")], 2,
                                     ["bad.cfg:30", "scale_x_y"]),
    "info/cfg-mask-out-of-range": lambda t: (["info", bad_cfg(t, "mask=0,1,2", "mask=0,1,-2")], 2,
                                             ["bad.cfg:26", "mask"]),
    "info/cfg-binary": lambda t: (["info", _write(t / "bin.cfg", bytes(range(256)) * 4)], 2, ["bin.cfg"]),
    "info/cfg-empty": lambda t: (["info", _write(t / "e.cfg", "")], 2, ["e.cfg", "empty cfg"]),
    "info/darknet-weights": lambda t: (["info", TINY / "yolov3-tiny.weights"], 2, ["yolov3-tiny.weights", "give its .cfg"]),
    "info/pt-empty": lambda t: (["info", checkpoint(t, "empty")], 2, ["empty.pt", "empty file"]),
    "info/pt-foreign": lambda t: (["info", checkpoint(t, "foreign")], 2, ["foreign.pt", "not a yolokit checkpoint"]),
    "info/pt-truncated": lambda t: (["info", checkpoint(t, "truncated")], 2, ["truncated.pt", "truncated"]),
    "info/pt-pickled": lambda t: (["info", checkpoint(t, "pickled")], 2, ["pickled.pt", "pickled"]),
    "info/pt-text": lambda t: (["info", checkpoint(t, "text")], 2, ["text.pt", "not a torch.save file"]),
    "detect/cfg-ignore-thresh-typo": lambda t: (["detect", _image(t), "--model",
                                                 bad_cfg(t, "num=3", "num=3\nignore_thresh = .7."), "--random-weights"]
                                                + FAST, 2, ["bad.cfg:30", "ignore_thresh"]),
    "detect/pt-pickled": lambda t: (["detect", _image(t), "--model", checkpoint(t, "pickled")] + FAST, 2,
                                    ["pickled.pt", "pickled"]),
    "detect/pt-truncated": lambda t: (["detect", _image(t), "--model", checkpoint(t, "truncated")] + FAST, 2,
                                      ["truncated.pt"]),
    "detect/model-without-weights": lambda t: (["detect", _image(t), "--model", micro_cfg(t)] + FAST, 2,
                                               ["micro.cfg", "--random-weights"]),
    "detect/name-without-weights": lambda t: (["detect", _image(t), "--model", "yolov3-tiny"] + FAST, 2,
                                              ["yolov3-tiny", "--random-weights"]),
    "detect/weights-truncated": lambda t: (["detect", _image(t), "--model", TINY / "yolov3-tiny.cfg", "--weights",
                                            _write(t / "w.weights", (TINY / "yolov3-tiny.weights").read_bytes()[
                                                :100_000])] + FAST, 2, ["w.weights", "ends inside layer"]),
    "export/cfg-negative-filters": lambda t: (["export", "--model", bad_cfg(t, "filters=8", "filters=-16"),
                                               "--random-weights", "--out", t / "m.onnx"], 2, ["bad.cfg:8"]),
    "export/pt-empty": lambda t: (["export", "--model", checkpoint(t, "empty"), "--out", t / "m.onnx"], 2,
                                  ["empty.pt", "empty file"]),
    "export/model-without-weights": lambda t: (["export", "--model", micro_cfg(t), "--out", t / "m.onnx"], 2,
                                               ["micro.cfg", "--random-weights"]),
    "eval/pt-foreign": lambda t: (["eval", "--data", good_yolo(t), "--model", checkpoint(t, "foreign")], 2,
                                  ["foreign.pt"]),
    "train/cfg-ignore-thresh-typo": lambda t: (["train", "--model", bad_cfg(t, "num=3", "num=3\nignore_thresh=.7."),
                                                "--data", good_yolo(t), "--out", t / "run"], 2,
                                               ["bad.cfg:30", "ignore_thresh"]),
    "train/pt-truncated": lambda t: (["train", "--model", checkpoint(t, "truncated"), "--data", good_yolo(t),
                                      "--out", t / "run"], 2, ["truncated.pt"]),
    "train/every-image-bad": lambda t: (["train", "--model", micro_cfg(t), "--data",
                                         write_yolo(t, {"t.jpg": truncated_jpeg()}, {"t.txt": "0 .5 .5 .2 .2\n"}),
                                         "--out", t / "run", "--workers", "0", "--no-progress"], 2,
                                        ["split 'train' has no images"]),
    "train/corrupt-image-left-out": lambda t: (["train", "--model", micro_cfg(t), "--data",
                                                good_yolo(t, **{"m.jpg": corrupt_middle_jpeg()}), "--out", t / "run",
                                                "--epochs", "1", "--imgsz", "64", "--batch", "2", "--burn-in", "0",
                                                "--workers", "0", "--no-progress"], 0, ["m.jpg", "cannot be decoded"]),
    "eval/model-corrupt-image-left-out": lambda t: (["eval", "--data", good_yolo(t, **{"m.jpg": corrupt_middle_jpeg()}),
                                                     "--model", micro_cfg(t), "--random-weights", "--imgsz", "64",
                                                     "--metrics", "voc"], 0, ["m.jpg", "cannot be decoded"]),
    "hog/train-corrupt-image-left-out": lambda t: (["hog", "train", "--data",
                                                    good_yolo(t, **{"m.jpg": corrupt_middle_jpeg()}), "--split",
                                                    "train", "--out", t / "h.npz"], 0, ["m.jpg", "cannot be decoded"]),
    "hog/npz-empty": lambda t: (["hog", "detect", _image(t), "--model", npz(t, "empty"), "--no-progress"], 2,
                                ["empty.npz", "unreadable HOG+SVM model"]),
    "hog/npz-truncated": lambda t: (["hog", "detect", _image(t), "--model", npz(t, "truncated"), "--no-progress"],
                                    2, ["truncated.npz", "unreadable HOG+SVM model"]),
    "hog/npz-foreign": lambda t: (["hog", "detect", _image(t), "--model", npz(t, "foreign"), "--no-progress"], 2,
                                  ["foreign.npz", "not a yolokit HOG+SVM model"]),
    "hog/train-bad-data": lambda t: (["hog", "train", "--data", write_coco(t, None, "5"), "--split", "val",
                                      "--out", t / "h.npz"], 2, ["instances.json", "not a COCO instances file"]),
    # --- description, names and list files that are not text ------------------------------------------
    "check/data-yaml-binary": lambda t: (["check", "--data", _write(t / "d.yaml", bytes(range(256)))], 2,
                                         ["d.yaml", "cannot read"]),
    "check/data-yaml-is-a-folder": lambda t: (["check", "--data", t], 2, [str(t), "cannot read"]),
    "check/names-file-binary": lambda t: (["check", "--data", _names_yaml(t, bytes(range(256)))], 1,
                                          ["names.txt", "cannot read names file"]),
    "check/split-list-binary": lambda t: (["check", "--data", _list_yaml(t, b"a.jpg\n\xff\xfe\n")], 1,
                                          ["train.txt", "cannot read the split list"]),
    "detect/names-file-binary": lambda t: (["detect", _image(t), "--model", micro_cfg(t), "--random-weights",
                                            "--names", _write(t / "b.names", bytes(range(256)))] + FAST, 2,
                                           ["b.names", "cannot read class names"]),
    "detect/weights-empty": lambda t: (["detect", _image(t), "--model", TINY / "yolov3-tiny.cfg", "--weights",
                                        _write(t / "e.weights", b"")] + FAST, 2, ["e.weights", "too short"]),
    # --- flags: one line naming the flag and the accepted range ----------------------------------------
    "detect/flag-conf": lambda t: (["detect", _image(t), "--model", micro_cfg(t), "--random-weights", "--conf", "-1"],
                                   2, ["--conf -1", "[0, 1]"]),
    "detect/flag-imgsz": lambda t: (["detect", _image(t), "--model", micro_cfg(t), "--random-weights", "--imgsz",
                                     "0"], 2, ["--imgsz 0", "multiple of 32"]),
    "detect/flag-max-det": lambda t: (["detect", _image(t), "--model", micro_cfg(t), "--random-weights",
                                       "--max-det", "0"], 2, ["--max-det 0"]),
    "eval/flag-iou": lambda t: (["eval", "--data", good_yolo(t), "--model", micro_cfg(t), "--random-weights",
                                 "--iou", "-0.5"], 2, ["--iou -0.5", "[0, 1]"]),
    "eval/flag-imgsz": lambda t: (["eval", "--data", good_yolo(t), "--model", micro_cfg(t), "--random-weights",
                                   "--imgsz", "300"], 2, ["--imgsz 300", "multiple of 32"]),
    "train/flag-batch": lambda t: (["train", "--model", micro_cfg(t), "--data", good_yolo(t), "--batch", "-4",
                                    "--out", t / "r"], 2, ["--batch -4"]),
    "train/flag-lr": lambda t: (["train", "--model", micro_cfg(t), "--data", good_yolo(t), "--lr", "-1",
                                 "--out", t / "r"], 2, ["--lr -1"]),
    "train/flag-workers": lambda t: (["train", "--model", micro_cfg(t), "--data", good_yolo(t), "--workers", "-1",
                                      "--out", t / "r"], 2, ["--workers -1"]),
    "export/flag-imgsz": lambda t: (["export", "--model", micro_cfg(t), "--random-weights", "--imgsz", "0",
                                     "--out", t / "m.onnx"], 2, ["--imgsz 0"]),
    "hog/flag-conf": lambda t: (["hog", "detect", _image(t), "--model", npz(t, "foreign"), "--conf", "-1"], 2,
                                ["--conf -1"]),
    "split/flag-ratios": lambda t: (["split", "--data", good_yolo(t), "--ratios", "-1", "2", "--out", t / "s"], 2,
                                    ["--ratios", "[-1.0, 2.0]"]),
    "convert/unknown-split": lambda t: (["convert", "--data", good_yolo(t), "--to", "voc", "--out", t / "o",
                                         "--split", "nope"], 2, ["data.yaml", "no split 'nope'"]),
    "info/flag-imgsz": lambda t: (["info", micro_cfg(t), "--imgsz", "0"], 2, ["--imgsz 0"]),
}


def _write(path: Path, data) -> Path:
    path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)
    return path


def _names_yaml(tmp: Path, names: bytes) -> Path:
    yaml = good_yolo(tmp)
    spec = json.loads(yaml.read_text())
    spec["names"] = str(_write(tmp / "names.txt", names))
    yaml.write_text(json.dumps(spec))
    return yaml


def _list_yaml(tmp: Path, listing: bytes) -> Path:
    yaml = good_yolo(tmp)
    spec = json.loads(yaml.read_text())
    spec["splits"]["train"] = {"list": str(_write(tmp / "train.txt", listing)), "images": "images",
                               "labels": "labels"}
    yaml.write_text(json.dumps(spec))
    return yaml


def _image(tmp: Path) -> Path:
    return _write(tmp / "photo.jpg", jpeg2())


def check_outcome(argv, code, needles, got):
    rc, out, err = got
    assert "Traceback" not in out + err
    assert rc == code, f"yolokit {' '.join(map(str, argv))}: exit {rc}, expected {code}\n{out}\n{err}"
    if code == 2:
        errors = [ln for ln in err.splitlines() if "error:" in ln]
        assert len(errors) == 1, err
        line = errors[0]
    else:
        lines = [ln for ln in (out + err).splitlines() if all(n in ln for n in needles)]
        assert lines, f"no line holds all of {needles}:\n{out}\n{err}"
        line = lines[0]
    for n in needles:
        assert n in line, f"{n!r} not in: {line}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, shared):
    argv, code, needles = CASES[name](tmp_path)
    check_outcome(argv, code, needles, run_cli(argv))


# ----------------------------------------------------------------------------- cases that look further
def test_padded_jpeg_is_valid_everywhere(tmp_path, shared):
    """A valid JPEG with 1,188 zero bytes after its end marker passes check and is decoded, not dropped."""
    from yolokit.data import load_dataset

    yaml = good_yolo(tmp_path, **{"p.jpg": padded_jpeg()})
    (tmp_path / "labels" / "p.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    code, out, err = run_cli(["check", "--data", yaml])
    assert code == 0 and "p.jpg" not in out + err
    ds = load_dataset(yaml, "train", decode=True)
    assert "p.jpg" in {r.path.name for r in ds.records}


def test_same_verdict_in_check_train_and_detect(tmp_path, shared):
    """The one reader: a corrupt-middle and a truncated JPEG are named by check, left out of training's data
    and skipped by detect with their names."""
    from yolokit.apps.sources import open_source
    from yolokit.data import load_dataset
    from yolokit.data.check import check_dataset

    yaml = good_yolo(tmp_path, **{"m.jpg": corrupt_middle_jpeg(), "t.jpg": truncated_jpeg(), "big.png": bomb_png()})
    bad = {"m.jpg", "t.jpg", "big.png"}
    checked = {Path(p.file).name: p.kind for p in check_dataset(yaml, ["train"])["problems"]
               if p.kind.endswith("_image")}
    trained = load_dataset(yaml, "train", decode=True)
    dropped = {Path(p.file).name: p.kind for p in trained.problems if p.kind.endswith("_image")}
    src = open_source(str(tmp_path / "images"))
    seen = [f.name for f in src]
    assert checked == dropped and set(checked) == bad
    assert checked["big.png"] == "oversized_image" and checked["t.jpg"] == "truncated_image"
    assert {Path(p).name for p in src.failed} == bad and sorted(seen) == ["a.jpg", "b.jpg"]
    assert {r.path.name for r in trained.records} == {"a.jpg", "b.jpg"}


def test_convert_writes_no_nan_and_no_partial_output(tmp_path, shared):
    """COCO -> VOC/YOLO/COCO with a NaN bbox: the record is reported, nothing written holds 'nan'; a conversion
    that fails half way (the second split's classes differ) leaves no output folder at all."""
    from yolokit.data.convert import convert
    from yolokit.errors import ConfigError

    yaml = write_coco(tmp_path / "src", None, json.dumps(coco_ann(2, bbox=[float("nan"), 1, 2, 3])))
    for to in ("voc", "yolo", "coco"):
        result = convert(yaml, to, tmp_path / to)
        assert [p.kind for p in result["problems"]] == ["bad_number"]
        text = "".join(p.read_text() for p in (tmp_path / to).rglob("*") if p.is_file()).lower()
        assert "nan" not in text and "inf" not in text.replace("info", "")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary folder left behind

    spec = json.loads(yaml.read_text())
    other = coco_doc(categories=[{"id": 1, "name": "dog"}])
    (tmp_path / "src" / "other.json").write_text(json.dumps(other))
    spec["splits"]["zz"] = {"images": ".", "annotations": "other.json"}
    two = tmp_path / "src" / "two.yaml"
    two.write_text(json.dumps(spec))
    with pytest.raises(ConfigError, match="other class names"):
        convert(two, "voc", tmp_path / "half")
    assert not (tmp_path / "half").exists() and not list(tmp_path.glob(".half.*"))


def test_nan_labels_never_reach_training(tmp_path, shared):
    """The NaN box is gone before the loader: every target a batch carries is finite."""
    import torch

    from yolokit.data import build_loader, load_dataset

    yaml = write_yolo(tmp_path, {"a.jpg": jpeg(), "b.jpg": jpeg2()},
                      {"a.txt": "0 nan 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n", "b.txt": "inf 0.5 0.5 0.1 0.1\n"})
    ds = load_dataset(yaml, "train", decode=True)
    assert ds.problems.counts() == {"bad_number": 2}
    assert ds.num_boxes == 1
    _, targets, _ = next(iter(build_loader(ds, batch_size=2, size=64, train=False, workers=0)))
    assert len(targets) == 1 and torch.isfinite(targets).all()


def test_duplicate_coco_image_id_moves_no_boxes(tmp_path, shared):
    """Two images sharing id 1: neither gets the other's boxes (both dropped, named); b.jpg's own boxes vanish
    with it rather than landing on a.jpg."""
    from yolokit.data import load_dataset

    ds = load_dataset(write_coco(tmp_path, coco_img(1, id=1)), "val")
    assert len(ds) == 0
    dup = [p for p in ds.problems if p.kind == "duplicate_id"]
    assert len(dup) == 1 and "a.jpg" in dup[0].problem and "b.jpg" in dup[0].problem


def test_truncated_and_damaged_video_report_lost_frames(tmp_path, shared):
    """video02 declares 750 frames (748 decode): a copy cut in half loses ~370 and says so; a copy with 20 kB
    of zeros in the middle loses its sync and ~20 frames, all accounted for (decoded + failed + lost)."""
    from yolokit.apps.sources import open_source

    healthy = open_source(str(VIDEO02))
    assert len([f for f in healthy]) == 748 and healthy.lost == 0 and healthy.report() is None

    data = VIDEO02.read_bytes()
    (tmp_path / "half.avi").write_bytes(data[: len(data) // 2])
    half = open_source(str(tmp_path / "half.avi"))
    n = len([f for f in half])
    assert 300 < n < 450 and half.lost == 750 - n - half.failed
    assert "half" in half.report() and f"{half.lost} of the 750 frames" in half.report()

    damaged = bytearray(data)
    mid = len(damaged) // 2
    damaged[mid:mid + 20000] = bytes(20000)
    (tmp_path / "zeros.avi").write_bytes(bytes(damaged))
    src = open_source(str(tmp_path / "zeros.avi"))
    n = len([f for f in src])
    assert n + src.failed + src.lost == 750 and src.failed + src.lost >= 20


def test_detect_reports_a_truncated_video(tmp_path, shared):
    data = VIDEO02.read_bytes()
    clip = _write(tmp_path / "cut.avi", data[: len(data) // 3])
    code, out, err = run_cli(["detect", clip, "--model", micro_cfg(tmp_path), "--random-weights", "--no-save",
                              "--out", tmp_path / "o", "--imgsz", "32", "--no-progress"])
    assert code == 0 and "Traceback" not in err
    lost = [ln for ln in err.splitlines() if "never arrived" in ln]
    assert len(lost) == 1 and lost[0].startswith("cut:") and "truncated or damaged" in lost[0]
