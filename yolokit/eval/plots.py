"""PNG figures: per-class precision-recall curves and the confusion matrix.

matplotlib is imported inside the functions (it is an optional dependency, ``pip install yolokit[plot]``)
and used through ``matplotlib.figure.Figure`` so no global backend is switched.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from yolokit.errors import YolokitError
from yolokit.eval.voc import VocResult


def new_figure(**kwargs):
    """A matplotlib ``Figure`` (no pyplot state, no display); a clear error when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise YolokitError("plots need matplotlib: pip install matplotlib") from exc
    return Figure(**kwargs)


def safe_filename(name: str) -> str:
    """``name`` (a class name) as a file-name part that no other name maps to: a name of letters, digits and
    ``_.-`` is kept; any other gets its runs of other characters as ``_`` plus ``~`` and a hash of the name
    (``a/b`` -> ``a_b~...``, never ``a_b``: ``~`` is in no kept name)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]
    if slug == name and name not in ("", ".", ".."):
        return slug
    import hashlib

    return f"{slug or 'class'}~{hashlib.sha1(name.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"

#: Classes drawn at most in one figure (the PR curves, the confusion heat map): those with the most objects.
#: 10,000 per-class figures and a 10,000 x 10,000 heat map ran out of memory.
MAX_PLOT_CLASSES = 100


def plot_pr_curves(result: VocResult, class_names: Sequence[str], out_dir: str | Path) -> list[Path]:
    """One PNG per class with ground truth (``pr_<class>.png``) and ``pr_curves.png`` with all of them;
    the legend gives each class's all-point AP at the result's IoU threshold."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    fig_all = new_figure(figsize=(8, 6))
    ax_all = fig_all.add_subplot()
    shown = sorted(range(len(result.curves)), key=lambda c: -result.curves[c].npos)[:MAX_PLOT_CLASSES]
    shown = set(shown)
    for c, curve in enumerate(result.curves):
        if curve.npos == 0 or c not in shown:
            continue
        name = class_names[c] if c < len(class_names) else str(c)
        label = f"{name} AP={result.ap[c]:.3f}"
        rec = np.concatenate(([0.0], curve.recall))
        prec = np.concatenate(([1.0], curve.precision))
        fig = new_figure(figsize=(5, 4))
        ax = fig.add_subplot()
        ax.plot(rec, prec, label="precision")
        env = np.maximum.accumulate(prec[::-1])[::-1]
        ax.plot(rec, env, "--", label="interpolated")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
               title=f"{label} (IoU {result.iou_thres:g}, {curve.npos} objects)")
        ax.legend(loc="lower left")
        path = out_dir / f"pr_{safe_filename(name)}.png"
        fig.savefig(path, dpi=80)
        written.append(path)
        ax_all.plot(rec, prec, linewidth=1, label=label if len(result.curves) <= 30 else None)
    ax_all.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
               title=f"PR curves, mAP@{result.iou_thres:g} = {result.map:.3f}"
               + (f" ({MAX_PLOT_CLASSES} of {len(result.curves)} classes, most objects)"
                  if len(result.curves) > MAX_PLOT_CLASSES else ""))
    if len(result.curves) <= 30:
        ax_all.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    fig_all.tight_layout()
    path = out_dir / "pr_curves.png"
    fig_all.savefig(path, dpi=100)
    written.append(path)
    return written


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: str | Path,
                          normalize: bool = True) -> Path:
    """Heat map of :func:`yolokit.eval.confusion.confusion_matrix` (rows true, columns predicted;
    rows normalised to sum 1 when ``normalize``), with a ``background`` row and column."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(class_names) + ["background"]
    subset = ""
    if len(names) - 1 > MAX_PLOT_CLASSES:  # the classes with the most true objects, and background
        keep = np.sort(np.argsort(-matrix[:-1].sum(axis=1), kind="stable")[:MAX_PLOT_CLASSES])
        idx = np.r_[keep, len(names) - 1]
        subset = f", {MAX_PLOT_CLASSES} of {len(names) - 1} classes (most objects)"
        matrix, names = matrix[np.ix_(idx, idx)], [names[i] for i in idx]
    m = matrix.astype(np.float64)
    if normalize:
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = len(names)
    size = max(6, 0.3 * n + 2)
    fig = new_figure(figsize=(size, size * 0.85))
    ax = fig.add_subplot()
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks(range(n), names, rotation=90, fontsize=7 if n > 20 else 9)
    ax.set_yticks(range(n), names, fontsize=7 if n > 20 else 9)
    ax.set(xlabel="predicted", ylabel="true",
           title="confusion matrix" + (" (row-normalised)" if normalize else "") + subset)
    if n <= 40:
        # counts sized to the cell: ~40% of its height in points, 6..16 pt; thousands with a separator
        cell_pt = 72 * size * 0.8 / n
        fontsize = float(np.clip(0.4 * cell_pt, 6, 16))
        for (i, j), v in np.ndenumerate(matrix):
            if v:
                ax.text(j, i, f"{int(v):,}", ha="center", va="center", fontsize=fontsize,
                        color="white" if m[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
