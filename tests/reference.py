"""Reference implementations the tests compare library code against. They live here, not in yolokit, so a bug
in the library cannot also be the reference: written plainly, one image and one class at a time."""

import torch
import torchvision


def nms_loop(pred: torch.Tensor, conf_thres: float = 0.25, iou_thres: float = 0.45, max_det: int = 300):
    """Per image: best class per row, score = objectness x class probability, keep score > conf_thres, then
    greedy NMS (``torchvision.ops.nms``) separately for every class, merged by descending score, first
    ``max_det``. ``pred (B, N, 5+C)`` ``[cx, cy, w, h, obj, probs]`` -> list of ``(K, 6)`` xyxy, score, class."""
    out = []
    for x in pred:
        scores, cls = (x[:, 5:] * x[:, 4:5]).max(1)
        m = scores > conf_thres
        cx, cy, w, h = x[m, :4].unbind(1)
        boxes = torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), 1)
        scores, cls = scores[m], cls[m]
        kept = []
        for c in cls.unique():
            idx = torch.nonzero(cls == c).flatten()
            kept.append(idx[torchvision.ops.nms(boxes[idx], scores[idx], iou_thres)])
        keep = torch.cat(kept) if kept else torch.empty(0, dtype=torch.long, device=x.device)
        keep = keep[torch.argsort(scores[keep], descending=True, stable=True)][:max_det]
        out.append(torch.cat((boxes[keep], scores[keep, None], cls[keep, None].to(x.dtype)), 1))
    return out


def nms_per_group(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_thres: float):
    """``torchvision.ops.nms`` run on each group alone; the sorted indices of every kept box."""
    kept = [torch.empty(0, dtype=torch.long)]
    for g in groups.unique():
        idx = torch.nonzero(groups == g).flatten()
        kept.append(idx[torchvision.ops.nms(boxes[idx], scores[idx], iou_thres)])
    return sorted(torch.cat(kept).tolist())


def diou_nms_darknet(boxes, scores, iou_thres: float, beta: float):
    """Darknet's diounms_sort for ONE class, transcribed loop for loop (box.c ``box_diounms``): boxes as
    (x, y, w, h) centre form, sorted by score, a box with a zeroed score suppresses nothing. Returns the kept
    indices by descending score. Plain Python floats."""
    import math

    def as_xywh(b):
        return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1])

    def iou(a, b):
        ax1, ay1, ax2, ay2 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
        bx1, by1, bx2, by2 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
        w, h = min(ax2, bx2) - max(ax1, bx1), min(ay2, by2) - max(ay1, by1)
        inter = 0.0 if w < 0 or h < 0 else w * h
        return inter / (a[2] * a[3] + b[2] * b[3] - inter)

    def diounms(a, b):
        left, right = min(a[0] - a[2] / 2, b[0] - b[2] / 2), max(a[0] + a[2] / 2, b[0] + b[2] / 2)
        top, bot = min(a[1] - a[3] / 2, b[1] - b[3] / 2), max(a[1] + a[3] / 2, b[1] + b[3] / 2)
        c = (right - left) ** 2 + (bot - top) ** 2
        if c == 0:
            return iou(a, b)
        d = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2
        return iou(a, b) - math.pow(d / c, beta)

    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))    # stable: ties keep input order
    prob = {i: float(scores[i]) for i in order}
    xywh = {i: as_xywh([float(v) for v in boxes[i]]) for i in order}
    for n, i in enumerate(order):
        if prob[i] == 0:
            continue
        for j in order[n + 1:]:
            if diounms(xywh[i], xywh[j]) > iou_thres:
                prob[j] = 0
    return [i for i in order if prob[i] > 0]
