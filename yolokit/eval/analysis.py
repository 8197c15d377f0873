"""COCO error-analysis bands (Hoiem et al., ECCV 2012, as COCO's MATLAB ``analyze()`` and mmdetection's
``tools/analysis_tools/coco_error_analysis.py``): precision-recall curves, through pycocotools, of

* ``C75`` / ``C50`` -- PR at IoU 0.75 / 0.5 (the COCO curves);
* ``Loc`` -- PR at IoU 0.1: localisation errors ignored (duplicates still count);
* ``Sim`` -- Loc, and detections on a box of another class of the same supercategory ignored;
* ``Oth`` -- Loc, and detections on a box of any other class ignored;
* ``BG``  -- every false positive removed (precision 1 wherever Oth reached any recall);
* ``FN``  -- every error removed (precision 1 everywhere).

The area between two curves is the AP that kind of error costs. "Ignored" is done as mmdetection does:
the other classes' boxes become crowd boxes of the analysed class, evaluated at IoU 0.1, one class at a time.
Each figure stacks the bands; the legend gives each curve's AP (mean precision over the 101 recalls).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Sequence

import numpy as np

BANDS = ("C75", "C50", "Loc", "Sim", "Oth", "BG", "FN")
AREAS = ("all", "small", "medium", "large")
# mmdetection's colours, band by band
COLORS = ((1, 1, 1), (1, 1, 1), (0.31, 0.51, 0.74), (0.75, 0.31, 0.30), (0.36, 0.90, 0.38),
          (0.50, 0.39, 0.64), (1, 0.6, 0))


def _evaluate(gt_dict: dict, results: list[dict], cat_ids, iou_thrs, img_ids, max_dets: int):
    """pycocotools precision ``[T, R, K, A]`` (maxDets ``max_dets``) for these categories only, and the
    evaluated ``COCOeval``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        if results:
            dt = gt.loadRes([dict(r) for r in results])
        else:
            dt = COCO()
            dt.dataset = {"images": gt_dict["images"], "categories": gt_dict["categories"], "annotations": []}
            dt.createIndex()
        ev = COCOeval(gt, dt, "bbox")
        ev.params.imgIds = list(img_ids)
        ev.params.catIds = list(cat_ids)
        ev.params.iouThrs = np.array(iou_thrs, float)
        ev.params.maxDets = [max_dets]
        ev.evaluate()
        ev.accumulate()
    return ev.eval["precision"][..., 0], ev


def analyze(gt_dict: dict, results: list[dict], img_ids: Sequence[int], max_dets: int = 100) -> dict:
    """The seven bands for every category of ``gt_dict`` (a COCO instances dict; ``supercategory`` of
    its categories is used when present, else each class is its own supercategory).

    Returns ``{"precision": [7, R, K, A] (0 where undefined), "recall": [R], "cat_ids": [K],
    "names": [K], "supercategories": [K], "n_gt": [K], "n_gt_area": [K, A] (boxes per area range), "lrp": oLRP (:func:`yolokit.eval.lrp.lrp_from_cocoeval`)}``."""
    cats = gt_dict["categories"]
    cat_ids = [c["id"] for c in cats]
    names = [str(c.get("name", c["id"])) for c in cats]
    sup = [str(c.get("supercategory") or c.get("name", c["id"])) for c in cats]
    img_set = set(img_ids)
    anns = [a for a in gt_dict["annotations"] if a["image_id"] in img_set]
    base, ev = _evaluate(gt_dict, results, cat_ids, [0.75, 0.5, 0.1], img_ids, max_dets)  # [3, R, K, A]
    from yolokit.eval.lrp import lrp_from_cocoeval

    lrp = lrp_from_cocoeval(ev, iou_index=1, area_index=0)  # IoU 0.5, all areas: the LRP api's setting
    ps = np.concatenate([base, np.zeros((4,) + base.shape[1:])])
    by_cat: dict = {}
    for r in results:
        by_cat.setdefault(r["category_id"], []).append(r)
    n_gt = np.array([sum(1 for a in anns if a["category_id"] == c and not a.get("iscrowd", 0)) for c in cat_ids])
    n_gt_area = np.zeros((len(cat_ids), len(AREAS)), np.int64)  # [K, A]: pycocotools' area ranges
    index = {c: k for k, c in enumerate(cat_ids)}
    for a in anns:
        if a.get("iscrowd", 0) or a["category_id"] not in index:
            continue
        area = a.get("area", a["bbox"][2] * a["bbox"][3])
        size = 1 if area < 32 ** 2 else 2 if area < 96 ** 2 else 3
        n_gt_area[index[a["category_id"]], [0, size]] += 1
    for k, cid in enumerate(cat_ids):
        dets = by_cat.get(cid, [])
        if not dets:
            continue  # no detections: precision stays 0 in every band but FN
        # Only images with a box or a detection of this class can change its curve (elsewhere the relabelled
        # boxes are crowd boxes that nothing lands on), so the runs are limited to them: same numbers, faster.
        imgs = {a["image_id"] for a in anns if a["category_id"] == cid} | {r["image_id"] for r in dets}
        sup_of = dict(zip(cat_ids, sup))
        for band, same_super_only in ((3, True), (4, False)):
            relabelled = []
            for a in anns:
                if a["image_id"] not in imgs:
                    continue
                if a["category_id"] == cid:
                    relabelled.append(a)
                elif not same_super_only or sup_of[a["category_id"]] == sup[k]:
                    # another class's box: a crowd box of this class, so detections on it are ignored
                    relabelled.append(dict(a, category_id=cid, iscrowd=1, ignore=1))
            g = dict(gt_dict, annotations=relabelled, images=[i for i in gt_dict["images"] if i["id"] in imgs])
            ps[band, :, k, :] = _evaluate(g, dets, [cid], [0.1], sorted(imgs), max_dets)[0][0, :, 0, :]
    ps[ps == -1] = 0
    ps[5] = ps[4] > 0
    ps[6] = 1.0
    from pycocotools.cocoeval import Params

    return {"precision": ps, "recall": Params(iouType="bbox").recThrs, "cat_ids": cat_ids, "names": names,
            "supercategories": sup, "n_gt": n_gt, "n_gt_area": n_gt_area, "lrp": lrp}


