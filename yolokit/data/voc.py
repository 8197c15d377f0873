"""Pascal VOC XML: reading (VOCdevkit and flat layouts) and writing.

Pixel convention -- converted here and nowhere else. VOC boxes are 1-based *inclusive pixel indices*:
``xmin=1`` is the first pixel column and ``xmax`` is the last column the object covers, so a box has
``xmax - xmin + 1`` pixels across (the VOC devkit computes areas with that "+1"). yolokit's boxes are
continuous 0-based coordinates, where pixel ``i`` spans ``[i, i+1)``. Hence, on reading::

    x1 = xmin - 1,  y1 = ymin - 1,  x2 = xmax,  y2 = ymax

and the inverse on writing (``xmin = x1 + 1``, ``xmax = x2``), which round-trips integer VOC files
exactly and makes a full-image box ``(1, 1, W, H)`` equal to ``(0, 0, W, H)``.

Layouts (see ``configs/data/*.yaml``):

* VOCdevkit: ``root=VOC2012``, ``annotations=Annotations`` (default), ``images=JPEGImages`` (default) and
  ``list=ImageSets/Main/train.txt`` (one id per line; a trailing ``1/-1`` column is ignored);
* flat: an ``annotations/`` folder of XML files and an ``images/`` folder, with or without a list.

The image of an annotation is found by the XML's stem (``images/<stem>.<any image suffix>``), then by
its ``<filename>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from yolokit.data.images import checked_size, is_image, probe_image
from yolokit.data.sample import ProblemReport, Record, empty_record, sanitize_boxes

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")


class _Malformed(Exception):
    pass


def parse_voc_xml(path: Path) -> dict:
    """Parse one VOC XML file into ``{"filename", "size": (h, w) | None, "objects": [...]}``.

    Each object is ``{"name", "box": [x1, y1, x2, y2] (yolokit convention), "difficult": bool}``.
    Raises ``_Malformed`` with the line (and object) at fault.
    """
    from yolokit.errors import DataError
    from yolokit.fileio import check_regular

    try:
        check_regular(path, "VOC XML file", 64 << 20)  # a FIFO would block ET.parse for ever
    except DataError as exc:
        raise _Malformed(str(exc).split(": ", 1)[-1]) from None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, col = exc.position
        raise _Malformed(f"line {line}, column {col}: {exc.msg if hasattr(exc, 'msg') else exc}") from exc
    if root.tag != "annotation":
        raise _Malformed(f"root element is <{root.tag}>, expected <annotation>")
    size = None
    sz = root.find("size")
    if sz is not None:
        try:
            w, h = int(float(sz.findtext("width"))), int(float(sz.findtext("height")))
            size = (h, w) if w > 0 and h > 0 else None
        except (TypeError, ValueError, OverflowError):
            size = None  # absent/empty/NaN <size> is common in exports; the image header decides
    objects = []
    for k, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        if not name or bb is None:
            raise _Malformed(f"object {k}: missing <name> or <bndbox>")
        try:
            xmin, ymin, xmax, ymax = (float(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError) as exc:
            raise _Malformed(f"object {k} '{name}': <bndbox> needs numeric xmin/ymin/xmax/ymax") from exc
        diff = (obj.findtext("difficult") or "0").strip()
        objects.append({"name": name, "box": [xmin - 1, ymin - 1, xmax, ymax],  # 1-based inclusive -> 0-based
                        "difficult": diff not in ("", "0", "false", "False")})
    return {"filename": (root.findtext("filename") or "").strip(), "size": size, "objects": objects}


def read_list(path: Path) -> list[str]:
    """Image ids of a split list: a .txt with one id, file name or path per line (VOC's ``id 1`` lines
    too) or a .csv with a ``filename`` column (unique names in order of first appearance)."""
    import csv
    import io

    from yolokit.errors import DataError

    from yolokit.fileio import read_text

    # bounded, a regular file, and no newline translation: a quoted name in a .csv keeps its "\r"
    text = read_text(path, "split list", 1 << 30, DataError)
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        if rows and "filename" not in rows[0]:
            raise DataError(f"{path}: split CSV needs a 'filename' column, found {list(rows[0])}")
        names = [r["filename"] for r in rows]
    else:
        names = [ln.split()[0] for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return list(dict.fromkeys(names))


def _stem(entry: str) -> str:
    p = Path(entry)
    return p.stem if is_image(p) or p.suffix.lower() == ".xml" else p.name


def read_voc(annotations: Path, images: Path, ids: list[str] | None, names: list[str] | None,
             report: ProblemReport, check_images: bool = True) -> tuple[list[Record], list[str]]:
    """Read a VOC split. ``ids``: the split list (None: every XML and every image in the folders).

    ``names``: the class list (None: the sorted set of names found). Returns ``(records, class_names)``.
    """
    image_files = {}
    if images.is_dir():
        for p in sorted(images.iterdir()):
            if is_image(p):
                image_files.setdefault(p.stem, p)
    xml_files = {p.stem: p for p in sorted(annotations.glob("*.xml"))} if annotations.is_dir() else {}
    if ids is None:
        stems = sorted(set(xml_files) | set(image_files))
    else:
        stems = [_stem(s) for s in ids]

    parsed = {}
    for stem in stems:
        xml = xml_files.get(stem)
        if xml is None:
            continue
        try:
            parsed[stem] = parse_voc_xml(xml)
        except _Malformed as exc:
            report.add(xml, "malformed", str(exc))
    if names is None:
        names = sorted({o["name"] for a in parsed.values() for o in a["objects"]})
    index = {n: i for i, n in enumerate(names)}

    records = []
    for stem in stems:
        xml = xml_files.get(stem)
        ann = parsed.get(stem)
        if xml is not None and ann is None:
            continue  # malformed, already reported
        image = image_files.get(stem)
        if image is None and ann is not None and ann["filename"]:
            alt = _confined(images, ann["filename"])
            if alt is None:
                report.add(xml, "bad_record", f"<filename> {ann['filename'][:80]!r} points outside {images}; "
                                              "ignored (a file name inside the images folder is expected)")
            image = alt if alt is not None and alt.is_file() else None
        if image is None:
            if xml is not None:
                report.add(xml, "label_without_image", f"no image '{stem}.*' in {images}")
            else:
                report.add(images / stem, "missing_image", "listed in the split but neither image nor XML exists")
            continue
        size = checked_size(image, report) if check_images else None
        if check_images and size is None:
            continue
        if ann is None:
            report.add(image, "background", f"no {stem}.xml in {annotations}")
            records.append(empty_record(image, stem, size or (0, 0)))
            continue
        if size is None:
            size = ann["size"]
        elif ann["size"] is not None and ann["size"] != size:
            report.add(xml, "size_mismatch", f"XML says {ann['size'][1]}x{ann['size'][0]}, "
                                             f"{image.name} is {size[1]}x{size[0]}")
        if size is None:
            size = probe_image(image)[0] or (0, 0)
        boxes, labels, difficult, what = [], [], [], []
        for k, obj in enumerate(ann["objects"]):
            if obj["name"] not in index:
                report.add(xml, "unknown_class", f"object {k} '{obj['name']}' is not one of {len(names)} names")
                continue
            boxes.append(obj["box"])
            labels.append(index[obj["name"]])
            difficult.append(obj["difficult"])
            what.append(f"object {k} '{obj['name']}'")
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        boxes, keep = sanitize_boxes(boxes, size, xml, report, what)
        records.append(Record(image, stem, size, boxes[keep], np.asarray(labels, np.int64)[keep],
                              np.asarray(difficult, bool)[keep], np.zeros(int(keep.sum()), bool), xml))
    return records, list(names)


def _confined(images: Path, filename: str) -> Path | None:
    """``images/<filename>`` when ``filename`` is a relative path that stays inside ``images`` (no absolute
    path, no ``..``, no link out of it), else None."""
    rel = Path(filename.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or "\0" in filename:
        return None
    cand = images / rel
    try:
        cand.resolve().relative_to(images.resolve())
    except (ValueError, OSError, RuntimeError):
        return None
    return cand


def _num(v: float) -> str:
    return str(int(round(v))) if abs(v - round(v)) < 1e-4 else f"{v:.6g}"


def write_voc_xml(record: Record, names: list[str], path: Path) -> None:
    """Write one record as VOC XML (1-based inclusive pixels, see the module docstring)."""
    h, w = record.size
    lines = ["<annotation>", "\t<folder>images</folder>", f"\t<filename>{record.path.name}</filename>",
             "\t<size>", f"\t\t<width>{w}</width>", f"\t\t<height>{h}</height>", "\t\t<depth>3</depth>",
             "\t</size>", "\t<segmented>0</segmented>"]
    for box, label, diff in zip(record.boxes, record.labels, record.difficult):
        x1, y1, x2, y2 = (float(v) for v in box)
        lines += ["\t<object>", f"\t\t<name>{_xml_escape(names[int(label)])}</name>",
                  "\t\t<pose>Unspecified</pose>", "\t\t<truncated>0</truncated>",
                  f"\t\t<difficult>{int(bool(diff))}</difficult>", "\t\t<bndbox>",
                  f"\t\t\t<xmin>{_num(x1 + 1)}</xmin>", f"\t\t\t<ymin>{_num(y1 + 1)}</ymin>",
                  f"\t\t\t<xmax>{_num(x2)}</xmax>", f"\t\t\t<ymax>{_num(y2)}</ymax>",
                  "\t\t</bndbox>", "\t</object>"]
    lines.append("</annotation>")
    path.write_text("\n".join(lines) + "\n")


def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
