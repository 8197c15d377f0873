"""Evaluation speed.

VOC: yolokit's vectorised matcher + AP on 5,000 images x 100 detections (20 classes), against the
devkit-style per-detection loop (the algorithm of the VOC devkit / py-faster-rcnn ``voc_eval`` /
Cartucho's ``main.py``), timed once on the same workload; both APs are compared.

COCO: ``yolokit.eval.evaluate(metrics=["coco"])`` from yolokit arrays (default "pycocotools" backend),
against plain pycocotools as users call it (``COCO(gt.json)``,
``loadRes(results.json)``, evaluate / accumulate / summarize) on the same boxes written to JSON, and
the optional faster-coco-eval backend; the 12 stats are compared.

The workload is synthetic but shaped like a detector's output: a few ground-truth boxes per image,
detections that are jittered copies of them (some duplicates, some wrong class) plus random boxes,
with scores spread so that precision falls with recall.
"""

from __future__ import annotations

HELP = "VOC / COCO metric speed (5,000 images x 100 detections) vs the devkit loop and plain pycocotools"


def add_arguments(parser):
    parser.add_argument("--images", type=int, default=5000, help="images in the VOC workload (default 5000)")
    parser.add_argument("--dets", type=int, default=100, help="detections per image (default 100)")
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--coco-images", type=int, default=200, help="images in the COCO workload (default 200)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-loop", action="store_true", help="skip the (slow) devkit-loop peer")
    parser.add_argument("--seed", type=int, default=0)


def synthetic_workload(n_images=5000, dets_per_image=100, n_classes=20, size=500, seed=0):
    """``(GroundTruth, Detections)``: 1..15 boxes per image (10% difficult), ``dets_per_image`` detections."""
    import numpy as np

    from yolokit.eval import Detections, GroundTruth

    rng = np.random.default_rng(seed)
    n_gt = rng.integers(1, 16, n_images)
    g_img = np.repeat(np.arange(n_images), n_gt)
    G = len(g_img)
    xy = rng.uniform(0, size * 0.8, (G, 2))
    wh = rng.uniform(10, size * 0.4, (G, 2))
    g_boxes = np.c_[xy, xy + wh]
    g_lab = rng.integers(0, n_classes, G)
    gt = GroundTruth(g_boxes, g_lab, g_img, rng.random(G) < 0.1, np.zeros(G, bool),
                     [f"{i:06d}" for i in range(n_images)], np.full((n_images, 2), size))

    D = n_images * dets_per_image
    d_img = np.repeat(np.arange(n_images), dets_per_image)
    first = np.r_[0, np.cumsum(n_gt)[:-1]]
    src = first[d_img] + (rng.random(D) * n_gt[d_img]).astype(int)  # a box of the same image
    from_gt = rng.random(D) < 0.3
    jitter = rng.normal(0, 0.08, (D, 4)) * np.repeat(wh[src], 2, axis=1)
    rxy = rng.uniform(0, size * 0.9, (D, 2))
    rand = np.c_[rxy, rxy + rng.uniform(5, size * 0.3, (D, 2))]
    boxes = np.where(from_gt[:, None], g_boxes[src] + jitter, rand)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    labels = np.where(from_gt & (rng.random(D) < 0.9), g_lab[src], rng.integers(0, n_classes, D))
    scores = np.round(np.where(from_gt, rng.beta(5, 2, D), rng.beta(1, 5, D)), 4)  # rounding makes ties
    return gt, Detections(boxes, scores, labels, d_img)


