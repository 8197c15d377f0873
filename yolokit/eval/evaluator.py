"""The single entry point :func:`evaluate` (ground truth + detections -> metrics dict, table, files)
and :func:`evaluate_model` (run a detector over a dataset, then evaluate).

Metric keys (fractions in [0, 1]; ``None`` where undefined):

* ``voc``   -- VOC2010+ all-point mAP at IoU ``iou_thres`` (0.5), difficult boxes ignored;
* ``voc07`` -- VOC2007 11-point mAP, same matching;
* ``coco``  -- pycocotools' 12 stats ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", ..., "ARl"}``;
* ``per_class`` -- ``{name: {"n_gt", "n_det", "voc", "voc07", "precision", "recall", "coco_AP", "coco_AP50"}}``;
* ``at_conf`` -- pooled precision / recall / F1 (VOC matching) over detections with score >= ``conf``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from yolokit.errors import DataError
from yolokit.eval.coco import coco_evaluate, coco_image_ids, detections_to_coco, ground_truth_to_coco, save_coco_results
from yolokit.eval.inputs import ground_truth_and_names, read_detections
from yolokit.eval.voc import Detections, GroundTruth, voc_evaluate
from yolokit.fileio import write_text_atomic

METRICS = ("voc07", "voc", "coco")


# ----------------------------------------------------------------------------- evaluate
def _num(v):
    v = float(v)
    return None if math.isnan(v) else v


def evaluate(gt, detections, class_names: Sequence[str] | None = None, *,
             metrics: Iterable[str] = METRICS, match_iou: float = 0.5, pixel_offset: float = 0.0,
             report_conf: float = 0.25, coco_gt=None, category_ids: Sequence[int] | None = None,
             coco_max_dets: int = 100, coco_backend: str = "pycocotools", save_dir: str | Path | None = None,
             plots: bool = False, tide: bool = False, analysis: bool = False, worst: int = 0) -> dict:
    """Evaluate detections against ground truth; returns the metrics dict (module docstring).

    ``gt``: a dataset from :func:`yolokit.data.load_dataset`, a list of samples/records, or a
    :class:`GroundTruth`. ``detections``: one ``(K, 6)`` ``[x1, y1, x2, y2, score, class]`` per image
    (dataset order), a :class:`Detections`, a COCO results list / dict, or a path to a JSON of one.
    ``pixel_offset``: 0 = continuous boxes (default), 1 = VOC devkit "+1 pixel" IoU. ``coco_backend``:
    "pycocotools" (stock COCOeval, default) or "faster" (faster-coco-eval, optional). ``coco_gt``: the
    COCO ground truth to score against (path / dict / COCO); defaults to the dataset's own COCO file,
    else one built from ``gt`` (box areas). ``category_ids``: how a results list's ids map to classes --
    "zero", "one", "coco91" or a list (default: the COCO dataset's ids, else inferred from the ids the
    file uses, see :func:`infer_category_ids`). ``save_dir``: write metrics.json, metrics.txt,
    detections.json and, with ``plots``, PR-curve and confusion-matrix PNGs. ``tide``, ``analysis``,
    ``worst``: TIDE breakdown, COCO analysis bands, worst-image drawings (:mod:`yolokit.eval.explain`).
    ``match_iou``: the VOC matching IoU; ``report_conf``: the score of the precision/recall line, confusion matrix
    and drill-down; ``coco_max_dets``: COCOeval's maxDets for AP.
    """
    metrics = tuple(metrics)
    bad = set(metrics) - set(METRICS)
    if bad:
        raise DataError(f"unknown metric(s) {sorted(bad)}: expected {METRICS}")
    dataset = None if isinstance(gt, (GroundTruth, list)) else gt
    g, class_names = ground_truth_and_names(gt, class_names)
    det, skipped, category_ids = read_detections(detections, g, dataset, class_names, category_ids)

    out: dict = {"images": g.num_images, "objects": len(g), "detections": len(det),
                 "skipped": {k: v for k, v in skipped.items() if v},
                 "protocol": {"iou": match_iou, "pixel_offset": pixel_offset, "difficult": "ignored",
                              "coco_backend": coco_backend, "max_dets": coco_max_dets}}
    voc = voc_evaluate(g, det, len(class_names), match_iou, pixel_offset)
    pr = _voc_metrics(out, voc, metrics, report_conf)
    coco_res = None
    if "coco" in metrics:
        img_ids = coco_image_ids(g.image_ids)
        coco_gt, restrict = _coco_ground_truth(coco_gt, dataset, g, category_ids, class_names, img_ids)
        coco_res = coco_evaluate(coco_gt, detections_to_coco(det, img_ids, category_ids), max_dets=coco_max_dets,
                                 backend=coco_backend, image_ids=restrict)
        out["coco"] = coco_res.stats
    out["per_class"] = _per_class(det, voc, pr, coco_res, class_names, category_ids)
    from yolokit.eval.explain import explain  # F1-optimal thresholds; TIDE, analysis, drill-down on request

    out.update(explain(g, det, voc, class_names, category_ids, conf=report_conf, coco_gt=coco_gt,
                       max_dets=coco_max_dets, tide=tide, analysis=analysis, worst=worst, save_dir=save_dir))
    if save_dir is not None:
        _save(Path(save_dir), out, g, det, voc, class_names, category_ids, plots, report_conf, match_iou)
    return out


def _voc_metrics(out: dict, voc, metrics: tuple, report_conf: float) -> dict:
    """VOC mAPs (all-point and 11-point) and the precision/recall line at ``report_conf`` into ``out``;
    returns that line's per-class figures."""
    if "voc07" in metrics:
        out["voc07"] = _num(voc.map07)
    if "voc" in metrics:
        out["voc"] = _num(voc.map)
    pr = voc.precision_recall_at(report_conf)
    out["at_conf"] = {k: _num(pr[k]) for k in ("precision", "recall", "f1")} | {
        "conf": report_conf, "tp": pr["tp"], "fp": pr["fp"]}
    return pr


