"""Per-image drill-down at an operating score: true positives, false positives by TIDE error type, and
false negatives of each image, the outcome of every saved detection, and annotated PNGs of the images
with the most errors (``yolokit eval --worst K``).

The outcome comes from :func:`yolokit.eval.tide.tide` run on the detections with score >= ``conf`` (TIDE's
matching at IoU 0.5: the best free box of the detection's class, highest score first). A false negative is
a (non-ignored) box no such detection took; it is a ``Miss`` unless a Cls/Loc error points at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from yolokit.eval.tide import DET_ERRORS, FP, IGNORED, TP, TideResult, tide
from yolokit.eval.voc import Detections, GroundTruth

# BGR colours for the drawings: ground truth, TP and each error type
GT_COLOR, MISS_COLOR, TP_COLOR = (60, 200, 60), (0, 215, 255), (230, 150, 30)
ERROR_COLORS = {"Cls": (200, 60, 220), "Loc": (40, 40, 230), "Both": (90, 90, 160), "Dupe": (180, 180, 30),
                "Bkg": (40, 120, 255)}


def outcomes(result: TideResult) -> list[str]:
    """One word per detection: ``TP``, an error type (``Cls``, ``Loc``, ``Both``, ``Dupe``, ``Bkg``),
    ``ignored`` (on a crowd / difficult box), or ``dropped`` (beyond max_dets or below the score)."""
    words = np.array(["TP", "?", "ignored", "dropped"] + list(DET_ERRORS), dtype=object)
    code = np.where(result.status == FP, 4 + result.error, result.status)
    return list(words[code])


def per_image(gt: GroundTruth, det: Detections, conf: float = 0.25, num_classes: int | None = None):
    """``(rows, result, keep)``: one dict per image ``{"index", "image_id", "file", "gt", "TP", "FP", "FN",
    "Miss", "ignored", "errors", <each error type>}`` (errors = FP + FN), the :class:`TideResult` of the
    detections with score >= ``conf`` and that selection ``keep`` ``[D]``."""
    keep = det.scores >= conf
    sub = det.filter(keep)
    r = tide(gt, sub, num_classes=num_classes)
    n = gt.num_images
    counted = ~r.gt_ignored

    def count(mask, image):
        return np.bincount(image[mask], minlength=n)[:n]

    cols = {"gt": count(counted, gt.image), "TP": count(r.status == TP, sub.image),
            "FP": count(r.status == FP, sub.image), "FN": count(counted & ~r.gt_matched, gt.image),
            "Miss": count(r.gt_missed, gt.image), "ignored": count(r.status == IGNORED, sub.image)}
    for code, name in enumerate(DET_ERRORS):
        cols[name] = count((r.status == FP) & (r.error == code), sub.image)
    cols["errors"] = cols["FP"] + cols["FN"]
    files = gt.files or [""] * n
    rows = [{"index": i, "image_id": gt.image_ids[i] if isinstance(gt.image_ids[i], (int, str)) else str(gt.image_ids[i]),
             "file": str(files[i])} | {k: int(v[i]) for k, v in cols.items()} for i in range(n)]
    return rows, r, keep


def drilldown(gt: GroundTruth, det: Detections, conf: float = 0.25, num_classes: int | None = None) -> dict:
    """JSON-ready drill-down: ``{"conf", "images": [per image, most errors first], "outcome": [per
    detection, input order (that of detections.json)], "totals": {...}}``."""
    rows, r, keep = per_image(gt, det, conf, num_classes)
    outcome = np.full(len(det), "dropped", dtype=object)
    outcome[keep] = outcomes(r)
    totals = {k: int(sum(row[k] for row in rows)) for k in ("gt", "TP", "FP", "FN", "Miss", "ignored", *DET_ERRORS)}
    ranked = sorted(rows, key=lambda row: (-row["errors"], row["index"]))
    return {"conf": conf, "protocol": "TIDE matching at IoU 0.5 over detections with score >= conf",
            "totals": totals, "images": ranked, "outcome": list(outcome)}


def render_worst(gt: GroundTruth, det: Detections, class_names: Sequence[str], out_dir: str | Path, k: int,
                 conf: float = 0.25) -> list[Path]:
    """Draw the ``k`` images with the most errors (FP + FN at ``conf``) as PNGs in ``out_dir``: ground
    truth (green; missed boxes orange, thick), true positives (blue) and false positives labelled with
    their error type. The file name starts with the rank and the error count."""
    import cv2

    from yolokit.data.images import read_image

    rows, r, keep = per_image(gt, det, conf, len(class_names))
    sub = det.filter(keep)
    words = outcomes(r)
    ranked = sorted(rows, key=lambda row: (-row["errors"], row["index"]))[:k]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, row in enumerate(ranked, 1):
        if not row["file"]:
            continue
        image = cv2.cvtColor(read_image(row["file"]), cv2.COLOR_RGB2BGR)
        h, w = image.shape[:2]
        scale = max(1.0, 640 / max(h, w))  # small images are enlarged so labels stay legible
        if scale > 1:
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
        thick = max(1, round(max(image.shape[:2]) / 400))
        i = row["index"]
        for g in np.flatnonzero(gt.image == i):
            missed = not r.gt_matched[g] and not r.gt_ignored[g]
            color = MISS_COLOR if missed else GT_COLOR
            label = class_names[gt.labels[g]] + (" (ignored)" if r.gt_ignored[g] else "")
            _box(image, gt.boxes[g] * scale, color, thick * (2 if missed else 1), label, below=True)
        for d in np.flatnonzero(sub.image == i):
            word = words[d]
            if word == "TP":
                color = TP_COLOR
            elif word in ERROR_COLORS:
                color = ERROR_COLORS[word]
            else:
                continue
            label = f"{'' if word == 'TP' else word + ' '}{class_names[sub.labels[d]]} {sub.scores[d]:.2f}"
            _box(image, sub.boxes[d] * scale, color, thick, label)
        image = _legend(image, row, conf)
        path = out_dir / f"{rank:02d}_{row['errors']}err_{Path(row['file']).stem}.png"
        cv2.imwrite(str(path), image)
        written.append(path)
    return written


def _box(image, box, color, thick, label, below=False):
    import cv2

    x1, y1, x2, y2 = (int(round(v)) for v in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), color, thick, cv2.LINE_AA)
    font, fs = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    (tw, th), base = cv2.getTextSize(label, font, fs, 1)
    ty = min(y2 + th + 4, image.shape[0] - 2) if below else max(y1 - 4, th + 2)
    cv2.rectangle(image, (x1, ty - th - 2), (x1 + tw + 2, ty + base - 1), color, -1)
    cv2.putText(image, label, (x1 + 1, ty - 1), font, fs, (255, 255, 255), 1, cv2.LINE_AA)


def _legend(image, row, conf):
    """The image with a legend strip on top (counts at ``conf`` and the colour key)."""
    import cv2

    parts = [("GT", GT_COLOR), ("FN", MISS_COLOR), ("TP", TP_COLOR)] + list(ERROR_COLORS.items())
    text = (f"score>={conf:g}: TP {row['TP']}  FP {row['FP']} (" +
            " ".join(f"{k} {row[k]}" for k in DET_ERRORS if row[k]) + f")  FN {row['FN']}")
    font, fs = cv2.FONT_HERSHEY_SIMPLEX, 0.5
    image = cv2.copyMakeBorder(image, 46, 0, 0, 0, cv2.BORDER_CONSTANT, value=(30, 30, 30))
    cv2.putText(image, text, (6, 18), font, fs, (255, 255, 255), 1, cv2.LINE_AA)
    x = 6
    for name, color in parts:
        cv2.rectangle(image, (x, 26), (x + 14, 40), color, -1)
        cv2.putText(image, name, (x + 18, 39), font, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        x += 30 + 9 * len(name)
    return image
