"""``COCOevalVectorised``: pycocotools' ``COCOeval`` for boxes with ``evaluate`` and ``accumulate``
rewritten over flat numpy arrays. The results are pycocotools' results bit for bit (tests compare
``eval["precision"]``, ``eval["recall"]``, ``eval["scores"]`` and the 12 stats with ``==``).

What is reproduced, and how (pycocotools 2.0 ``cocoeval.py``):

* selection: the same ``getAnnIds(imgIds, catIds)`` lists; ``ignore = iscrowd``; per (image, category)
  detections sorted by descending score with a stable sort, cut at ``maxDets[-1]``;
* IoU: ``maskUtils.iou`` for boxes, the same float64 operations in the same order
  (``w = min(x+w) - max(x)``, ``u = da + ga - i``, crowd boxes ``u = da``), so the same doubles;
* greedy matching per (image, category, area range, IoU threshold), detections in score order: the
  best-IoU box that is not ignored and not taken (a crowd box can be taken many times) with IoU >= the
  threshold (``min(t, 1 - 1e-10)``), ties to the later box; only when no such box exists, the best
  ignored box. Unmatched detections outside the area range are ignored. This loop runs one detection
  rank at a time for all (image, category) groups together;
* accumulation: the same concatenation order (image, then rank), stable sort by score, cumulative
  sums, ``tp / (fp + tp + eps)``, the precision envelope (a reversed running maximum equals
  pycocotools' Python loop exactly, as max involves no rounding) and ``searchsorted`` at the recall
  thresholds.

Only ``iouType="bbox"`` with ``useCats=1`` is vectorised; anything else runs the stock code.
"""

from __future__ import annotations

import copy
import datetime

import numpy as np
from pycocotools.cocoeval import COCOeval