def _coco_ground_truth(coco_gt, dataset, g: GroundTruth, category_ids, class_names, img_ids):
    """``(COCO ground truth, image ids to score or None)``: the caller's, else the dataset's own file (a split
    of a bigger file: only this split's images are scored), else one built from ``g`` (box areas)."""
    if coco_gt is None and getattr(dataset, "coco", None) is not None:
        coco_gt = dataset.coco
    if coco_gt is None:
        return ground_truth_to_coco(g, category_ids, class_names, img_ids), None
    return coco_gt, img_ids


def _per_class(det: Detections, voc, pr: dict, coco_res, class_names: list[str], category_ids) -> dict:
    """One row of counts, VOC APs, precision/recall (and COCO AP/AP50) per class name."""
    n_det = np.bincount(det.labels, minlength=len(class_names))[:len(class_names)]
    per_class = {}
    for c, name in enumerate(class_names):
        row = {"n_gt": int(voc.npos[c]), "n_det": int(n_det[c]),
               "voc": _num(voc.ap[c]), "voc07": _num(voc.ap07[c]),
               "precision": _num(pr["per_class_precision"][c]), "recall": _num(pr["per_class_recall"][c])}
        if coco_res is not None:
            pc = coco_res.per_category.get(int(category_ids[c]), {})
            row["coco_AP"] = _num(pc.get("AP", float("nan")))
            row["coco_AP50"] = _num(pc.get("AP50", float("nan")))
        per_class[name] = row
    return per_class


