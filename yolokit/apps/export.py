"""ONNX export, with a dynamic batch axis, with or without the NMS inside the graph.

Without NMS the graph maps ``images`` (B,3,S,S) float RGB [0,1] to ``predictions`` (B,N,5+C), the
post-processor's input layout (``[cx, cy, w, h]`` network pixels, objectness, class probabilities);
run :func:`yolokit.postprocess.postprocess` on it, or any YOLO-style NMS.

With NMS the graph ends in ONNX ``NonMaxSuppression`` (exported from ``torchvision.ops.nms``) and
outputs ``detections`` (K,7) = ``[batch_index, x1, y1, x2, y2, score, class]`` in network pixels for
the whole batch: single label per box (its best class), score = objectness x class probability,
NMS per (image, class) through the usual coordinate-offset trick (every group is shifted far apart,
so one NMS call never compares boxes of different groups). It matches ``postprocess(...,
multi_label=False)`` except for ``max_det``, which the graph does not apply.

The exporter is TorchScript-based (``dynamo=False``): the dynamo exporter needs ``onnxscript``, and
torchvision's ONNX rule for ``nms`` is registered for this one.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn


class DetectWithNMS(nn.Module):
    """``model`` followed by confidence filter + per-(image, class) NMS, traceable for ONNX."""

    def __init__(self, model: nn.Module, conf: float = 0.25, iou: float = 0.45):
        super().__init__()
        self.model = model
        self.conf = float(conf)
        self.iou = float(iou)

    def forward(self, x: Tensor) -> Tensor:
        import torchvision

        from yolokit.ops.boxes import cxcywh_to_xyxy

        pred = self.model(x)                                        # (B,N,5+C)
        b, n, width = pred.shape
        scores, cls = (pred[..., 5:] * pred[..., 4:5]).max(-1)      # (B,N) best class per box
        boxes = cxcywh_to_xyxy(pred[..., :4]).reshape(-1, 4)        # (B*N,4)
        image = torch.arange(b, device=x.device).repeat_interleave(n)
        scores, cls = scores.reshape(-1), cls.reshape(-1)
        keep = scores > self.conf
        boxes, scores, cls, image = boxes[keep], scores[keep], cls[keep], image[keep]
        groups = image * (width - 5) + cls
        # batched_nms uses the coordinate-offset trick when tracing: one NonMaxSuppression node.
        kept = torchvision.ops.batched_nms(boxes, scores, groups, self.iou)
        return torch.cat((image[kept, None].to(boxes.dtype), boxes[kept], scores[kept, None],
                          cls[kept, None].to(boxes.dtype)), 1)


class _Plain(nn.Module):
    """Eval-mode forward without inference_mode wrappers (tracing needs plain tensors)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def export_onnx(model: nn.Module, path: str | Path, imgsz: int = 416, nms: bool = False, conf: float = 0.25,
                iou: float = 0.45, opset: int = 17) -> Path:
    """Write ``model`` (eval mode, decoded outputs) as ONNX to ``path``; batch is a dynamic axis.

    Returns the path. See the module docstring for the inputs and outputs of both variants.
    """
    import warnings

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    net = (DetectWithNMS(model, conf, iou) if nms else _Plain(model)).eval()  # export restores this mode
    if nms:
        import torchvision

        # torchvision checks its CUDA build on the first call of one of its ops; inside the tracer that
        # check (an int-returning op) cannot be recorded, so make the first call here.
        torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
    x = torch.rand(2, 3, imgsz, imgsz)
    out_name = "detections" if nms else "predictions"
    dynamic = {"images": {0: "batch"}, out_name: {0: "num_detections" if nms else "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-derived Python ints are expected
        torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=opset, input_names=["images"],
                          output_names=[out_name], dynamic_axes=dynamic, do_constant_folding=True)
    return path


def run_onnx(path: str | Path, x) -> "numpy.ndarray":  # noqa: F821
    """Run an exported model in onnxruntime (CPU) on ``x`` (B,3,S,S) float32; returns its one output."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x, np.float32)
    return session.run(None, {"images": x.astype(np.float32)})[0]