def _bbox_iou(d: np.ndarray, g: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of xywh boxes ``[..., 4]`` (broadcast against each other) as maskUtils' ``bbIou`` computes it;
    ``crowd`` (broadcast to the result) divides by the detection's area instead of the union."""
    da = d[..., 2] * d[..., 3]
    ga = g[..., 2] * g[..., 3]
    w = np.minimum(d[..., 2] + d[..., 0], g[..., 2] + g[..., 0]) - np.maximum(d[..., 0], g[..., 0])
    h = np.minimum(d[..., 3] + d[..., 1], g[..., 3] + g[..., 1]) - np.maximum(d[..., 1], g[..., 1])
    i = w * h
    u = np.where(crowd, da, da + ga - i)
    with np.errstate(divide="ignore", invalid="ignore"):
        o = i / u
    return np.where((w > 0) & (h > 0), o, 0.0)


def _plain(v):
    """A numpy scalar (np.unique's output) as the Python value the annotation dicts hold."""
    return v.item() if hasattr(v, "item") else v


def _next_pow2(n: np.ndarray) -> np.ndarray:
    return 1 << np.ceil(np.log2(np.maximum(n, 1))).astype(np.int64)


class COCOevalVectorised(COCOeval):
    """Drop-in ``COCOeval`` (bbox): ``evaluate()``, ``accumulate()``, ``summarize()`` as usual.
    ``evalImgs`` is not built (the per-image dicts are what made the stock code slow)."""

    def _supported(self) -> bool:
        p = self.params
        return p.iouType == "bbox" and p.useCats == 1 and getattr(p, "useSegm", None) is None

    # ------------------------------------------------------------------------- evaluate
    def evaluate(self):
        if not self._supported():
            self._stock = True
            return super().evaluate()
        self._stock = False
        p = self.params
        p.imgIds = list(np.unique(p.imgIds))
        p.catIds = list(np.unique(p.catIds))
        p.maxDets = sorted(p.maxDets)
        self.params = p
        img_index = {_plain(i): n for n, i in enumerate(p.imgIds)}
        cat_index = {_plain(c): n for n, c in enumerate(p.catIds)}
        gts = self.cocoGt.loadAnns(self.cocoGt.getAnnIds(imgIds=p.imgIds, catIds=p.catIds))
        dts = self.cocoDt.loadAnns(self.cocoDt.getAnnIds(imgIds=p.imgIds, catIds=p.catIds))
        n_img, n_cat = len(p.imgIds), len(p.catIds)
        A, T = len(p.areaRng), len(p.iouThrs)
        max_det = p.maxDets[-1]

        # ground truth, grouped by (image, category) in file order
        g_key = np.array([img_index[g["image_id"]] * n_cat + cat_index[g["category_id"]] for g in gts], np.int64)
        g_box = np.array([g["bbox"] for g in gts], np.float64).reshape(-1, 4)
        g_area = np.array([g["area"] for g in gts], np.float64)
        g_crowd = np.array([int(g["iscrowd"]) for g in gts], bool)
        g_ignore = np.array([bool("iscrowd" in g and g["iscrowd"]) for g in gts], bool)
        g_id = np.array([g["id"] for g in gts], np.float64)
        order = np.argsort(g_key, kind="stable")
        g_key, g_box, g_area, g_crowd, g_ignore, g_id = (x[order] for x in (g_key, g_box, g_area, g_crowd, g_ignore, g_id))
        area_rng = np.array(p.areaRng, np.float64)  # [A, 2]
        g_ig_area = g_ignore[None, :] | (g_area[None, :] < area_rng[:, :1]) | (g_area[None, :] > area_rng[:, 1:])  # [A, G]

        # detections, grouped by (image, category), by descending score (stable), cut at maxDets[-1]
        d_key = np.array([img_index[d["image_id"]] * n_cat + cat_index[d["category_id"]] for d in dts], np.int64)
        d_score = np.array([d["score"] for d in dts], np.float64)
        order = np.lexsort((-d_score, d_key))
        d_key, d_score = d_key[order], d_score[order]
        d_box = np.array([dts[i]["bbox"] for i in order], np.float64).reshape(-1, 4)
        d_area = np.array([dts[i]["area"] for i in order], np.float64)
        d_first = np.searchsorted(d_key, d_key, "left")
        d_rank = np.arange(len(d_key)) - d_first
        keep = d_rank < max_det
        d_key, d_score, d_box, d_area, d_rank = d_key[keep], d_score[keep], d_box[keep], d_area[keep], d_rank[keep]
        n_det = len(d_key)

        dtm = np.zeros((A, T, n_det), np.float64)   # matched gt id (0: unmatched)
        dt_ig = np.zeros((A, T, n_det), bool)
        self._match(g_key, g_box, g_crowd, g_ig_area, g_id, d_key, d_box, d_rank, dtm, dt_ig, np.asarray(p.iouThrs))
        d_out = (d_area[None, :] < area_rng[:, :1]) | (d_area[None, :] > area_rng[:, 1:])  # [A, D]
        dt_ig |= (dtm == 0) & d_out[:, None, :]

        self._flat = dict(g_key=g_key, g_ig_area=g_ig_area, d_key=d_key, d_score=d_score, d_rank=d_rank,
                          dtm=dtm, dt_ig=dt_ig, n_img=n_img, n_cat=n_cat)
        self.evalImgs = []
        self._paramsEval = copy.deepcopy(self.params)

    @staticmethod
    def _match(g_key, g_box, g_crowd, g_ig_area, g_id, d_key, d_box, d_rank, dtm, dt_ig, iou_thrs):
        """Fill ``dtm`` / ``dt_ig`` ``[A, T, D]`` with pycocotools' greedy matching, all groups at once."""
        A, T = dtm.shape[:2]
        thr = np.minimum(iou_thrs, 1 - 1e-10)  # [T]
        groups, d_start, d_count = np.unique(d_key, return_index=True, return_counts=True)
        g_start = np.searchsorted(g_key, groups, "left")
        g_count = np.searchsorted(g_key, groups, "right") - g_start
        has_gt = g_count > 0
        groups, d_start, d_count, g_start, g_count = (x[has_gt] for x in (groups, d_start, d_count, g_start, g_count))
        if not len(groups):
            return
        # bucket groups by padded sizes so that padding stays below 2x in both directions
        bucket = _next_pow2(d_count) * 4096 + _next_pow2(g_count)
        for b in np.unique(bucket):
            sel = np.flatnonzero(bucket == b)
            sel = sel[np.argsort(-d_count[sel], kind="stable")]  # active groups form a prefix at every rank
            nd, ng = d_count[sel], g_count[sel]
            N, Dp, Gp = len(sel), int(nd.max()), int(ng.max())
            gi = g_start[sel][:, None] + np.arange(Gp)[None, :]  # [N, Gp] gt index (padded)
            g_valid = np.arange(Gp)[None, :] < ng[:, None]
            gi = np.where(g_valid, gi, 0)
            di = d_start[sel][:, None] + np.arange(Dp)[None, :]  # [N, Dp]
            d_valid = np.arange(Dp)[None, :] < nd[:, None]
            di = np.where(d_valid, di, 0)
            iou = _bbox_iou(d_box[di][:, :, None, :], g_box[gi][:, None, :, :], g_crowd[gi][:, None, :])  # [N, Dp, Gp]
            iou = np.where(g_valid[:, None, :], iou, -np.inf)
            crowd = g_crowd[gi] & g_valid  # [N, Gp]
            ig = g_ig_area[:, gi].transpose(1, 0, 2)[:, :, None, :]  # [N, A, 1, Gp]
            taken = np.zeros((N, A, T, Gp), bool)
            rev = np.arange(Gp)[::-1]
            for k in range(Dp):
                n = int(np.count_nonzero(nd > k))  # groups with a detection at rank k
                x = iou[:n, k][:, None, None, :]  # [n, 1, 1, Gp]
                ok = (x >= thr[None, None, :, None]) & ~(taken[:n] & ~crowd[:n, None, None, :])
                regular = ok & ~ig[:n]
                use_regular = regular.any(-1, keepdims=True)
                cand = np.where(use_regular, regular, ok & ig[:n])  # [n, A, T, Gp]
                score = np.where(cand, x, -np.inf)
                best = score.max(-1, keepdims=True)
                hit = cand & (score == best)
                matched = hit.any(-1)  # [n, A, T]
                m = Gp - 1 - np.argmax(hit[..., rev], axis=-1)  # last of the tied best boxes
                det = di[:n, k]
                nn, aa, tt = np.nonzero(matched)
                mm = m[nn, aa, tt]
                gsel = gi[nn, mm]
                dtm[aa, tt, det[nn]] = g_id[gsel]
                dt_ig[aa, tt, det[nn]] = g_ig_area[aa, gsel]
                taken[nn, aa, tt, mm] = True

    # ------------------------------------------------------------------------- accumulate
    def accumulate(self, p=None):
        if getattr(self, "_stock", True) or (p is not None and p is not self.params):
            return super().accumulate(p)
        p = self.params
        f = self._flat
        T, R, K, A, M = len(p.iouThrs), len(p.recThrs), len(p.catIds), len(p.areaRng), len(p.maxDets)
        precision = -np.ones((T, R, K, A, M))
        recall = -np.ones((T, K, A, M))
        scores = -np.ones((T, R, K, A, M))
        rec_thrs = np.asarray(p.recThrs)
        n_cat = f["n_cat"]
        g_cat = f["g_key"] % n_cat
        d_cat = f["d_key"] % n_cat
        # per (category, area) count of boxes that are not ignored ("npig")
        npig_all = np.zeros((K, A), np.int64)
        for a in range(A):
            npig_all[:, a] = np.bincount(g_cat[~f["g_ig_area"][a]], minlength=K)[:K]
        d_by_cat = np.argsort(d_cat, kind="stable")  # keeps (image, rank) order inside a category
        bounds = np.searchsorted(d_cat[d_by_cat], np.arange(K + 1))
        eps = np.spacing(1)
        for k in range(K):
            idx_k = d_by_cat[bounds[k]:bounds[k + 1]]
            for a in range(A):
                npig = int(npig_all[k, a])
                if npig == 0:
                    continue
                for m, max_det in enumerate(p.maxDets):
                    idx = idx_k[f["d_rank"][idx_k] < max_det]
                    s = f["d_score"][idx]
                    inds = np.argsort(-s, kind="mergesort")
                    s_sorted = s[inds]
                    dtm = f["dtm"][a][:, idx[inds]]  # [T, n]
                    dt_ig = f["dt_ig"][a][:, idx[inds]]
                    tps = np.logical_and(dtm, np.logical_not(dt_ig))
                    fps = np.logical_and(np.logical_not(dtm), np.logical_not(dt_ig))
                    tp_sum = np.cumsum(tps, axis=1).astype(dtype=float)
                    fp_sum = np.cumsum(fps, axis=1).astype(dtype=float)
                    nd = tp_sum.shape[1]
                    rc = tp_sum / npig
                    pr = tp_sum / (fp_sum + tp_sum + eps)
                    recall[:, k, a, m] = rc[:, -1] if nd else 0
                    if nd == 0:
                        precision[:, :, k, a, m] = 0
                        scores[:, :, k, a, m] = 0
                        continue
                    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # precision envelope
                    for t in range(T):
                        pi = np.searchsorted(rc[t], rec_thrs, side="left")
                        inside = pi < nd
                        pc = np.minimum(pi, nd - 1)
                        precision[t, :, k, a, m] = np.where(inside, pr[t, pc], 0.0)
                        scores[t, :, k, a, m] = np.where(inside, s_sorted[pc], 0.0)
        self.eval = {"params": p, "counts": [T, R, K, A, M],
                     "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                     "precision": precision, "recall": recall, "scores": scores}
