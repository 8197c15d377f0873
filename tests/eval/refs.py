"""Readers for the shared reference data (ground truth / detections in the upstream tools' formats)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np


def read_cartucho(root: Path):
    """Cartucho/mAP input: per-image ``<name> l t r b [difficult]`` and ``<name> score l t r b``.

    Returns per-image lists (gt boxes, gt labels, gt difficult, dets (K, 6)) and the class names
    (ground-truth classes first, in order of appearance)."""
    names: dict[str, int] = {}
    gb, gl, gd, dets = [], [], [], []
    for f in sorted((root / "ground-truth").glob("*.txt")):
        b, lab, d = [], [], []
        for line in f.read_text().splitlines():
            t = line.split()
            if not t:
                continue
            diff = t[-1] == "difficult"
            t = t[:-1] if diff else t
            lab.append(names.setdefault(t[0], len(names)))
            b.append([float(x) for x in t[1:5]])
            d.append(diff)
        gb.append(np.array(b).reshape(-1, 4))
        gl.append(lab)
        gd.append(d)
        rows = []
        for line in (root / "detection-results" / f.name).read_text().splitlines():
            t = line.split()
            if t:
                rows.append([*map(float, t[2:6]), float(t[1]), names.setdefault(t[0], len(names))])
        dets.append(np.array(rows).reshape(-1, 6))
    return gb, gl, gd, dets, list(names)


def cartucho_reference(path: Path) -> tuple[float, dict[str, float]]:
    """(mAP %, {class: AP %}) from the Cartucho REFERENCE_RESULTS.txt."""
    text = path.read_text()
    per_class = {m[1]: float(m[0]) for m in re.findall(r"^([\d.]+)% = (\S+) AP", text, re.M)}
    return float(re.search(r"^mAP = ([\d.]+)%", text, re.M)[1]), per_class


def rodm_voc_reference(path: Path) -> tuple[float, dict[str, float]]:
    """(mAP %, {class: AP %}) of section 2a of voc2012_rodm/REFERENCE_RESULTS.txt."""
    text = path.read_text().split("2) data/database", 1)[1].split("b) COCO protocol", 1)[0]
    mAP = float(re.search(r"mAP = ([\d.]+)%", text)[1])
    block = text.split("mAP =", 1)[1].split("\n", 1)[1]
    per_class = {m[0]: float(m[1]) for m in re.findall(r"([a-z]+) ([\d.]+)", block)}
    return mAP, per_class


def rodm_coco_reference(path: Path, section: str) -> dict[str, float]:
    """The 12 pycocotools stats of section ``"1)"`` (test_coco_eval) or ``"2b"`` of the rodm file."""
    text = path.read_text()
    if section == "1)":
        text = text.split("1) tests/test_coco_eval", 1)[1].split("2) data/database", 1)[0]
    else:
        text = text.split("b) COCO protocol", 1)[1].split("3) tests/test_case_1", 1)[0]
    return {k: float(v) for k, v in re.findall(r"\b(A[PR]\w*)=([\d.]+)", text)}