def _save(save_dir: Path, out: dict, g: GroundTruth, det: Detections, voc, class_names: list[str], category_ids,
          plots: bool, report_conf: float, match_iou: float) -> None:
    """detections.json, with ``plots`` PR curves and the confusion matrix, then metrics.txt and metrics.json.

    Each file is written atomically, and metrics.json comes LAST: it marks a finished evaluation, so a run
    killed half way (SIGTERM) never leaves a folder that looks complete."""
    save_dir.mkdir(parents=True, exist_ok=True)
    save_coco_results(save_dir / "detections.json", detections_to_coco(det, coco_image_ids(g.image_ids), category_ids))
    if plots:
        from yolokit.eval.confusion import confusion_matrix
        from yolokit.eval.plots import plot_confusion_matrix, plot_pr_curves

        plot_pr_curves(voc, class_names, save_dir / "pr")
        cm = confusion_matrix(g, det, len(class_names), conf=report_conf, iou_thres=match_iou)
        plot_confusion_matrix(cm, class_names, save_dir / "confusion_matrix.png")
        import csv
        import io

        buf = io.StringIO()  # the csv module quotes a class name holding a comma or a quote
        writer = csv.writer(buf, lineterminator="\n")
        if len(class_names) <= 1000:
            writer.writerow(["# " + (class_names + ["background"])[0], *(class_names + ["background"])[1:]])
            writer.writerows(cm.tolist())
        else:  # 10,000 classes: 10^8 cells, nearly all zero; the non-zero ones as (true, predicted, count)
            writer.writerow(["# true", "predicted", "count"])
            names = class_names + ["background"]
            writer.writerows((names[i], names[j], int(cm[i, j])) for i, j in zip(*np.nonzero(cm)))
        write_text_atomic(save_dir / "confusion_matrix.csv", buf.getvalue())
    write_text_atomic(save_dir / "metrics.txt", format_table(out) + "\n")
    write_text_atomic(save_dir / "metrics.json", json.dumps(out, indent=2))  # last: the completion mark


