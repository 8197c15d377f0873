"""The fast path (``model.optimize_for_inference()``): batch-norm folding, fused oneDNN convolutions, channels-last.

Images -> detections is :mod:`yolokit.models.predict` (the one prediction path), for this module as for the
eager model.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import Tensor, nn

from yolokit.models import layers as L
from yolokit.models.base import Detector


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
    emits), with the weights pre-packed in oneDNN's blocked layout for each input shape it sees.

    Saves a full read and write of every activation map (leaky ReLU alone was ~19% of yolov3-tiny's eager CPU
    time). oneDNN picks the blocked weight layout from the whole problem (batch, channels, height, width): a
    weight packed for one input shape and used at another is re-laid on EVERY call, which made this path 4-5x
    slower than eager at sizes other than the cfg's on some CPUs (issue 13). So the weight is packed lazily,
    once per input shape, and the last ``cache_size`` packings are kept (least recently used dropped first;
    each costs one copy of the layer's weights). Works for any input size; CPU only, not differentiable, not
    serialisable.
    """

    def __init__(self, conv: nn.Conv2d, act: nn.Module, example_shape: list[int] | None = None,
                 dtype=torch.float32, cache_size: int = 4):
        super().__init__()
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        if isinstance(act, nn.LeakyReLU):
            self.attr, self.scalars, self.tail = "leaky_relu", [act.negative_slope], None
        elif type(act) in _ONEDNN_POSTOPS:
            (self.attr, self.scalars), self.tail = _ONEDNN_POSTOPS[type(act)], None
        else:
            self.attr, self.scalars, self.tail = "none", [], act
        self.weight = conv.weight.detach().to(dtype).contiguous()  # plain OIHW: the source of every packing
        self.bias = conv.bias.detach().to(dtype).clone() if conv.bias is not None else None
        self.cache_size = max(1, int(cache_size))
        self._packed: OrderedDict[tuple[int, ...], Tensor] = OrderedDict()
        if example_shape is not None:
            self.packed_for(tuple(example_shape))

    def packed_for(self, shape: tuple[int, ...]) -> Tensor:
        """The weight in oneDNN's layout for input ``shape`` (N, C, H, W), packed on first use."""
        w = self._packed.get(shape)
        if w is None:
            w = torch.ops.mkldnn._reorder_convolution_weight(
                self.weight, self.padding, self.stride, self.dilation, self.groups, list(shape))
            self._packed[shape] = w
            if len(self._packed) > self.cache_size:
                self._packed.popitem(last=False)
        else:
            self._packed.move_to_end(shape)
        return w

    def forward(self, x: Tensor) -> Tensor:
        y = torch.ops.mkldnn._convolution_pointwise(x, self.packed_for(tuple(x.shape)), self.bias, self.padding,
                                                    self.stride, self.dilation, self.groups, self.attr,
                                                    self.scalars, "")
        return self.tail(y) if self.tail is not None else y


class Optimizable:
    """Mixin for torch Detectors: :meth:`~yolokit.models.base.Detector.optimize_for_inference` is
    :func:`optimize` (``class DarknetModel(Optimizable, Detector)``)."""

    def optimize_for_inference(self, channels_last: bool | None = None, fuse: bool | None = None,
                               dtype: torch.dtype = torch.float32, backend: str = "auto") -> Detector:
        """The fastest equivalent Detector for inference; see :func:`optimize`."""
        return optimize(self, channels_last=channels_last, fuse=fuse, dtype=dtype, backend=backend)


