"""TIDE error breakdown (Bolya et al., "TIDE: A General Toolbox for Identifying Object Detection
Errors", ECCV 2020), computed as the reference implementation ``tidecv`` 1.0.1 does, vectorised.

Every detection (the ``max_dets`` highest-scoring of each image) is matched greedily in descending
score order to the unused ground-truth box of its class with the highest IoU >= ``pos_thresh``
(foreground, 0.5). Each detection that is not a true positive gets one error type, tested in this
order (tidecv's order, which decides overlaps):

* ``Bkg``  -- its image has no (non-ignored) ground truth;
* ``Loc``  -- ``bg <= max IoU with a box of its class <= fg`` (right class, poor box);
* ``Cls``  -- IoU >= fg with a box of another class (right box, wrong class);
* ``Dupe`` -- IoU >= fg with a box of its class that a higher-scoring detection already took;
* ``Bkg``  -- IoU <= bg with every box;
* ``Both`` -- anything else (tidecv's "OtherError": some overlap, wrong class and poor box).

A ground-truth box no detection took, and no Cls/Loc error points at, is a ``Miss``.

dAP of an error type = AP after fixing only that type's errors - AP, in AP points (0-100), clamped at
0 as tidecv does: Cls/Loc errors become true positives (the highest-scoring one per untaken box; the
others and those pointing at a taken box are removed); Dupe, Bkg, Both are removed; Miss lowers the
class's ground-truth count. The special errors: ``FalsePos`` = AP with every false positive scored
below every true positive - AP; ``FalseNeg`` = AP with the missed boxes removed from the ground truth
- AP (not clamped). AP is tidecv's: COCO's 101-point interpolation at IoU ``pos_thresh``, averaged
over classes that have ground truth *or* detections (a class with detections but no ground truth
counts as AP 0).

Where tidecv differs from the paper (or from pycocotools) this module follows tidecv:

* the paper's "Both" is "IoU in [bg, fg] with a box of another class"; tidecv's Both is the
  catch-all after the other tests (e.g. IoU in (bg, fg) with another class *and* < bg with its own);
* ``max_dets`` (100) is applied per image over all classes (pycocotools: per image and class);
* a class with detections but no ground truth enters the mean with AP 0 (pycocotools leaves it out),
  so TIDE's AP50 is not COCO's AP50;
* crowd / ignore regions (here: COCO ``iscrowd`` and VOC ``difficult`` boxes, each for its own class)
  ignore an unmatched detection whose intersection over its own area is > fg (pycocotools: >=), and
  such an ignored detection is still given an error type -- and a fixed Cls/Loc error can turn it
  into a true positive;
* the Loc test includes IoU == fg, so a detection at exactly 0.5 on a taken box is Loc, not Dupe;
* ties in score keep tidecv's order: image order, then within an image the detections' input order;
  when errors are fixed, error points come before true positives of equal score (that order is why
  tidecv clamps main dAPs at 0: "binning differences").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from yolokit.eval.voc import Detections, GroundTruth
from yolokit.ops.boxes_np import elementwise_iou

MAIN_ERRORS = ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss")
SPECIAL_ERRORS = ("FalsePos", "FalseNeg")
# error code of a detection (Miss belongs to ground truth)
CLS, LOC, BOTH, DUPE, BKG, NONE = 0, 1, 2, 3, 4, -1
DET_ERRORS = ("Cls", "Loc", "Both", "Dupe", "Bkg")
# detection status
TP, FP, IGNORED, DROPPED = 0, 1, 2, 3
STATUS = ("TP", "FP", "ignored", "dropped")


@dataclass
class TideResult:
    """TIDE's AP and dAPs (AP points, 0-100) and the per-detection / per-box outcome behind them.

    Per detection (input order, ``[D]``): ``status`` (TP / FP / IGNORED on a crowd or difficult box /
    DROPPED beyond ``max_dets``), ``error`` (code into :data:`DET_ERRORS`, -1 for none), ``target``
    (ground-truth index the detection matched or its error points at, -1 for none).
    Per ground-truth box (``[G]``): ``gt_matched``, ``gt_missed`` (a Miss error), ``gt_ignored``."""

    ap: float
    main: dict
    special: dict
    counts: dict
    status: np.ndarray
    error: np.ndarray
    target: np.ndarray
    gt_matched: np.ndarray
    gt_missed: np.ndarray
    gt_ignored: np.ndarray
    pos_thresh: float = 0.5
    bg_thresh: float = 0.1

    def to_dict(self, ndigits: int = 2) -> dict:
        """``{"ap", "main": {Cls..Miss}, "special": {FalsePos, FalseNeg}, "counts", "protocol"}``, AP points
        rounded as tidecv prints them."""
        r = (lambda v: round(float(v), ndigits))
        return {"ap": r(self.ap), "main": {k: r(v) for k, v in self.main.items()},
                "special": {k: r(v) for k, v in self.special.items()}, "counts": dict(self.counts),
                "protocol": {"pos_thresh": self.pos_thresh, "bg_thresh": self.bg_thresh, "reference": "tidecv 1.0.1"}}


def _segment_argmax(values: np.ndarray, seg_start: np.ndarray, count: np.ndarray):
    """Max and first arg-max (index into ``values``) of contiguous segments ``[S]``; segments must be
    non-empty. ``values`` ``[P]`` -> ``([S], [S])``."""
    seg_max = np.maximum.reduceat(values, seg_start)
    seg_id = np.repeat(np.arange(len(seg_start)), count)
    hit = np.flatnonzero(values == seg_max[seg_id])
    first = hit[np.r_[True, seg_id[hit][1:] != seg_id[hit][:-1]]]  # first max of each segment
    return seg_max, first


def _image_pairs(img_a: np.ndarray, img_b: np.ndarray, n_images: int):
    """All (a, b) index pairs with ``img_a[a] == img_b[b]``, a-major, b in ascending order:
    ``(pair_a, pair_b, seg_start [A], count [A])``."""
    order_b = np.argsort(img_b, kind="stable")
    per_img = np.bincount(img_b, minlength=n_images)
    first_b = np.r_[0, np.cumsum(per_img)[:-1]]
    count = per_img[img_a]
    seg_start = np.cumsum(count) - count
    total = int(count.sum())
    pair_a = np.repeat(np.arange(len(img_a)), count)
    within = np.arange(total) - np.repeat(seg_start, count)
    pair_b = order_b[np.repeat(first_b[img_a], count) + within]
    return pair_a, pair_b, seg_start, count


def tide_map(cls: np.ndarray, score: np.ndarray, tp: np.ndarray, key: np.ndarray, npos: np.ndarray) -> float:
    """tidecv's mAP (AP points) of scored points ``[N]`` (class, score, true/false positive, tie-break
    key: lower first among equal scores) with ``npos[c]`` ground-truth boxes per class.

    Per class: precision at each point in descending score order, the monotone envelope, then the
    mean of the envelope at the 101 recalls 0, 0.01, .., 1 (the first point with recall >= r, 0 past
    the last point). Classes with neither points nor ground truth are left out; a class with points
    but no ground truth has AP 0; with no class at all, 0."""
    n_cls = len(npos)
    npos = np.asarray(npos, np.int64)
    n_points = np.bincount(cls, minlength=n_cls)[:n_cls]
    present = (n_points > 0) | (npos > 0)
    if not present.any():  # nothing to average (tidecv divides by zero): no AP to gain or lose
        return 0.0
    order = np.lexsort((key, -score, cls))
    c = cls[order]
    t = tp[order].astype(np.int64)
    bounds = np.r_[0, np.cumsum(n_points)]
    pos = np.arange(len(c)) - bounds[c]  # position inside the class
    ctp_all = np.cumsum(t)
    ctp = ctp_all - np.r_[0, ctp_all][bounds[c]]  # cumulative TPs inside the class
    prec = ctp / (pos + 1)
    # monotone envelope: reversed running max restarted at each class (offset later classes upward)
    env = np.maximum.accumulate((prec + 2.0 * (n_cls - c))[::-1])[::-1] - 2.0 * (n_cls - c)
    # first point with recall >= i/100  <=>  ctp * 100 >= i * npos (exact in integers)
    stride = int(max(npos.max(initial=0), t.sum())) + 2  # > any cumulative TP count
    gkey = c * stride + ctp
    need = -((-np.arange(101)[None, :] * npos[:, None]) // 100)  # ceil(i * npos / 100), [C, 101]
    idx = np.searchsorted(gkey, np.arange(n_cls)[:, None] * stride + need, "left")  # [C, 101]
    inside = idx < bounds[1:, None]
    y = np.where(inside, env[np.minimum(idx, max(len(env) - 1, 0))] if len(env) else 0.0, 0.0)
    ap = np.where(npos > 0, y.mean(axis=1) * 100, 0.0)
    return float(ap[present].mean())


def tide(gt: GroundTruth, det: Detections, pos_thresh: float = 0.5, bg_thresh: float = 0.1,
         max_dets: int = 100, num_classes: int | None = None) -> TideResult:
    """TIDE's breakdown of ``det`` against ``gt`` (see the module docstring); tidecv 1.0.1's numbers.

    Difficult and crowd boxes are ignore regions of their class (neither counted nor missed)."""
    if num_classes is None:
        num_classes = int(max(gt.labels.max(initial=-1), det.labels.max(initial=-1))) + 1
    kept, k_rank = _top_detections(det, max_dets)
    k_img, k_cls, k_box = det.image[kept], det.labels[kept], det.boxes[kept]
    ignore = gt.difficult | gt.iscrowd
    normal = np.flatnonzero(~ignore)  # [G'] into gt
    g_img, g_cls, g_box = gt.image[normal], gt.labels[normal], gt.boxes[normal]

    # all (kept detection, box of its image) pairs, detection-major
    pairs = _image_pairs(k_img, g_img, gt.num_images)
    pa, pb = pairs[0], pairs[1]
    iou = elementwise_iou(k_box[pa], g_box[pb])  # [P]
    same = k_cls[pa] == g_cls[pb]
    k_match, g_used = _greedy_match(pa, pb, iou, same, k_rank, len(normal), pos_thresh)
    k_tp = k_match >= 0
    k_ign = _in_ignore_regions(k_img, k_cls, k_box, k_tp, gt, ignore, pos_thresh)
    k_err, k_tgt = _error_types(k_tp, k_match, pairs, iou, same, g_used, pos_thresh, bg_thresh)
    k_best, g_missed = _fixable(k_err, k_tgt, g_used)

    npos = np.bincount(g_cls, minlength=num_classes)[:num_classes]
    k_fp = ~k_tp & ~k_ign
    points = _Points(k_cls, det.scores[kept], k_tp, k_fp, k_err, k_tgt, k_best, g_cls, npos)
    ap = points.map()
    main = {name: max(points.fixed_map(name, g_missed) - ap, 0.0) for name in MAIN_ERRORS}
    fn_npos = np.bincount(g_cls[g_used], minlength=num_classes)[:num_classes]
    special = {"FalsePos": points.map(score=k_tp.astype(float), fixed_order=True) - ap,
               "FalseNeg": points.map(npos=fn_npos, fixed_order=True) - ap}

    D = len(det)
    status, error, target = np.full(D, DROPPED, np.int64), np.full(D, NONE, np.int64), np.full(D, -1, np.int64)
    status[kept] = np.where(k_tp, TP, np.where(k_ign, IGNORED, FP))
    error[kept] = k_err
    target[kept] = _take(normal, k_tgt, -1)
    gt_matched, gt_missed = np.zeros(len(gt), bool), np.zeros(len(gt), bool)
    gt_matched[normal[g_used]] = True
    gt_missed[normal[g_missed]] = True
    counts = {name: int((k_err == c).sum()) for c, name in enumerate(DET_ERRORS)} | {"Miss": int(g_missed.sum())}
    counts = {name: counts[name] for name in MAIN_ERRORS} | {"TP": int(k_tp.sum()), "FP": int(k_fp.sum())}
    return TideResult(ap=ap, main=main, special=special, counts=counts, status=status, error=error,
                      target=target, gt_matched=gt_matched, gt_missed=gt_missed, gt_ignored=ignore.copy(),
                      pos_thresh=pos_thresh, bg_thresh=bg_thresh)


def _top_detections(det: Detections, max_dets: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``max_dets`` best detections of each image in tidecv's order (image, -score, input order):
    ``(kept [K] indices into det -- position in kept = tidecv's push order --, their rank in their image)``."""
    D = len(det)
    order = np.lexsort((np.arange(D), -det.scores, det.image))
    img_sorted = det.image[order]
    rank = np.arange(D) - np.searchsorted(img_sorted, img_sorted, "left")
    return order[rank < max_dets], rank[rank < max_dets]


