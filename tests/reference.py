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