def devkit_loop(gt, det, n_classes, iou_thres=0.5):
    """The devkit algorithm, detection by detection (numpy IoU over one image's boxes per detection)."""
    import numpy as np

    from yolokit.eval import average_precision

    by_img_cls = {}
    for j in range(len(gt)):
        by_img_cls.setdefault((int(gt.image[j]), int(gt.labels[j])), []).append(j)
    by_img_cls = {k: np.array(v) for k, v in by_img_cls.items()}
    used = np.zeros(len(gt), bool)
    aps = np.full(n_classes, np.nan)
    for c in range(n_classes):
        npos = int(((gt.labels == c) & ~gt.difficult).sum())
        idx = np.flatnonzero(det.labels == c)
        idx = idx[np.argsort(-det.scores[idx], kind="stable")]
        tp = np.zeros(len(idx))
        fp = np.zeros(len(idx))
        for k, d in enumerate(idx):
            cand = by_img_cls.get((int(det.image[d]), c))
            if cand is None:
                fp[k] = 1
                continue
            bb, g = det.boxes[d], gt.boxes[cand]
            iw = np.maximum(np.minimum(g[:, 2], bb[2]) - np.maximum(g[:, 0], bb[0]), 0)
            ih = np.maximum(np.minimum(g[:, 3], bb[3]) - np.maximum(g[:, 1], bb[1]), 0)
            inter = iw * ih
            ov = inter / ((bb[2] - bb[0]) * (bb[3] - bb[1]) + (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1]) - inter)
            j = int(np.argmax(ov))
            if ov[j] >= iou_thres:
                if gt.difficult[cand[j]]:
                    continue
                if not used[cand[j]]:
                    used[cand[j]] = True
                    tp[k] = 1
                else:
                    fp[k] = 1
            else:
                fp[k] = 1
        keep = (tp + fp) > 0
        ctp, cfp = np.cumsum(tp[keep]), np.cumsum(fp[keep])
        if npos:
            aps[c] = average_precision(ctp / npos, ctp / np.maximum(ctp + cfp, np.finfo(float).eps))
    return aps


def tidecv_breakdown(gt, det, class_names) -> dict:
    """tidecv 1.0.1's AP, dAPs and error counts for yolokit arrays (its Data objects built directly: its COCO
    loader wants ``segmentation`` in every annotation; difficult and crowd boxes as ignore regions of their
    class, as yolokit treats them). The peer of this bench and the reference of the TIDE tests. Raises
    ImportError without tidecv."""
    import contextlib
    import io

    from tidecv import TIDE, Data

    gd, pd = Data("gt", max_dets=100), Data("pred", max_dets=100)
    for c, n in enumerate(class_names):
        gd.add_class(c, n)
        pd.add_class(c, n)
    for i in range(gt.num_images):
        gd.add_image(i, str(gt.image_ids[i]))
    for b, c, im, ig in zip(gt.boxes.tolist(), gt.labels.tolist(), gt.image.tolist(), (gt.difficult | gt.iscrowd)):
        (gd.add_ignore_region if ig else gd.add_ground_truth)(im, c, [b[0], b[1], b[2] - b[0], b[3] - b[1]])
    for b, s, c, im in zip(det.boxes.tolist(), det.scores.tolist(), det.labels.tolist(), det.image.tolist()):
        pd.add_detection(im, c, s, [b[0], b[1], b[2] - b[0], b[3] - b[1]])
    t = TIDE()
    with contextlib.redirect_stdout(io.StringIO()):
        run = t.evaluate(gd, pd, mode=TIDE.BOX)
        errors = t.get_all_errors()
    return {"ap": run.ap, "main": errors["main"]["pred"], "special": errors["special"]["pred"],
            "counts": {e.short_name: len(v) for e, v in run.error_dict.items()}}


def run(args) -> int:
    from yolokit.report import write_section

    voc_md = _voc_section(args)
    print(voc_md)
    coco_md = _coco_section(args)
    print("\n" + coco_md)
    if args.write:
        write_section(args.write, "eval", "### eval\n\n" + voc_md + "\n\n" + coco_md)
    return 0


