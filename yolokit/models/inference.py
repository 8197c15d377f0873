"""Running a model on images: pre-processing, ``predict`` and the inference-optimised module.

Pixel convention: network pixels are those of the (letterboxed or resized) network input; ``predict`` maps boxes
back to the original image's pixels with the inverse of the exact scale and offset it applied, then clips.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from yolokit.data.transforms import letterbox as letterbox_image
from yolokit.models import layers as L


def _size(model, imgsz) -> tuple[int, int]:
    if imgsz is None:
        return model.input_size
    if isinstance(imgsz, int):
        return imgsz, imgsz
    return int(imgsz[0]), int(imgsz[1])


def to_tensor(images: list[np.ndarray]) -> Tensor:
    """List of HxWx3 uint8 RGB arrays (same size) -> float ``(B, 3, H, W)`` in [0, 1]."""
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    return batch.float().div_(255.0)


@torch.inference_mode()
def predict(model: nn.Module, images, conf: float = 0.25, iou: float = 0.45, imgsz=None, letterbox: bool = True,
            agnostic: bool = False, max_det: int = 300) -> list[Tensor]:
    """Detections for a list of images.

    Args:
        model: a :class:`DarknetModel` (or its optimised module, which keeps ``input_size``).
        images: list of HxWx3 uint8 RGB arrays (or one array).
        imgsz: network input ``(h, w)`` or an int; default the cfg's ``[net]`` size.
        letterbox: keep the aspect ratio (centred, grey padding: :func:`yolokit.data.transforms.letterbox`);
            False = plain resize, as OpenCV's ``blobFromImage``.
    Returns:
        one ``(K, 6)`` float tensor ``[x1, y1, x2, y2, score, class]`` per image, in that image's pixels.
    """
    # Post-processing is a higher floor than models; imported here so models stay importable on their own.
    from yolokit.postprocess import postprocess

    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    size = _size(model, imgsz)
    batch, maps = [], []
    for img in images:
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"predict expects HxWx3 uint8 RGB images, got {img.shape} {img.dtype}")
        h0, w0 = img.shape[:2]
        if letterbox:
            canvas, s, (px, py) = letterbox_image(img, size)
            maps.append((s, s, px, py, w0, h0))
        else:
            canvas = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
            maps.append((size[1] / w0, size[0] / h0, 0, 0, w0, h0))
        batch.append(canvas)
    device = getattr(model, "device", None) or next(model.parameters()).device
    x = to_tensor(batch).to(device)
    was_training = model.training
    model.eval()
    try:
        pred = model(x).float()
    finally:
        model.train(was_training)
    dets = postprocess(pred, conf_thres=conf, iou_thres=iou, max_det=max_det, agnostic=agnostic)
    out = []
    for d, (sx, sy, px, py, w0, h0) in zip(dets, maps):
        d = d.clone()
        d[:, [0, 2]] = ((d[:, [0, 2]] - px) / sx).clamp_(0, w0)
        d[:, [1, 3]] = ((d[:, [1, 3]] - py) / sy).clamp_(0, h0)
        out.append(d)
    return out


def fold_batchnorm(block: L.ConvBlock) -> None:
    """Fold ``block.bn`` into ``block.conv`` in place: ``w' = w * g/sqrt(v+eps)``, ``b' = beta - m*g/sqrt(v+eps)``."""
    conv, bn = block.conv, block.bn
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True).to(conv.weight.device)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_(bn.bias + (bias - bn.running_mean) * scale)
    block.conv = fused
    del block.bn


# oneDNN post-op names for Darknet activations that it can fuse into the convolution (mish it cannot).
_ONEDNN_POSTOPS = {nn.Identity: ("none", []), nn.ReLU: ("relu", []), nn.Sigmoid: ("sigmoid", []),
                   nn.SiLU: ("swish", []), nn.Tanh: ("tanh", [])}


def _onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class FusedConv(nn.Module):
    """Inference-only conv + bias + activation as ONE oneDNN primitive (the op torch.compile's CPU backend
    emits), with the weights pre-packed in oneDNN's blocked layout once instead of on every call.

    Saves a full read and write of every activation map (leaky ReLU alone was ~19% of yolov3-tiny's eager CPU
    time). Works for any input size; CPU float32 only, not differentiable, not serialisable.
    """

    def __init__(self, conv: nn.Conv2d, act: nn.Module, example_shape: list[int], dtype=torch.float32):
        super().__init__()
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        if isinstance(act, nn.LeakyReLU):
            self.attr, self.scalars, self.tail = "leaky_relu", [act.negative_slope], None
        elif type(act) in _ONEDNN_POSTOPS:
            (self.attr, self.scalars), self.tail = _ONEDNN_POSTOPS[type(act)], None
        else:
            self.attr, self.scalars, self.tail = "none", [], act
        weight = conv.weight.detach().to(dtype)
        self.bias = conv.bias.detach().to(dtype).clone() if conv.bias is not None else None
        self.weight = torch.ops.mkldnn._reorder_convolution_weight(
            weight, self.padding, self.stride, self.dilation, self.groups, example_shape)

    def forward(self, x: Tensor) -> Tensor:
        y = torch.ops.mkldnn._convolution_pointwise(x, self.weight, self.bias, self.padding, self.stride,
                                                    self.dilation, self.groups, self.attr, self.scalars, "")
        return self.tail(y) if self.tail is not None else y


class _Inference(nn.Module):
    """Wraps an optimised copy: converts the input to channels-last, runs without autograd."""

    def __init__(self, model: nn.Module, channels_last: bool, dtype=torch.float32):
        super().__init__()
        self.model = model
        self.channels_last, self.dtype = channels_last, dtype
        self.input_size = model.input_size
        self.heads = model.heads
        self.class_names = model.class_names
        self.device = next(model.buffers(), next(model.parameters(), torch.empty(0))).device

    def forward(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            x = x.to(self.dtype)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.model(x).float()

    def predict(self, images, **kwargs) -> list[Tensor]:
        return predict(self, images, **kwargs)


def optimize(model: nn.Module, channels_last: bool | None = None, fuse: bool | None = None,
             dtype: torch.dtype = torch.float32) -> nn.Module:
    """An eval-mode copy of ``model`` for inference.

    * batch-norm folded into the convolutions (always);
    * on CPU with oneDNN (``fuse``, default on there): every conv + bias + activation becomes one oneDNN
      primitive with pre-packed weights (:class:`FusedConv`);
    * channels-last memory on CPU (oneDNN's native layout, so no reorders between layers);
    * run under ``inference_mode``;
    * ``dtype=torch.bfloat16`` (CPU with oneDNN only): bf16 weights and activations, fp32 accumulation and
      fp32 box decoding -- about 1.8x faster on AVX-512-BF16 CPUs; detections differ slightly (measured in
      BENCHMARKS.md "infer"), so it is opt-in. The output is float32 either way.

    Outputs equal the original's to float rounding (folding and fusion reorder the arithmetic); figures in
    BENCHMARKS.md "infer".
    """
    m = copy.deepcopy(model).eval()
    for layer in m.layers:
        if isinstance(layer, L.ConvBlock) and "bn" in layer._modules:
            fold_batchnorm(layer)
    device = next(m.parameters()).device
    cpu = device.type == "cpu" and next(m.parameters()).dtype == torch.float32
    channels_last = cpu if channels_last is None else channels_last
    fuse = (cpu and _onednn_available()) if fuse is None else fuse
    for p in m.parameters():
        p.requires_grad_(False)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    if dtype != torch.float32 and not fuse:
        raise ValueError(f"dtype={dtype} needs the fused oneDNN path (CPU float32 model, oneDNN available)")
    if fuse:
        shapes = {i.index: [1, *i.in_shape] for i in m.infos}
        for index, layer in enumerate(m.layers):
            if isinstance(layer, L.ConvBlock):
                act = layer._modules.get("act", nn.Identity())
                m.layers[index] = FusedConv(layer.conv, act, shapes[index], dtype)
    return _Inference(m, channels_last, dtype).eval()
