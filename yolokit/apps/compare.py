"""Side by side: HOG+SVM against YOLO models on one dataset split, same NMS, same evaluator, same CPU.

For every model and input size: AP50 and AP (COCO protocol, pycocotools), FPS (images per second of
``predict`` -- resize, forward or scan, NMS -- on decoded images, batch 1, best of 3 passes over 8 images, at
the caller's thread count -- ``yolokit compare --threads``, 1 by default; YOLO models after
``optimize_for_inference``), learned parameters (before batch-norm folding), FLOPs per image, and the lectures'
compactness ratio AP / (params / 100K).

FLOPs: for YOLO, ``torch.utils.flop_counter`` on one forward at the input size (2 x multiply-accumulates, the
Darknet convention). For HOG+SVM, 2 x (windows scanned) x (descriptor length): the classifier "run many
times over overlapping windows" of the lectures, over every pyramid level (the block-grid correlation computes
exactly these products); the HOG gradients and histograms themselves (a few dozen operations per pixel per
level) are not counted. "Input size" is the square network input for YOLO and the longer image
side before the pyramid for HOG.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np


@dataclass
class Entry:
    """A model to compare: ``kind`` 'hog' (a .npz) or 'yolo' (a checkpoint, Darknet cfg, or model name)."""

    name: str
    kind: str
    path: str
    weights: str | None = None


@dataclass
class Result:
    name: str
    kind: str
    imgsz: int
    ap50: float
    ap: float
    fps: float
    params: int
    flops: float
    notes: dict = field(default_factory=dict)

    @property
    def ap_per_100k(self) -> float:
        """The compactness ratio: AP / (params / 100K)."""
        return self.ap / (self.params / 1e5) if self.params else float("nan")


def hog_flops(model, sizes: Sequence[tuple[int, int]], imgsz: int | None) -> float:
    """Mean FLOPs of scanning images of ``sizes`` ((h, w) each): see the module docstring."""
    p = model.params
    wy, wx = p.window_blocks
    dim = p.block_dim
    total = 0.0
    for h, w in sizes:
        f = max(h, w) / imgsz if imgsz else 1.0
        h, w = round(h / f), round(w / f)
        for lv in model.pyramid((w, h)):
            lw, lh = round(w / lv) + 2 * model.pad, round(h / lv) + 2 * model.pad
            nby, nbx = (lh - p.block) // p.stride + 1, (lw - p.block) // p.stride + 1
            windows = max(nby - wy + 1, 0) * max(nbx - wx + 1, 0)
            total += 2.0 * windows * wy * wx * dim                         # dot products, as counted
    return total / max(len(sizes), 1)


def yolo_flops(model, imgsz: int) -> float:
    """FLOPs of one forward pass at ``imgsz`` x ``imgsz`` (torch's counter: 2 x MACs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, imgsz, imgsz)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return float(counter.get_total_flops())


def _timed_predict(predict, images, timed: int = 8, rounds: int = 3):
    """Detections of every image, and FPS on the first ``timed`` images: each image's best time over ``rounds``
    passes (the usual defence against a shared, noisy machine: interference only ever adds time)."""
    dets = [predict(im) for im in images]                           # also the warm-up
    best = np.full(min(timed, len(images)), np.inf)
    for _ in range(rounds):
        for k, im in enumerate(images[:len(best)]):
            t0 = time.perf_counter()
            predict(im)
            best[k] = min(best[k], time.perf_counter() - t0)
    return dets, len(best) / float(best.sum())


def evaluate(entry: Entry, samples: Sequence, sizes: Sequence[int], class_index: int = 0, name: str = "object",
             log=print) -> list[Result]:
    """Run one model at every input size on ``samples``; one :class:`Result` per size."""
    from yolokit.hog.scoring import score

    images = [s.image for s in samples]
    out = []
    if entry.kind == "hog":
        from yolokit.hog.model import HogSvmDetector

        model = HogSvmDetector.load(entry.path)
        params = model.num_params
        for size in sizes:
            dets, fps = _timed_predict(lambda im: model.predict(im, conf=0.001, imgsz=size)[0], images)
            m = score(samples, dets, class_index, name)
            flops = hog_flops(model, [im.shape[:2] for im in images], size)
            out.append(Result(entry.name, "hog", size, m["AP50"], m["AP"], fps, params, flops))
            log(f"{entry.name} @ {size}: AP50 {m['AP50']:.3f} AP {m['AP']:.3f} {fps:.1f} FPS")
    elif entry.kind == "yolo":
        import yolokit

        model = yolokit.load(entry.path, weights=entry.weights).eval()
        params = sum(p.numel() for p in model.parameters())
        # timed as deployed: batch-norm folded, fused convs, channels-last (same outputs to float rounding)
        fast = model.optimize_for_inference()
        for size in sizes:
            dets, fps = _timed_predict(lambda im: fast.predict(im, conf=0.001, iou=0.45, imgsz=size)[0], images)
            m = score(samples, dets, class_index, name)
            out.append(Result(entry.name, "yolo", size, m["AP50"], m["AP"], fps, params, yolo_flops(model, size)))
            log(f"{entry.name} @ {size}: AP50 {m['AP50']:.3f} AP {m['AP']:.3f} {fps:.1f} FPS")
    elif entry.kind == "prior":
        import torch

        from yolokit.data import load_dataset

        box = prior_box(load_dataset(entry.path, split="train"), class_index)

        def predict(im):
            h, w = im.shape[:2]
            return torch.tensor([[box[0] * w, box[1] * h, box[2] * w, box[3] * h, 1.0, 0.0]])

        dets, fps = _timed_predict(predict, images)
        m = score(samples, dets, class_index, name)
        out.append(Result(entry.name, "prior", 0, m["AP50"], m["AP"], fps, 4, 0.0))  # no input size: one row
        log(f"{entry.name}: AP50 {m['AP50']:.3f} AP {m['AP']:.3f} (box {np.round(box, 3).tolist()})")
    else:
        from yolokit.errors import ConfigError

        raise ConfigError(f"compare: unknown model kind {entry.kind!r} for {entry.name} "
                          "(expected hog, yolo or prior)")
    return out


def prior_box(dataset, class_index: int = 0) -> np.ndarray:
    """The median training box of a class in image-relative coordinates ``[x1, y1, x2, y2]`` / (w, h, w, h):
    a detector that has learned only where objects usually are (4 numbers). It tells how much of a score
    comes from the dataset's layout rather than from seeing the object."""
    rel = []
    for rec in getattr(dataset, "records", None) or [dataset[i] for i in range(len(dataset))]:
        h, w = getattr(rec, "size", None) or rec.orig_size
        b = np.asarray(rec.boxes, np.float64)[np.asarray(rec.labels) == class_index]
        rel.append(b / np.array([w, h, w, h]))
    rel = np.concatenate(rel) if rel else np.zeros((0, 4))
    return np.median(rel, axis=0) if len(rel) else np.array([0.1, 0.1, 0.9, 0.9])


def table(results: Sequence[Result], imgsz: int | None = None) -> str:
    """Markdown table of the results (at one input size, or all)."""
    from yolokit.report import markdown_table

    header = ["model", "input", "AP50", "AP", "FPS (this CPU)", "params", "GFLOPs", "AP per 100K params"]
    rows = [[r.name, r.imgsz or "-", r.ap50, r.ap, f"{r.fps:.1f}", f"{r.params:,}", f"{r.flops / 1e9:.3f}",
             f"{r.ap_per_100k:.4f}"] for r in results if imgsz is None or r.imgsz in (imgsz, 0)]
    return markdown_table(header, rows)


def plot(results: Sequence[Result], path: str | Path, title: str = "") -> Path:
    """Speed (FPS, log scale) vs accuracy (AP50), one line per model through its input sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
    for r in results:  # no speed to speak of: a horizontal line
        if r.kind == "prior":
            ax.axhline(r.ap50, color="grey", ls="--", lw=1, label=r.name)
    results = [r for r in results if r.kind != "prior"]
    for name in dict.fromkeys(r.name for r in results):
        rs = sorted((r for r in results if r.name == name), key=lambda r: r.imgsz)
        ax.plot([r.fps for r in rs], [r.ap50 for r in rs], "o-", label=name)
        for r in rs:
            ax.annotate(str(r.imgsz), (r.fps, r.ap50), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("FPS on this CPU (log scale)")
    ax.set_ylabel("AP50")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
