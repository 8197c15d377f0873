"""Bad inputs for the fuzz suite, built at test time from real files in ../shared/data (nothing is committed).

Every builder returns bytes or writes into a folder it is given; the datasets are tiny (two or three raccoon
photos) so that each command finishes in well under a second on a CPU.
"""

from __future__ import annotations

import contextlib
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
RACCOON = SHARED / "raccoon" / "images"
TINY = SHARED / "yolov3_tiny_darknet"
VIDEO02 = SHARED / "video_bgslibrary" / "dataset" / "video02.avi"


def jpeg() -> bytes:
    return (RACCOON / "raccoon-1.jpg").read_bytes()  # 650 x 417


def jpeg2() -> bytes:  # 450 x 495
    return (RACCOON / "raccoon-10.jpg").read_bytes()


def truncated_jpeg() -> bytes:
    data = jpeg()
    return data[: len(data) // 2]


def corrupt_middle_jpeg() -> bytes:
    """Valid header and end marker, 2000 random bytes in the middle of the entropy-coded data."""
    data = bytearray(jpeg())
    mid = len(data) // 2
    data[mid:mid + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    return bytes(data)


def padded_jpeg() -> bytes:
    """A VALID JPEG followed by 1,188 zero bytes after its end-of-image marker (real datasets have these)."""
    return jpeg() + b"\0" * 1188


def bomb_png(side: int = 20000) -> bytes:
    """A PNG whose header claims side x side pixels (400 MP, over Pillow's decompression-bomb limit); the pixel
    data is a few bytes, so nothing large is ever allocated by the test."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    # IHDR: 8-byte signature, 4-byte length, b"IHDR", width, height, ... and a CRC over type + data
    data[16:24] = struct.pack(">II", side, side)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def exif_rotated_jpeg(src: Path, dst: Path, orientation: int = 6) -> None:
    """Re-save ``src`` with an EXIF Orientation tag (274); the stored pixels keep their grid."""
    from PIL import Image

    with Image.open(src) as im:
        exif = Image.Exif()
        exif[274] = orientation
        im.save(dst, exif=exif.tobytes(), quality=95)


def write_yolo(root: Path, images: dict[str, bytes], labels: dict[str, bytes | str],
               names=("raccoon",)) -> Path:
    """A YOLO-txt dataset with the same files in a train and a val split; returns its data.yaml."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    for name, data in images.items():
        (root / "images" / name).write_bytes(data)
    for name, text in labels.items():
        target = root / "labels" / name
        target.write_bytes(text if isinstance(text, bytes) else text.encode())
    yaml = root / "data.yaml"
    split = {"images": "images", "labels": "labels"}
    yaml.write_text(json.dumps({"format": "yolo", "root": ".", "names": list(names),
                                "splits": {"train": split, "val": split}}))
    return yaml


def good_yolo(root: Path, **extra_images) -> Path:
    images = {"a.jpg": jpeg(), "b.jpg": jpeg2()}
    images.update(extra_images)
    labels = {"a.txt": "0 0.5 0.5 0.4 0.6\n", "b.txt": "0 0.4 0.5 0.3 0.3\n"}
    return write_yolo(root, images, labels)


def voc_xml(box, size=("650", "417"), name="raccoon") -> str:
    return (f"<annotation><filename>a.jpg</filename><size><width>{size[0]}</width><height>{size[1]}</height>"
            f"<depth>3</depth></size><object><name>{name}</name><difficult>0</difficult><bndbox>"
            f"<xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox>"
            "</object></annotation>")


def write_voc(root: Path, xml: str) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    (root / "images" / "a.jpg").write_bytes(jpeg())
    (root / "annotations" / "a.xml").write_text(xml)
    yaml = root / "data.yaml"
    split = {"images": "images", "annotations": "annotations"}
    yaml.write_text(json.dumps({"format": "voc", "root": ".", "names": ["raccoon"], "splits": {"val": split}}))
    return yaml


def coco_doc(**change) -> dict:
    """Two images, three annotations, one category; ``change`` replaces top-level lists."""
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 650, "height": 417},
                      {"id": 2, "file_name": "b.jpg", "width": 450, "height": 495}],
           "categories": [{"id": 1, "name": "raccoon"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 100, 50], "area": 5000,
                            "iscrowd": 0},
                           {"id": 2, "image_id": 2, "category_id": 1, "bbox": [30, 30, 60, 60], "area": 3600,
                            "iscrowd": 0},
                           {"id": 3, "image_id": 1, "category_id": 1, "bbox": [200, 100, 80, 90], "area": 7200,
                            "iscrowd": 0}]}
    doc.update(change)
    return doc


def write_coco(root: Path, doc, raw: str | None = None) -> Path:
    """A COCO split; ``raw`` writes that text as the JSON instead (NaN literals, non-JSON)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "a.jpg").write_bytes(jpeg())
    (root / "b.jpg").write_bytes(jpeg2())
    (root / "instances.json").write_text(raw if raw is not None else json.dumps(doc))
    yaml = root / "data.yaml"
    split = {"images": ".", "annotations": "instances.json"}
    yaml.write_text(json.dumps({"format": "coco", "root": ".", "splits": {"val": split}}))
    return yaml


def run_cli(argv) -> tuple[int, str, str]:
    """``yolokit ARGV`` in this process: (exit code, stdout, stderr). Any exception other than SystemExit
    escapes -- that is the traceback a user would see, and fails the test."""
    from yolokit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse: usage + one "error:" line
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()
