"""CLEAR-MOT and identity metrics (MOTA, IDF1, ID switches, mostly tracked/lost) via py-motmetrics.

py-motmetrics is the evaluator SORT's and most trackers' published figures come from. Its version
1.4.0 (the latest) builds the IoU distance matrix with ``np.asfarray``, which NumPy 2 removed. We do
not call that function: :func:`accumulate` computes the same matrix itself (``1 - IoU``, NaN above
``1 - iou`` = "may not pair") and hands it to ``MOTAccumulator.update``; everything after that
(matching with ID continuity, the metric formulas) is motmetrics' own code, unpatched. No monkey
patching of numpy or motmetrics, so the figures are exactly motmetrics' on either NumPy.

motmetrics is an optional dependency: ``pip install yolokit[track]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from yolokit.ops.boxes_np import box_iou, xywh_to_xyxy

#: Reported metrics: motmetrics name -> our column name.
METRICS = {"mota": "MOTA", "idf1": "IDF1", "num_switches": "IDsw", "mostly_tracked": "MT",
           "mostly_lost": "ML", "num_false_positives": "FP", "num_misses": "FN", "precision": "Prcn",
           "recall": "Rcll", "num_unique_objects": "GT"}


def _import_motmetrics():
    try:
        import motmetrics
    except ModuleNotFoundError:
        from yolokit.errors import ConfigError

        raise ConfigError("scoring tracks needs py-motmetrics: pip install 'yolokit[track]'") from None
    return motmetrics


def accumulate(gt: np.ndarray, hyp: np.ndarray, iou: float = 0.5):
    """A ``motmetrics.MOTAccumulator`` over all frames of MOT rows ``gt`` and ``hyp`` (``[L, 7+]``,
    ``frame, id, x, y, w, h, ...``); a pair counts as a match when its IoU >= ``iou``.

    Ground-truth rows whose 7th column (the MOT "consider" flag) is 0 are ignored, as motmetrics'
    ``eval_motchallenge`` does with ``min_confidence=1``."""
    mm = _import_motmetrics()
    gt = gt[gt[:, 6] >= 1]
    acc = mm.MOTAccumulator(auto_id=False)
    frames = np.union1d(gt[:, 0], hyp[:, 0]).astype(np.int64)
    gt_by = {f: gt[gt[:, 0] == f] for f in np.unique(gt[:, 0]).astype(np.int64)}
    hyp_by = {f: hyp[hyp[:, 0] == f] for f in np.unique(hyp[:, 0]).astype(np.int64)}
    empty = np.empty((0, hyp.shape[1] if hyp.ndim == 2 else 7))
    for f in frames:
        g, h = gt_by.get(f, empty), hyp_by.get(f, empty)
        dist = 1.0 - box_iou(xywh_to_xyxy(g[:, 2:6]), xywh_to_xyxy(h[:, 2:6]))          # [G, H], motmetrics' iou_matrix
        dist[dist > 1.0 - iou] = np.nan
        acc.update(g[:, 1].astype(np.int64), h[:, 1].astype(np.int64), dist, frameid=int(f))
    return acc


def summarize(accs: dict[str, object]) -> dict[str, dict[str, float]]:
    """Metrics per sequence, plus ``"OVERALL"`` (motmetrics' combination) when there are several."""
    mm = _import_motmetrics()
    names = list(accs)
    summary = mm.metrics.create().compute_many([accs[n] for n in names], metrics=list(METRICS), names=names,
                                               generate_overall=len(names) > 1)
    out = {}
    for name, row in summary.iterrows():
        out["OVERALL" if name == "OVERALL" else str(name)] = {METRICS[k]: float(row[k]) for k in METRICS}
    return out


def score_files(pairs: dict[str, tuple[str | Path, str | Path]], iou: float = 0.5) -> dict[str, dict[str, float]]:
    """``{sequence: (gt.txt, result.txt)}`` -> :func:`summarize` of their accumulators."""
    from yolokit.track.mot import read_mot

    return summarize({name: accumulate(read_mot(gt), read_mot(res), iou) for name, (gt, res) in pairs.items()})


def format_summary(summary: dict[str, dict[str, float]]) -> str:
    """A plain-text table: one line per sequence, MOTA/IDF1/precision/recall as fractions."""
    cols = list(METRICS.values())
    lines = [f"{'sequence':<16}" + "".join(f"{c:>7}" for c in cols)]
    for name, m in summary.items():
        cells = "".join(f"{m[c]:>7.3f}" if c in ("MOTA", "IDF1", "Prcn", "Rcll") else f"{int(m[c]):>7d}"
                        for c in cols)
        lines.append(f"{name:<16}{cells}")
    return "\n".join(lines)


def motmetrics_gt(sequence: str) -> Path | None:
    """The ground truth that the motmetrics wheel ships (TUD-Campus, TUD-Stadtmitte), or None."""
    try:
        import motmetrics
    except ModuleNotFoundError:
        return None
    path = Path(motmetrics.__file__).parent / "data" / sequence / "gt.txt"
    return path if path.is_file() else None