def _voc_section(args) -> str:
    """yolokit's VOC AP against a devkit-style loop on the synthetic workload."""
    import time

    import numpy as np

    from benchmarks.common import timeit
    from yolokit.eval import evaluate, voc_evaluate
    from yolokit.report import markdown_table

    gt, det = synthetic_workload(args.images, args.dets, args.classes, seed=args.seed)
    t_voc = timeit(lambda: voc_evaluate(gt, det, args.classes), warmup=1, repeat=args.repeat)
    ours = voc_evaluate(gt, det, args.classes)
    t_full = timeit(lambda: evaluate(gt, det, metrics=["voc", "voc07"]), warmup=1, repeat=args.repeat)
    rows = [[f"yolokit voc_evaluate (all-point + 11-point, {args.classes} classes)", f"{t_voc:.3f}", "1.0x"],
            ["yolokit evaluate(metrics=[voc, voc07]) incl. P/R table", f"{t_full:.3f}", f"{t_full / t_voc:.1f}x"]]
    agree = ""
    if not args.no_loop:
        t0 = time.perf_counter()
        loop_ap = devkit_loop(gt, det, args.classes)
        t_loop = time.perf_counter() - t0
        rows.append(["devkit-style per-detection loop (1 run)", f"{t_loop:.3f}", f"{t_loop / t_voc:.0f}x"])
        diff = float(np.nanmax(np.abs(loop_ap - ours.ap)))
        agree = f"Per-class AP of the loop and yolokit: max |difference| = {diff:.1e}."
    return (f"VOC AP@0.5, {args.images:,} images x {args.dets} detections = {len(det):,} detections, "
            f"{len(gt):,} ground-truth boxes (median of {args.repeat}):\n\n"
            + markdown_table(["method", "seconds", "vs yolokit"], rows) + f"\n\n{agree}")