def _greedy_match(pa, pb, iou, same, k_rank, n_gt: int, pos_thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of detections to same-class boxes (IoU >= ``pos_thresh``): ``(k_match [K] index of the
    matched box or -1, g_used [G'])``. One score rank at a time: a rank holds at most one detection per image, so
    the detections of one rank never compete and each round is vectorised over all images."""
    g_used = np.zeros(n_gt, bool)
    k_match = np.full(len(k_rank), -1, np.int64)
    cand = np.flatnonzero(same & (iou >= pos_thresh))
    cand = cand[np.lexsort((pb[cand], -iou[cand], pa[cand], k_rank[pa[cand]]))]
    for lo, hi in zip(*_runs(k_rank[pa[cand]])):
        p = cand[lo:hi]
        p = p[~g_used[pb[p]]]
        if not len(p):
            continue
        first = p[np.r_[True, pa[p][1:] != pa[p][:-1]]]  # best free box of each detection
        k_match[pa[first]] = pb[first]
        g_used[pb[first]] = True
    return k_match, g_used


def _in_ignore_regions(k_img, k_cls, k_box, k_tp, gt: GroundTruth, ignore, pos_thresh: float) -> np.ndarray:
    """``[K]``: an unmatched detection inside a same-class crowd/difficult box (intersection over the
    detection's own area > ``pos_thresh``)."""
    k_ign = np.zeros(len(k_img), bool)
    ign = np.flatnonzero(ignore)
    if len(ign):
        ia, ib, _, _ = _image_pairs(k_img, gt.image[ign], gt.num_images)
        ok = (gt.labels[ign][ib] == k_cls[ia]) & ~k_tp[ia]
        ia, ib = ia[ok], ib[ok]
        a, b = k_box[ia], gt.boxes[ign][ib]
        iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
        ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
        area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
        crowd_iou = np.divide(iw * ih, area, out=np.zeros_like(area), where=area > 0)
        k_ign[ia[crowd_iou > pos_thresh]] = True
    return k_ign


def _error_types(k_tp, k_match, pairs, iou, same, g_used, pos_thresh: float, bg_thresh: float):
    """``(k_err [K], k_tgt [K])``: the error type of every detection that is not a TP (ignored ones included,
    as in tidecv) and the box it points at (-1: none)."""
    pa, pb, seg_start, count = pairs
    k_err = np.full(len(k_tp), NONE, np.int64)
    k_tgt = np.where(k_tp, k_match, -1)
    wrong = ~k_tp
    has_gt = count > 0
    k_err[wrong & ~has_gt] = BKG
    if len(iou):
        segs = np.flatnonzero(has_gt)
        st, cn = seg_start[segs], count[segs]
        m_cls, a_cls = _segment_argmax(np.where(same, iou, 0.0), st, cn)
        m_oth, a_oth = _segment_argmax(np.where(~same, iou, 0.0), st, cn)
        m_dup, a_dup = _segment_argmax(np.where(same & g_used[pb], iou, 0.0), st, cn)
        m_any = np.maximum.reduceat(iou, st)
        todo = wrong[segs]
        for code, hit, arg in ((LOC, (bg_thresh <= m_cls) & (m_cls <= pos_thresh), a_cls),
                               (CLS, m_oth >= pos_thresh, a_oth),
                               (DUPE, m_dup >= pos_thresh, a_dup),
                               (BKG, m_any <= bg_thresh, None)):
            sel = todo & hit
            k_err[segs[sel]] = code
            if arg is not None:
                k_tgt[segs[sel]] = pb[arg[sel]]
            todo &= ~hit
        k_err[segs[todo]] = BOTH
    return k_err, k_tgt


def _fixable(k_err, k_tgt, g_used) -> tuple[np.ndarray, np.ndarray]:
    """Cls/Loc fixes: per untaken box, the first (highest-scoring) error pointing at it is fixable.
    Returns ``(k_best [K] the fixable errors, g_missed [G'] boxes that nothing matched or could fix)``."""
    fixable_err = np.flatnonzero(((k_err == CLS) | (k_err == LOC)) & ~_take(g_used, k_tgt, True))
    usable = np.zeros(len(g_used), bool)
    usable[k_tgt[fixable_err]] = True
    _, first = np.unique(k_tgt[fixable_err], return_index=True)  # kept order = score order per image
    k_best = np.zeros(len(k_err), bool)
    k_best[fixable_err[first]] = True
    return k_best, ~g_used & ~usable


@dataclass
class _Points:
    """The scored points of the kept detections, and the mAP of the original and of each "fixed" run."""

    cls: np.ndarray
    score: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    err: np.ndarray
    tgt: np.ndarray
    best: np.ndarray
    g_cls: np.ndarray
    npos: np.ndarray

    def map(self, score=None, npos=None, fixed_order: bool = False) -> float:
        """mAP of the true and false positives (``score``/``npos`` replaced for the special errors); the
        tie-break is push order, or with ``fixed_order`` that of a fixed run."""
        keep = self.tp | self.fp
        score = self.score if score is None else score
        return tide_map(self.cls[keep], score[keep], self.tp[keep], self._key(fixed_order)[keep],
                        self.npos if npos is None else npos)

    def _key(self, fixed_order: bool) -> np.ndarray:
        k = len(self.cls)
        # points of a "fixed" run: error points first among equal scores, then true positives
        return np.where(self.tp, k, 0) + np.arange(k) if fixed_order else np.arange(k)

    def fixed_map(self, name: str, g_missed: np.ndarray) -> float:
        """mAP once the errors of type ``name`` are fixed (tidecv's oracles)."""
        code = {"Cls": CLS, "Loc": LOC, "Both": BOTH, "Dupe": DUPE, "Bkg": BKG, "Miss": None}[name]
        keep = self.tp | (self.fp & (self.err != code)) if code is not None else self.tp | self.fp
        pts_cls, tp, n = self.cls.copy(), self.tp.copy(), self.npos
        if code in (CLS, LOC):
            promote = (self.err == code) & self.best
            keep |= promote
            tp |= promote
            if code == CLS:
                pts_cls = np.where(promote, _take(self.g_cls, self.tgt, -1), pts_cls)
        elif name == "Miss":
            n = self.npos - np.bincount(self.g_cls[g_missed], minlength=len(self.npos))[:len(self.npos)]
        return tide_map(pts_cls[keep], self.score[keep], tp[keep], self._key(True)[keep], n)


def _take(values: np.ndarray, index: np.ndarray, fill) -> np.ndarray:
    """``values[index]`` where ``index >= 0``, else ``fill`` (also when ``values`` is empty)."""
    out = np.full(len(index), fill, dtype=values.dtype)
    ok = index >= 0
    out[ok] = values[index[ok]]
    return out


def _runs(sorted_keys: np.ndarray):
    """``(starts, ends)`` of the runs of equal values in a sorted array."""
    if not len(sorted_keys):
        return np.zeros(0, int), np.zeros(0, int)
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    return starts, np.r_[starts[1:], len(sorted_keys)]


def format_tide(t: dict) -> str:
    """Three lines for :func:`yolokit.eval.format_table`, from :meth:`TideResult.to_dict`."""
    p = t["protocol"]
    lines = [f"TIDE errors (IoU fg {p['pos_thresh']:g}, bg {p['bg_thresh']:g}; AP points as tidecv): "
             f"AP{int(round(100 * p['pos_thresh']))} {t['ap']:.2f}",
             "  main dAP:    " + "  ".join(f"{k} {v:.2f}" for k, v in t["main"].items()),
             "  special dAP: " + "  ".join(f"{k} {v:.2f}" for k, v in t["special"].items()),
             "  count:       " + "  ".join(f"{k} {t['counts'][k]}" for k in MAIN_ERRORS)
             + f"  (TP {t['counts']['TP']}, FP {t['counts']['FP']})"]
    return "\n".join(lines)
