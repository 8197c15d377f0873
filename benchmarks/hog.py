"""HOG+SVM scanning speed: yolokit's vectorised scan against OpenCV's ``HOGDescriptor.detectMultiScale``.

Same image, same SVM (OpenCV's Dalal-Triggs people detector, 64x128 window, 3781 weights), same window
stride (8 px), same pyramid (ratio 1.05, ``INTER_LINEAR_EXACT``, down to the last level that holds a window),
no padding, ``hitThreshold`` -2 (so that hundreds of windows come back), no grouping. Both sides use OpenCV's
thread count; runs are interleaved (A, B, A, B, ...) and the medians compared, because the machine is shared
and noisy. The window sets and scores are also compared, so the two really do the same work.

``--people`` adds the reference point: OpenCV's people detector scored on the person class of VOC2012-rodm and
coco128 with yolokit's NMS and evaluator.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks.common import ROOT, SHARED_DATA

HELP = "HOG+SVM scan speed vs OpenCV detectMultiScale (same image, window, stride, scales)"

_IMAGES = ("voc2012_rodm/data/database/images/2007_000346.jpg", "raccoon/images/raccoon-63.jpg")


def add_arguments(parser):
    parser.add_argument("--images", nargs="+", help="images to scan (default: a VOC person image and a "
                                                    "raccoon image from ../shared/data)")
    parser.add_argument("--scale", type=float, default=1.05)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--threshold", type=float, default=-2.0, help="raw SVM score kept (low: many windows)")
    parser.add_argument("--people", action="store_true",
                        help="also score OpenCV's people detector on the person class of VOC2012-rodm and "
                             "coco128 with yolokit's NMS and evaluator (the Dalal-Triggs reference point)")
    parser.add_argument("--upscale", type=float, nargs="+", default=[1.0, 2.0],
                        help="--people: image enlargements to try (the window is 128 px tall)")


def _default_images() -> list[Path]:
    root = SHARED_DATA
    return [root / p for p in _IMAGES]


def compare_windows(cv_rects, cv_scores, boxes, scores, tol: float = 1.0) -> tuple[int, float]:
    """Number of OpenCV windows without a yolokit window within ``tol`` px (every coordinate), and the largest
    score difference among matched ones. ``cv_rects`` ``[K, 4]`` xywh (OpenCV rounds them), ``boxes`` ``[M, 4]``
    xyxy."""
    import numpy as np

    cv_rects = np.asarray(cv_rects, np.float64).reshape(-1, 4)
    cv_scores = np.asarray(cv_scores, np.float64).reshape(-1)
    mine = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).astype(np.float64)
    by_width: dict[int, list[int]] = {}
    for k, w in enumerate(np.round(mine[:, 2]).astype(int).tolist()):
        by_width.setdefault(w, []).append(k)
    missing, worst = 0, 0.0
    for r, s in zip(cv_rects, cv_scores):
        cands = [k for w in (int(r[2]) - 1, int(r[2]), int(r[2]) + 1) for k in by_width.get(w, [])]
        d = np.abs(mine[cands] - r).max(1) if cands else np.zeros(0)
        if len(d) == 0 or d.min() > tol:
            missing += 1
            continue
        worst = max(worst, abs(float(scores[cands[int(np.argmin(d))]]) - float(s)))
    return missing, worst


def run(args):
    import cv2
    import numpy as np

    from yolokit.report import markdown_table, write_section
    from yolokit.errors import DataError
    from yolokit.hog.features import HogParams, to_grid
    from yolokit.hog.scan import pyramid_scales, scan

    params = HogParams((64, 128))
    det = cv2.HOGDescriptor_getDefaultPeopleDetector().reshape(-1)
    wy, wx = params.window_blocks
    weights = np.ascontiguousarray(to_grid(det[:-1], wy, wx, params.block_dim))
    bias = float(det[-1])
    hog = params.descriptor()
    hog.setSVMDetector(det)

    rows = []
    for path in [Path(p) for p in (args.images or _default_images())]:
        image = cv2.imread(str(path))
        if image is None:
            raise DataError(f"{path}: cannot read image")
        h, w = image.shape[:2]

        def opencv():
            return hog.detectMultiScale(image, hitThreshold=args.threshold, winStride=(8, 8), padding=(0, 0),
                                        scale=args.scale, groupThreshold=0)

        def ours():
            return scan(image, weights, bias, params, threshold=args.threshold, scale=args.scale)

        rects, margins = opencv()
        boxes, scores = ours()
        missing, worst = compare_windows(rects, margins, boxes, scores)
        t_cv, t_ours = [], []
        for fn in (opencv, ours):  # warm-up
            fn()
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            opencv()
            t1 = time.perf_counter()
            ours()
            t2 = time.perf_counter()
            t_cv.append(t1 - t0)
            t_ours.append(t2 - t1)
        cv_ms, ours_ms = 1000 * statistics.median(t_cv), 1000 * statistics.median(t_ours)
        levels = len(pyramid_scales((w, h), params.window, args.scale))
        rows.append([path.name, f"{w}x{h}", levels, len(margins), len(scores), missing, f"{worst:.1e}",
                     cv_ms, ours_ms, ours_ms / cv_ms])
        print(f"{path.name}: OpenCV {cv_ms:.1f} ms, yolokit {ours_ms:.1f} ms, ratio {ours_ms / cv_ms:.2f} "
              f"({len(margins)} vs {len(scores)} windows, {missing} unmatched, max score diff {worst:.1e})")

    header = ["image", "size", "levels", "windows (OpenCV)", "windows (yolokit)", "unmatched", "max score diff",
              "detectMultiScale ms", "yolokit scan ms", "ratio (target <= 1.5)"]
    body = (f"HOG+SVM scanning, OpenCV's 64x128 people SVM, stride 8, pyramid ratio {args.scale}, no padding, "
            f"hitThreshold {args.threshold}, {cv2.getNumThreads()} OpenCV threads; median of {args.repeat} "
            "interleaved runs. yolokit computes HOG once per level (cv2.HOGDescriptor.compute over the whole "
            "level) and scores every window of the level with one cv2.matchTemplate of the SVM weights over the "
            "36-channel block grid (`yolokit/hog/scan.py`).\n\n"
            + markdown_table(header, rows))
    if args.people:
        body += "\n\n" + people_reference(args.upscale)
    if args.write:
        write_section(args.write, "hog", body)
    return 0


def people_reference(upscales) -> str:
    """Markdown: the Dalal-Triggs people detector's person AP on VOC2012-rodm and coco128."""
    import time

    from yolokit.report import markdown_table
    from yolokit.data import load_dataset
    from yolokit.hog.people import PeopleDetector
    from yolokit.hog.scoring import score

    cfg = ROOT / "configs" / "data"
    rows = []
    for yaml_name, split in (("voc2012_rodm.yaml", "val"), ("coco128.yaml", "val")):
        data = load_dataset(cfg / yaml_name, split=split)
        person = list(data.class_names).index("person")
        samples = [data[i] for i in range(len(data))]
        for up in upscales:
            det = PeopleDetector(hit_threshold=-0.5, scale=1.05, upscale=up)
            t0 = time.perf_counter()
            windows = [det.windows(s.image) for s in samples]
            fps = len(samples) / (time.perf_counter() - t0)
            for inner in (True, False):
                dets = [det.detections(b, m, inner=inner) for b, m in windows]
                m = score(samples, dets, person, "person")
                box = "person box (48x96 of 64x128)" if inner else "whole window"
                rows.append([yaml_name.removesuffix(".yaml"), len(samples), m["gt"], f"x{up:g}", box,
                             m["voc"], m["AP50"], m["AP"], f"{fps:.1f}"])
                print(f"people {yaml_name} x{up:g} {box}: VOC AP50 {m['voc']:.3f} COCO AP50 {m['AP50']:.3f} "
                      f"AP {m['AP']:.3f}")
    header = ["data", "images", "persons", "upscale", "reported box", "VOC AP50 (all-point)", "COCO AP50",
              "COCO AP", "FPS"]
    return ("Reference point: OpenCV's Dalal-Triggs people detector (`HOGDescriptor_getDefaultPeopleDetector`, "
            "INRIA-trained) on the person class, windows with SVM margin >= -0.5 (`groupThreshold=0`), scores "
            "sigmoid(margin), yolokit's NMS (IoU 0.45) and evaluator. VOC AP ignores difficult boxes; COCO AP "
            "counts them.\n\n" + markdown_table(header, rows))