def _coco_section(args) -> str:
    """yolokit's COCO evaluation (and its TIDE breakdown) against plain pycocotools on the same boxes."""
    import json
    import tempfile
    from pathlib import Path

    from yolokit.eval import coco_image_ids, detections_to_coco, ground_truth_to_coco
    from yolokit.report import markdown_table

    cgt, cdet = synthetic_workload(args.coco_images, args.dets, 80, seed=args.seed + 1)
    names, cats = [f"c{i}" for i in range(80)], list(range(1, 81))
    img_ids = coco_image_ids(cgt.image_ids)
    reps = max(3, args.repeat // 2)
    with tempfile.TemporaryDirectory() as tmp:
        gt_path, res_path = Path(tmp) / "gt.json", Path(tmp) / "res.json"
        gt_path.write_text(json.dumps(ground_truth_to_coco(cgt, cats, names, img_ids)))
        res_path.write_text(json.dumps(detections_to_coco(cdet, img_ids, cats)))
        crows, reference, times = _coco_rows(cgt, cdet, names, cats, gt_path, res_path, reps)
    tide_note = _tide_note(cgt, cdet, names, times, reps)
    same = _coco_ours(cgt, cdet, names, cats) == reference
    fast_note = _faster_backend(cgt, cdet, names, cats, reference, crows, times, reps)
    return (f"COCO bbox, {args.coco_images} images x {args.dets} detections = {len(cdet):,} detections, "
            f"{len(cgt):,} boxes, 80 classes (median of {reps} interleaved rounds):\n\n"
            + markdown_table(["method", "seconds", "vs plain pycocotools"], crows)
            + f"\n\nyolokit's default path gives plain pycocotools' 12 stats exactly (==): {same}. {fast_note} "
            + tide_note)


def _coco_ours(cgt, cdet, names, cats, backend="pycocotools"):
    from yolokit.eval import evaluate

    return evaluate(cgt, cdet, names, metrics=["coco"], category_ids=cats, coco_backend=backend)["coco"]


def _coco_plain(gt_path, res_path) -> dict:
    """Plain pycocotools from the two JSON files: COCO(json), loadRes(json), evaluate/accumulate/summarize."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from yolokit.eval import STAT_NAMES

    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO(str(gt_path))
        ev = COCOeval(g, g.loadRes(str(res_path)), "bbox")
        ev.evaluate(); ev.accumulate(); ev.summarize()
    return dict(zip(STAT_NAMES, ev.stats.tolist()))


def _coco_rows(cgt, cdet, names, cats, gt_path, res_path, reps: int):
    """Interleaved rounds of plain pycocotools, yolokit and yolokit + TIDE (load from others on a shared machine
    hits all alike): ``(table rows, pycocotools' stats, {name: [seconds]})``."""
    import statistics
    import time

    from yolokit.eval import evaluate

    fns = {"plain": lambda: _coco_plain(gt_path, res_path), "ours": lambda: _coco_ours(cgt, cdet, names, cats),
           # the same evaluation plus the TIDE breakdown (yolokit eval --tide)
           "tide": lambda: evaluate(cgt, cdet, names, metrics=["coco"], category_ids=cats, tide=True)}
    for fn in fns.values():  # warm-up: imports, caches
        fn()
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    t_plain, t_ours, t_tide = (statistics.median(times[k]) for k in ("plain", "ours", "tide"))
    rows = [["plain pycocotools (COCO(json), loadRes(json), evaluate/accumulate/summarize)", f"{t_plain:.3f}", "1.00x"],
            ["yolokit evaluate(metrics=[coco]) from arrays, pycocotools COCOeval (default)", f"{t_ours:.3f}",
             f"{t_ours / t_plain:.2f}x"],
            ["yolokit evaluate(metrics=[coco], tide=True): the same plus the TIDE breakdown", f"{t_tide:.3f}",
             f"{t_tide / t_plain:.2f}x"]]
    return rows, _coco_plain(gt_path, res_path), times


def _tide_note(cgt, cdet, names, times: dict, reps: int) -> str:
    """TIDE's cost inside evaluate (paired per round), tide() alone, and tidecv on the same boxes when installed."""
    import statistics
    import time

    from benchmarks.common import timeit
    from yolokit.eval.tide import tide

    t_tide_only = timeit(lambda: tide(cgt, cdet, num_classes=80), warmup=1, repeat=reps)
    # paired: each round's ratio compares two adjacent runs, so load that drifts between rounds cancels
    paired = statistics.median(b / a for a, b in zip(times["ours"], times["tide"]))
    note = (f"TIDE breakdown: evaluate with it / without it = {paired:.2f}x (median of the per-round "
            f"ratios; issue #15 bound: 1.5x); tide() alone {t_tide_only:.3f} s.")
    try:  # the reference implementation on the same boxes, timed once
        t0 = time.perf_counter()
        ref = tidecv_breakdown(cgt, cdet, names)
        t_ref = time.perf_counter() - t0
        ours = tide(cgt, cdet, num_classes=80)
        diff = max(abs(ours.main[k] - ref["main"][k]) for k in ours.main)
        diff = max([diff] + [abs(ours.special[k] - ref["special"][k]) for k in ours.special])
        return note + (f" tidecv 1.0.1 on the same detections: {t_ref:.2f} s (1 run), "
                       f"max |dAP difference| = {diff:.1e}.")
    except ImportError:
        return note + " (tidecv not installed: no reference timing.)"


def _faster_backend(cgt, cdet, names, cats, reference: dict, crows: list, times: dict, reps: int) -> str:
    """A row for the optional faster-coco-eval backend (timed apart: far from the others' noise) and its note."""
    import statistics

    from benchmarks.common import timeit
    from yolokit.eval import STAT_NAMES

    try:
        import faster_coco_eval  # noqa: F401
    except ImportError:
        return "faster-coco-eval not installed: `pip install faster-coco-eval` adds the 'faster' backend."
    t_plain = statistics.median(times["plain"])
    t_fast = timeit(lambda: _coco_ours(cgt, cdet, names, cats, "faster"), warmup=1, repeat=reps)
    crows.append(["yolokit evaluate(metrics=[coco]), faster-coco-eval backend", f"{t_fast:.3f}",
                  f"{t_fast / t_plain:.2f}x"])
    a, b = reference, _coco_ours(cgt, cdet, names, cats, "faster")
    return f"faster backend: max |stat difference| vs pycocotools = {max(abs(a[k] - b[k]) for k in STAT_NAMES):.1e}."