def band_aps(result: dict, which: Sequence[int] | None = None, area: int = 0) -> dict:
    """``{band: AP}`` (mean precision over recalls and the categories ``which``; default: all with ground
    truth) for one area range (0 all, 1 small, 2 medium, 3 large)."""
    ps = result["precision"][..., area]  # [7, R, K]
    if which is None:
        which = np.flatnonzero(result["n_gt"] > 0)
    sel = ps[:, :, list(which)]
    return {b: float(sel[i].mean()) if sel.size else 0.0 for i, b in enumerate(BANDS)}


def summary(result: dict) -> dict:
    """JSON-ready bands and LRP: ``{"lrp": {"moLRP", "moLRP_loc", "moLRP_fp", "moLRP_fn", "per_class"},
    "overall": {band: AP}, "per_class": {name: {band: AP}}, "supercategories": ...}``."""
    sup_of = {}
    for k, s in enumerate(result["supercategories"]):
        if result["n_gt"][k] > 0:
            sup_of.setdefault(s, []).append(k)
    name_of = dict(zip(result["cat_ids"], result["names"]))
    lrp = result["lrp"]
    lrp_out = {k: (None if v is None else round(v, 4)) for k, v in lrp.items() if k.startswith("moLRP")}
    lrp_out["per_class"] = {name_of[c]: {k: (None if v is None else round(v, 4)) for k, v in r.items()}
                            for c, r in lrp["per_category"].items()}
    return {"lrp": lrp_out, "overall": _round(band_aps(result)),
            "per_class": {n: _round(band_aps(result, [k])) for k, n in enumerate(result["names"])
                          if result["n_gt"][k] > 0},
            "supercategories": {s: _round(band_aps(result, ks)) for s, ks in sup_of.items()}}


def _round(d: dict) -> dict:
    return {k: round(v, 4) for k, v in d.items()}


def _draw(ax, rs, ps_curve: list, aps: list, title: str):
    prev = np.zeros_like(rs)
    for i, band in enumerate(BANDS):
        ax.plot(rs, ps_curve[i], color=(0, 0, 0), linewidth=0.5)
        ax.fill_between(rs, prev, ps_curve[i], color=COLORS[i], label=f"[{aps[i]:.3f}] {band}")
        prev = ps_curve[i]
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside the axes: bands stay visible


def _draw_empty(ax, title: str, text: str):
    """A panel for an area range without ground truth: pycocotools has no AP there (-1), not an all-FN curve."""
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title, fontsize=10)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, color="0.4")


def plot_bands(result: dict, out_dir: str | Path, per_class: bool = True) -> list[Path]:
    """PNGs under ``out_dir``: ``overall.png`` and one per supercategory (4 panels: all, small, medium,
    large areas) and, with ``per_class``, ``class_<name>.png`` (all areas) for each class with ground truth.
    The stacked bands are mmdetection's ``makeplot``."""
    from yolokit.eval.plots import new_figure, safe_filename

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rs = result["recall"]
    ps = result["precision"]
    have = np.flatnonzero(result["n_gt"] > 0)
    groups = [("overall", list(have))]
    sups: dict = {}
    for k in have:
        sups.setdefault(result["supercategories"][k], []).append(int(k))
    if len(sups) < len(have):  # supercategories that group several classes
        groups += [(f"super_{s}", ks) for s, ks in sups.items()]
    written = []
    for name, ks in groups:
        fig = new_figure(figsize=(13, 9), dpi=90)
        for a, area in enumerate(AREAS):
            ax = fig.add_subplot(2, 2, a + 1)
            if "n_gt_area" in result and not result["n_gt_area"][ks, a].sum():
                _draw_empty(ax, f"{name} ({len(ks)} classes), {area} areas", f"n/a: no {area} objects")
                continue
            sel = ps[:, :, ks, a]  # [7, R, k]
            _draw(ax, rs, list(sel.mean(axis=2)), [float(s.mean()) for s in sel],
                  f"{name} ({len(ks)} classes), {area} areas")
        fig.tight_layout()
        path = out_dir / f"{safe_filename(name)}.png"
        fig.savefig(path)
        written.append(path)
    if per_class:
        for k in have:
            fig = new_figure(figsize=(7, 4.6), dpi=85)
            ax = fig.add_subplot(1, 1, 1)
            sel = ps[:, :, k, 0]
            _draw(ax, rs, list(sel), [float(s.mean()) for s in sel],
                  f"{result['names'][k]} ({int(result['n_gt'][k])} boxes), all areas")
            fig.tight_layout()
            path = out_dir / f"class_{safe_filename(result['names'][k])}.png"
            fig.savefig(path)
            written.append(path)
    return written
