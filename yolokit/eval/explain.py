"""What :func:`yolokit.eval.evaluate` adds to explain its AP (one hook there calls :func:`explain`):

* ``thresholds`` -- per-class F1-optimal score with precision and recall there (always; cheap);
* ``tide`` -- TIDE's dAP breakdown (``tide=True``);
* ``analysis`` -- COCO analysis bands, ``analysis/*.png`` (``analysis=True``, needs ``save_dir``);
* ``drilldown`` -- per-image TP / FP by type / FN at ``conf`` in ``drilldown.json`` (whenever ``tide`` or
  ``worst`` is asked for with a ``save_dir``), and ``worst/*.png``, the ``worst`` images with most errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from yolokit.errors import ConfigError
from yolokit.eval.voc import Detections, GroundTruth, VocResult
from yolokit.fileio import write_text_atomic


def explain(gt: GroundTruth, det: Detections, voc: VocResult, class_names: Sequence[str],
            category_ids: Sequence[int], *, conf: float = 0.25, coco_gt=None, max_dets: int = 100,
            tide: bool = False, analysis: bool = False, worst: int = 0,
            save_dir: str | Path | None = None) -> dict:
    """The keys above for :func:`yolokit.eval.evaluate`'s dict; files go to ``save_dir``."""
    from yolokit.eval.thresholds import f1_optimal_thresholds

    out: dict = {"thresholds": f1_optimal_thresholds(voc, class_names)}
    if (analysis or worst) and save_dir is None:
        raise ConfigError("the analysis plots and --worst images need a save directory (--out)")
    if tide:
        from yolokit.eval.tide import tide as tide_breakdown

        out["tide"] = tide_breakdown(gt, det, num_classes=len(class_names), max_dets=max_dets).to_dict()
    if save_dir is not None and (tide or worst):
        from yolokit.eval.drilldown import drilldown, render_worst

        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
        report = drilldown(gt, det, conf, len(class_names))
        write_text_atomic(save_dir / "drilldown.json", json.dumps(report))
        out["drilldown"] = {"file": "drilldown.json", "conf": conf, "totals": report["totals"]}
        if worst:
            render_worst(gt, det, class_names, save_dir / "worst", worst, conf)
    if analysis:
        from yolokit.eval.analysis import analyze, plot_bands, summary
        from yolokit.eval.coco import coco_image_ids, detections_to_coco, ground_truth_to_coco

        img_ids = coco_image_ids(gt.image_ids)
        gt_dict = getattr(coco_gt, "dataset", coco_gt)  # a COCO object, a dict, or None
        if not isinstance(gt_dict, dict):
            gt_dict = ground_truth_to_coco(gt, category_ids, class_names, img_ids)
        result = analyze(gt_dict, detections_to_coco(det, img_ids, category_ids), img_ids, max_dets)
        plot_bands(result, Path(save_dir) / "analysis")
        out["analysis"] = summary(result)
    return out


def format_explain(metrics: dict) -> str:
    """Text lines for :func:`yolokit.eval.format_table`: the TIDE breakdown, the analysis bands, oLRP."""
    lines = []
    if "tide" in metrics:
        from yolokit.eval.tide import format_tide

        lines.append(format_tide(metrics["tide"]))
    if "analysis" in metrics:
        a = metrics["analysis"]
        lines.append("COCO analysis bands (AP, all areas): "
                     + "  ".join(f"{k} {v:.3f}" for k, v in a["overall"].items()) + "  (PNGs in analysis/)")
        lrp = a["lrp"]
        if lrp["moLRP"] is not None:
            def f(v):
                return "-" if v is None else f"{v:.3f}"

            lines.append(f"LRP (IoU 0.5, lower is better): moLRP {f(lrp['moLRP'])}  components: "
                         f"Loc {f(lrp['moLRP_loc'])}  FP {f(lrp['moLRP_fp'])}  FN {f(lrp['moLRP_fn'])}")
    return "\n".join(lines)