def format_table(metrics: dict) -> str:
    """A readable per-class table and the summary lines, from :func:`evaluate`'s dict."""
    def pct(v):
        return "   n/a" if v is None else f"{100 * v:6.2f}"  # a class with no ground truth has no AP or recall

    has_coco = "coco" in metrics
    head = f"{'class':<16}{'gt':>6}{'det':>7}  {'AP50':>6}  {'AP50-07':>7}  {'P':>6}  {'R':>6}"
    if has_coco:
        head += f"  {'cocoAP':>6}  {'cocoAP50':>8}"
    lines = [head, "-" * len(head)]
    for name, r in metrics["per_class"].items():
        line = (f"{name[:16]:<16}{r['n_gt']:>6}{r['n_det']:>7}  {pct(r['voc'])}  {pct(r['voc07']):>7}  "
                f"{pct(r['precision'])}  {pct(r['recall'])}")
        if has_coco:
            line += f"  {pct(r.get('coco_AP'))}  {pct(r.get('coco_AP50')):>8}"
        lines.append(line)
    lines.append("-" * len(head))
    p = metrics["protocol"]
    conv = "continuous" if p["pixel_offset"] == 0 else f"+{p['pixel_offset']:g} pixel (VOC devkit)"
    if "voc" in metrics:
        lines.append(f"VOC2010+ all-point mAP@{p['iou']:g}: {pct(metrics['voc']).strip()}%  "
                     f"(difficult ignored, {conv} IoU)")
    if "voc07" in metrics:
        lines.append(f"VOC2007 11-point mAP@{p['iou']:g}:  {pct(metrics['voc07']).strip()}%")
    a = metrics["at_conf"]
    lines.append(f"at score >= {a['conf']:g}: precision {pct(a['precision']).strip()}%, "
                 f"recall {pct(a['recall']).strip()}%, F1 {pct(a['f1']).strip()}%  (TP {a['tp']}, FP {a['fp']})")
    if has_coco:
        c = metrics["coco"]
        def stat(k):  # pycocotools' -1: no object of that kind (e.g. APs without small objects)
            return "n/a" if c[k] is None or c[k] < 0 else f"{c[k]:.4f}"

        lines.append(f"COCO ({p['coco_backend']} COCOeval, maxDets {p['max_dets']}): " +
                     "  ".join(f"{k} {stat(k)}" for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")))
        lines.append("    " + "  ".join(f"{k} {stat(k)}" for k in ("AR1", "AR10", "AR100", "ARs", "ARm", "ARl")))
    if "tide" in metrics or "analysis" in metrics:
        from yolokit.eval.explain import format_explain

        lines.append(format_explain(metrics))
    lines.append(f"{metrics['images']} images, {metrics['objects']} objects, {metrics['detections']} detections"
                 + (f"; {skipped_text(metrics['skipped'])}" if metrics.get("skipped") else ""))
    return "\n".join(lines)


#: What each count of ``metrics["skipped"]`` means, for people.
SKIPPED_WHY = {"unknown_image": "for images outside this split",
               "unknown_category": "of classes this dataset does not have"}


def skipped_text(skipped: dict) -> str:
    """``{"unknown_image": 3277}`` -> ``3,277 detections not scored (for images outside this split)``."""
    why = {k: SKIPPED_WHY.get(k, k.replace("_", " ")) for k, n in skipped.items() if n}
    total = f"{sum(skipped.values()):,} detections not scored"
    if len(why) == 1:
        return f"{total} ({next(iter(why.values()))})"
    return f"{total} ({'; '.join(f'{skipped[k]:,} {w}' for k, w in why.items())})"


# ----------------------------------------------------------------------------- run a model
def predict_dataset(detector: Callable[[list], list], dataset, batch_size: int = 8,
                    progress: bool = False) -> list:
    """Call ``detector(images)`` (a list of HxWx3 uint8 RGB arrays -> one ``(K, 6)`` per image in
    original-image pixels) over the dataset in batches; returns one detection array per image."""
    dets = []
    indices = range(0, len(dataset), batch_size)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="predict", unit="batch")
    for start in indices:
        images = [dataset[i].image for i in range(start, min(start + batch_size, len(dataset)))]
        out = detector(images)
        if len(out) != len(images):
            raise DataError(f"the detector returned {len(out)} results for {len(images)} images")
        dets.extend(d.detach().cpu().numpy() if hasattr(d, "detach") else np.asarray(d) for d in out)
    return dets


def evaluate_model(detector, dataset, *, imgsz=None, conf: float | None = None, iou: float | None = None,
                   max_det: int | None = None, tta: bool = False, tta_scales=(1.0,), device=None,
                   batch_size: int = 8, progress: bool = False, **kwargs) -> dict:
    """Detect on every image of ``dataset`` and :func:`evaluate` the result.

    ``detector`` is a model (run through :class:`yolokit.models.predict.Predictor`, the one prediction path, with
    ``imgsz``/``conf``/``iou``/``max_det`` defaulting to the model's saved settings, else the evaluation
    defaults: conf 0.001, iou 0.6, since mAP needs the whole PR curve), or any callable ``images -> list[(K,
    6)]`` in original-image pixels (a configured Predictor, the HOG+SVM predictor, another detector).
    ``kwargs`` go to :func:`evaluate` (``report_conf``, ``match_iou``, ``metrics``, ...)."""
    from torch import nn

    if isinstance(detector, nn.Module):
        from yolokit.models.predict import EVAL_DEFAULTS, Predictor

        detector = Predictor(detector, imgsz, conf, iou, max_det, device=device, tta=tta, tta_scales=tta_scales,
                             defaults=EVAL_DEFAULTS)
    elif not callable(detector):
        raise TypeError(f"evaluate_model needs a model or a callable images -> detections, got "
                        f"{type(detector).__name__}")
    dets = predict_dataset(detector, dataset, batch_size, progress)
    return evaluate(dataset, dets, **kwargs)