class _Inference(Detector):
    """Wraps an optimised copy: converts the input to channels-last, runs without autograd."""

    def __init__(self, model: nn.Module, channels_last: bool, dtype=torch.float32):
        super().__init__()
        self.model = model
        self.channels_last, self.dtype = channels_last, dtype
        self.input_size = model.input_size
        self.heads = model.heads
        self.class_names = model.class_names
        self.settings = dict(getattr(model, "settings", None) or {})
        self.device = next(model.buffers(), next(model.parameters(), torch.empty(0))).device

    def forward(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            x = x.to(self.dtype)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.model(x).float()

    def optimize_for_inference(self, *args, **kwargs) -> "_Inference":
        return self  # already optimised


#: ``optimize(backend=...)``: "auto" = ONNX Runtime for a CPU float32 model when onnxruntime is installed (and
#: the model exports), else "torch"; "torch" = the oneDNN-fused torch module below; "onnxruntime" = ONNX Runtime
#: or an error.
BACKENDS = ("auto", "torch", "onnxruntime")


def optimize(model: nn.Module, channels_last: bool | None = None, fuse: bool | None = None,
             dtype: torch.dtype = torch.float32, cache_size: int = 4, backend: str = "auto") -> nn.Module:
    """The fastest inference module for ``model`` (measured: BENCHMARKS.md "infer").

    ``backend="auto"``: a CPU float32 model runs in ONNX Runtime when it is installed
    (:class:`yolokit.models.onnx.OrtFastPath`: the model's own graph, exported per input shape on first use; at
    every size measured here it was faster than the fused torch module, with the same detections); anything
    else (CUDA, bf16, an explicit ``fuse``/``channels_last``, no onnxruntime, a graph that does not export)
    gets the torch module. ``backend="torch"``: an eval-mode copy of ``model``:

    * batch-norm folded into the convolutions (always);
    * on CPU with oneDNN (``fuse``, default on there): every conv + bias + activation becomes one oneDNN
      primitive with weights pre-packed for each input shape, the last ``cache_size`` shapes kept
      (:class:`FusedConv`; each shape costs one more copy of the weights);
    * channels-last memory on CPU (oneDNN's native layout, so no reorders between layers);
    * run under ``inference_mode``;
    * ``dtype=torch.bfloat16`` (CPU with oneDNN only): bf16 weights and activations, fp32 accumulation and
      fp32 box decoding -- about 1.8x faster on AVX-512-BF16 CPUs; detections differ slightly (measured in
      BENCHMARKS.md "infer"), so it is opt-in. The output is float32 either way.

    Outputs equal the original's to float rounding (folding and fusion reorder the arithmetic); figures in
    BENCHMARKS.md "infer".
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend != "torch":
        ort = _onnxruntime_path(model, dtype, channels_last, fuse, cache_size, required=backend == "onnxruntime")
        if ort is not None:
            return ort
    m = copy.deepcopy(model).eval()
    for layer in m.layers:
        if isinstance(layer, L.ConvBlock) and "bn" in layer._modules:
            fold_batchnorm(layer)
    device = next(m.parameters()).device
    cpu = device.type == "cpu" and next(m.parameters()).dtype == torch.float32
    channels_last = cpu if channels_last is None else channels_last
    # the fused primitives are packed for each layer's input shape, which a Darknet model's layer table knows
    darknet = m.layer_table
    fuse = (cpu and darknet and _onednn_available()) if fuse is None else fuse
    if fuse and not darknet:
        raise ValueError(f"fuse=True needs a Darknet cfg model (its layer shapes), not {type(model).__name__}")
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
                m.layers[index] = FusedConv(layer.conv, act, shapes[index], dtype, cache_size)
    return _Inference(m, channels_last, dtype).eval()


def _onnxruntime_path(model, dtype, channels_last, fuse, cache_size, required: bool):
    """:class:`yolokit.models.onnx.OrtFastPath` when it applies (see :func:`optimize`), checked by building the
    session for the model's own input size; None (or, when ``required``, an error) otherwise."""
    from yolokit.errors import ConfigError

    params = next(model.parameters(), None)
    plain = params is not None and params.device.type == "cpu" and params.dtype == torch.float32
    why = None
    if not plain or dtype != torch.float32:
        why = "it runs CPU float32 models only"
    elif not required and (channels_last is not None or fuse is not None):
        return None                       # torch-module options asked for: the torch module
    else:
        try:
            from yolokit.models.onnx import OrtFastPath

            fast = OrtFastPath(model, cache_size=cache_size)
            fast.session(fast.input_size)
            return fast.eval()
        except ImportError:
            why = "onnxruntime is not installed (pip install yolokit[onnx])"
        except Exception as exc:  # noqa: BLE001 - an op the exporter or ONNX Runtime does not support
            why = f"the model does not export ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    if required:
        raise ConfigError(f"backend='onnxruntime': {why}")
    return None
