"""Convert a dataset between COCO JSON, Pascal VOC XML and YOLO txt. Images are never copied or moved.

``convert(spec, "coco" | "voc" | "yolo", out_dir)`` writes, per split::

    coco: out_dir/annotations/instances_<split>.json   (category ids kept from COCO input, else 1..K)
    voc:  out_dir/Annotations/<stem>.xml + out_dir/ImageSets/Main/<split>.txt
    yolo: out_dir/labels/<split>/<stem>.txt (an empty file for a background image) + out_dir/names.txt

plus ``out_dir/data.yaml``, a dataset description of the result whose ``images`` point back at the
original image folders, so ``load_dataset(out_dir / "data.yaml", split)`` reads the converted copy.

What a format cannot hold is counted, never dropped silently: YOLO txt has no ``iscrowd`` (crowd boxes
are left out) and no ``difficult`` (the boxes are written, the flag is lost); VOC has no ``iscrowd``
(crowd boxes are written as ``difficult``, the nearest meaning: ignored by evaluation). COCO keeps
``difficult`` in an extra key (see ``yolokit/data/coco.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from yolokit.errors import ConfigError

TARGETS = ("coco", "voc", "yolo")


def _image_dir(records, split: str) -> Path:
    parents = {r.path.parent for r in records}
    if len(parents) > 1:
        raise ConfigError(f"split '{split}': images live in {len(parents)} folders ({sorted(map(str, parents))[:3]}...); "
                          "converting needs one image folder per split")
    return parents.pop() if parents else Path(".")


def _check_stems(records, split: str) -> None:
    """VOC and YOLO name a label file by its image's stem: two images with one stem (``a.jpg``, ``a.png``)
    would write one file over the other, so that is an error naming both."""
    seen = {}
    for r in records:
        other = seen.setdefault(r.path.stem, r.path)
        if other != r.path:
            raise ConfigError(f"split '{split}': {other.name} and {r.path.name} share the stem '{r.path.stem}'; "
                              "VOC and YOLO name label files by stem, so one would overwrite the other "
                              "(rename one, or convert to coco)")


def _rel(path: Path, start: Path) -> str:
    return os.path.relpath(path.resolve(), start.resolve())


def convert(spec, to: str, out_dir, splits: list[str] | None = None) -> dict:
    """Convert every split (or ``splits``) of ``spec`` to format ``to`` under ``out_dir``.

    Returns ``{"splits": {name: {"images", "boxes", "written", "crowd_dropped", "difficult_lost"}},
    "problems": [Problem, ...], "yaml": Path}`` -- problems are those of the source, as ``check`` lists them.
    """
    import yaml

    from yolokit.data.config import read_spec

    if to not in TARGETS:
        raise ConfigError(f"convert: target format must be one of {TARGETS}, got {to!r}")
    data, _, _ = read_spec(spec)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"convert: output {out} exists and is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Everything is written to a temporary folder beside OUT and moved in at the end, so a conversion that
    # stops half way (bad data, a full disk) leaves no partial dataset behind.
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(work, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        result = _convert(spec, data, to, out, work, splits, yaml)
        _move_in(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _move_in(work: Path, out: Path) -> None:
    """Put the converted files of ``work`` at their places under ``out``: one rename for a new folder, else one
    ``os.replace`` per file (other files already in ``out`` stay)."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        os.replace(work, out)
        return
    for src in sorted(p for p in work.rglob("*") if p.is_file()):
        dst = out / src.relative_to(work)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)


def _convert(spec, data, to, out: Path, work: Path, splits, yaml) -> dict:
    """The conversion proper: paths are named as under ``out`` (the description refers to them) and
    written under ``work``."""
    from yolokit.data.load import load_dataset

    def w(path: Path) -> Path:  # where a file named under out is written now
        target = work / path.relative_to(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    names_seen = None
    summary, problems, desc_splits = {}, [], {}
    for split in splits or list(data["splits"]):
        ds = load_dataset(spec, split)
        problems.extend(ds.problems)
        if names_seen is not None and names_seen != ds.class_names:
            raise ConfigError(f"split '{split}' has other class names than the previous split")
        names_seen = ds.class_names
        img_dir = _image_dir(ds.records, split)
        if to in ("voc", "yolo"):
            _check_stems(ds.records, split)
        stats = {"images": len(ds), "boxes": ds.num_boxes, "written": 0, "crowd_dropped": 0, "difficult_lost": 0}
        if to == "coco":
            from yolokit.data.coco import records_to_coco

            ann = out / "annotations" / f"instances_{split}.json"
            coco = records_to_coco(ds.records, ds.class_names, ds.index_to_cat_id)
            w(ann).write_text(json.dumps(coco, allow_nan=False))
            stats["written"] = len(coco["annotations"])
            desc_splits[split] = {"images": _rel(img_dir, out), "annotations": _rel(ann, out)}
        elif to == "voc":
            from dataclasses import replace

            from yolokit.data.voc import write_voc_xml

            stems = []
            for r in ds.records:
                stem = r.path.stem
                stems.append(stem)
                crowd_as_difficult = replace(r, difficult=r.difficult | r.iscrowd)
                write_voc_xml(crowd_as_difficult, ds.class_names, w(out / "Annotations" / f"{stem}.xml"))
                stats["written"] += len(r.boxes)
            from yolokit.data.split import write_list

            # <split>.txt, or <split>.csv when an image name holds a space or a line break (it reads back whole)
            lst = out / "ImageSets" / "Main" / write_list(w(out / "ImageSets" / "Main" / "x").parent, split, stems).name
            desc_splits[split] = {"images": _rel(img_dir, out), "annotations": "Annotations", "list": _rel(lst, out)}
        else:
            from dataclasses import replace

            from yolokit.data.yolo import format_yolo_lines

            lab_dir = out / "labels" / split
            w(lab_dir / "x").parent.mkdir(parents=True, exist_ok=True)  # a split without images keeps its folder
            for r in ds.records:
                keep = ~r.iscrowd
                stats["crowd_dropped"] += int(r.iscrowd.sum())
                stats["difficult_lost"] += int((r.difficult & keep).sum())
                kept = replace(r, boxes=r.boxes[keep], labels=r.labels[keep], difficult=r.difficult[keep],
                               iscrowd=r.iscrowd[keep])
                lines = format_yolo_lines(kept)
                w(lab_dir / f"{r.path.stem}.txt").write_text("".join(ln + "\n" for ln in lines))
                stats["written"] += len(lines)
            desc_splits[split] = {"images": _rel(img_dir, out), "labels": _rel(lab_dir, out)}
        summary[split] = stats
    desc = {"description": f"converted to {to} by yolokit convert", "format": to, "root": "."}
    if to == "yolo":
        from yolokit.data.config import check_names

        # one name a line: a name with a line break would become two classes when read back
        check_names(list(names_seen or []), "convert: the class names")
        w(out / "names.txt").write_text("".join(n + "\n" for n in names_seen or []))
        desc["names"] = "names.txt"
    elif to == "voc":
        desc["names"] = list(names_seen or [])
    desc["splits"] = desc_splits
    yaml_path = out / "data.yaml"
    w(yaml_path).write_text(yaml.safe_dump(desc, sort_keys=False))
    return {"splits": summary, "problems": problems, "yaml": yaml_path}
