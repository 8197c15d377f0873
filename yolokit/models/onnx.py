"""Exported ONNX models as yolokit models, run by ONNX Runtime (CPU).

``yolokit.load("model.onnx")`` returns an :class:`OnnxModel`: the same contract as a torch model, so the one
prediction path (:class:`yolokit.models.predict.Predictor`: letterbox, forward, NMS, map back) runs it
unchanged and ``yolokit detect/eval --model model.onnx`` give the detections of the torch model it came from::

    model(x)            # x (B, 3, H, W) float RGB in [0, 1] -> (B, N, 5+C) decoded [cx, cy, w, h, obj, probs]
    model.input_size    # (h, w) the graph was exported at (its only size: grid and strides are constants)
    model.heads, model.class_names, model.settings   # from the file's "yolokit" metadata (yolokit export)

A file exported by ``yolokit export`` carries that metadata (:data:`META_KEY`: JSON of the heads, class names,
settings, and for an int8 file its calibration and accuracy check). A foreign ONNX file with the same input and
output layout runs too, without heads (no TTA flip) or class names. Graphs with the NMS inside
(``export --nms``) are refused: yolokit's post-processor does the NMS.

Export (:func:`export_onnx`): without NMS the graph maps ``images`` (B,3,S,S) float RGB [0,1] to ``predictions``
(B,N,5+C), the post-processor's input layout; with NMS it ends in ONNX ``NonMaxSuppression`` (exported from
``torchvision.ops.nms``) and outputs ``detections`` (K,7) = ``[batch_index, x1, y1, x2, y2, score, class]`` in
network pixels for the whole batch: single label per box (its best class), score = objectness x class probability,
NMS per (image, class) through the usual coordinate-offset trick (every group is shifted far apart, so one NMS call
never compares boxes of different groups). It matches ``postprocess(..., multi_label=False)`` except for
``max_det``, which the graph does not apply. The exporter is TorchScript-based (``dynamo=False``): the dynamo
exporter needs ``onnxscript``, and torchvision's ONNX rule for ``nms`` is registered for this one.

Threads: ONNX Runtime's intra-op pool gets ``torch.get_num_threads()`` threads (so torch and ONNX Runtime
rows of a benchmark compare like for like); with ``OMP_WAIT_POLICY=PASSIVE`` (the CLI default on a shared
machine, README "Models") its workers do not spin either.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn

from yolokit.errors import ConfigError, WeightsError
from yolokit.models.base import Detector
from yolokit.models.heads import HeadSpec

# ---------------------------------------------------------------------------------------------- export
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


def export_onnx(model: nn.Module, path: str | Path, imgsz: int = 416, nms: bool = False, conf: float = 0.25,
                iou: float = 0.45, opset: int = 17) -> Path:
    """Write ``model`` (eval mode, decoded outputs) as ONNX to ``path``; batch is a dynamic axis.

    Returns the path. See the module docstring for the inputs and outputs of both variants.
    """
    import io
    import warnings

    model = model.eval()
    buf = io.BytesIO()  # traced into memory, then written once, atomically, with its metadata
    if not nms:
        export_predictions(model, buf, (imgsz, imgsz), opset)
    else:
        import torchvision

        # torchvision checks its CUDA build on the first call of one of its ops; inside the tracer that
        # check (an int-returning op) cannot be recorded, so make the first call here.
        torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
        net = DetectWithNMS(model, conf, iou).eval()  # export restores this mode
        device = next((p.device for p in model.parameters()), torch.device("cpu"))  # traced where it lives
        x = torch.rand(2, 3, imgsz, imgsz, device=device)
        dynamic = {"images": {0: "batch"}, "detections": {0: "num_detections"}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-derived Python ints are expected
            torch.onnx.export(net, (x,), buf, dynamo=False, opset_version=opset, input_names=["images"],
                              output_names=["detections"], dynamic_axes=dynamic, do_constant_folding=True)

    # Heads, class names and settings travel in the file, so `yolokit.load("x.onnx")` is a complete model.
    return write_metadata(path, model_metadata(model, imgsz, nms=bool(nms)), buf.getvalue())


def run_onnx(path: str | Path, x) -> "numpy.ndarray":  # noqa: F821
    """Run an exported model in onnxruntime (CPU) on ``x`` (B,3,S,S) float32; returns its one output."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x, np.float32)
    return session.run(None, {"images": x.astype(np.float32)})[0]


# ---------------------------------------------------------------------------------------------- metadata
#: ONNX ``metadata_props`` key under which ``yolokit export`` stores the model description (JSON).
META_KEY = "yolokit"


def model_metadata(model, imgsz: int, **extra) -> dict:
    """The JSON-able description an exported file carries: heads, class names, settings (imgsz = the export's)."""
    settings = dict(getattr(model, "settings", None) or {})
    settings["imgsz"] = int(imgsz)
    heads = [asdict(h) for h in getattr(model, "heads", None) or []]
    return {"format": 1, "input_size": [int(imgsz), int(imgsz)], "heads": heads,
            "class_names": list(model.class_names) if getattr(model, "class_names", None) else None,
            "settings": settings, **extra}


def write_metadata(path: str | Path, meta: dict, model: bytes | None = None) -> Path:
    """Store ``meta`` as JSON under :data:`META_KEY` in an ONNX model and write it to ``path`` atomically (a crash
    leaves the previous file whole). ``model``: the serialized model (e.g. just exported into memory); default
    the file at ``path`` itself."""
    import onnx

    from yolokit.fileio import write_atomic

    proto = onnx.load_from_string(model) if model is not None else onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != META_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    data = proto.SerializeToString()
    return write_atomic(path, lambda f: f.write(data))


class _Plain(nn.Module):
    """Eval-mode forward without inference_mode wrappers (tracing needs plain tensors)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def export_predictions(model: nn.Module, file, shape: tuple[int, int], opset: int = 17) -> None:
    """Trace ``model`` (eval mode, decoded outputs) to ONNX in ``file`` (a path or a binary file object):
    input ``images`` (B,3,H,W) with a dynamic batch axis, output ``predictions`` (B,N,5+C). The TorchScript
    exporter (``dynamo=False``): the dynamo exporter needs ``onnxscript``."""
    import warnings

    net = _Plain(model.eval()).eval()
    device = next((t.device for t in model.parameters()), torch.device("cpu"))  # traced where it lives
    dynamic = {"images": {0: "batch"}, "predictions": {0: "batch"}}
    # Traced with autograd on (even when called under inference_mode, as the predictor runs): the heads then take
    # their functional decoding; the in-place one (``out=``) has no ONNX form.
    with warnings.catch_warnings(), torch.inference_mode(False), torch.enable_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape-derived Python ints are expected
        x = torch.rand(2, 3, int(shape[0]), int(shape[1]), device=device)  # a normal tensor, made in here
        torch.onnx.export(net, (x,), file, dynamo=False, opset_version=opset, input_names=["images"],
                          output_names=["predictions"], dynamic_axes=dynamic, do_constant_folding=True)


#: ONNX Runtime graph transformers yolokit turns off for exported files. An int8 file from ``yolokit export
#: --int8`` keeps its stem (convs and pools) in float; QDQ propagation would move the quantization that follows the
#: stem's last pool in front of it, where ONNX Runtime pools uint8 in NCHW layout (measured 8.5 ms for a 16x416x416
#: pool, against 0.5 ms for the float pool it replaces). No effect on float files. Running such a file in your own
#: ONNX Runtime session: pass ``disabled_optimizers=QDQ_DISABLED_OPTIMIZERS`` too.
QDQ_DISABLED_OPTIMIZERS = ["QDQPropagationTransformer"]


def session_options(threads: int | None = None):
    """ONNX Runtime CPU session options: all graph optimisations, ``threads`` intra-op threads (default torch's
    count), and no spin-waiting when ``OMP_WAIT_POLICY=PASSIVE`` (the same choice as torch's OpenMP pool)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = int(threads or torch.get_num_threads())
    opts.inter_op_num_threads = 1
    if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def _head(d: dict) -> HeadSpec:
    d = dict(d)
    d["anchors"] = [tuple(a) for a in d.get("anchors", [])]
    d["stride"], d["grid"] = tuple(d["stride"]), tuple(d["grid"])
    return HeadSpec(**d)


def _checked_metadata(text: str, path) -> dict:
    """The file's yolokit metadata, checked like flags before anything is sized from it: JSON (any depth or
    digit count is one line), an object, ``input_size`` two valid input sides (:func:`check_imgsz`),
    ``class_names`` a list of strings (a string would be taken letter by letter), ``heads`` a list of objects."""
    from yolokit.fileio import load_json
    from yolokit.settings import check_imgsz

    if len(text) > 64 << 20:
        raise WeightsError(f"{path}: the '{META_KEY}' metadata is {len(text)} characters; refused")
    meta = load_json(text, f"{path}: the '{META_KEY}' metadata", WeightsError)
    if not isinstance(meta, dict):
        raise WeightsError(f"{path}: the '{META_KEY}' metadata is a JSON {type(meta).__name__}, expected an object")
    size = meta.get("input_size")
    if size is not None:
        if not (isinstance(size, list) and len(size) == 2):
            raise WeightsError(f"{path}: metadata input_size {str(size)[:40]} is not [height, width]")
        try:
            meta["input_size"] = [check_imgsz("imgsz", v) for v in size]
        except ConfigError as exc:
            raise WeightsError(f"{path}: metadata input_size: {str(exc).split(' ', 1)[-1]}") from None
    names = meta.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise WeightsError(f"{path}: metadata class_names must be a list of strings, got "
                           f"{type(names).__name__} {str(names)[:40]!r}")
    heads = meta.get("heads")
    if heads is not None and not (isinstance(heads, list) and all(isinstance(h, dict) for h in heads)):
        raise WeightsError(f"{path}: metadata heads must be a list of objects")
    if not isinstance(meta.get("settings") or {}, dict):
        raise WeightsError(f"{path}: metadata settings must be an object")
    return meta


class _OnCpu(Detector):
    """What the ONNX Runtime modules share: they run on the CPU only (``cpu_only`` says how to get elsewhere)
    and detect through the one :class:`yolokit.models.predict.Predictor`. Parameter-free ``nn.Module`` s, so every
    door that takes a model (``Predictor``, ``evaluate_model``, ``.eval()``, ``.to("cpu")``) takes them."""

    cpu_only = "runs on the CPU"

    def to(self, *args, **kwargs):
        device = torch.device(args[0]) if args and isinstance(args[0], (str, torch.device)) else \
            kwargs.get("device")
        if device is not None and torch.device(device).type != "cpu":
            raise ConfigError(f"{self.cpu_only}, not {device}")
        return self

    def optimize_for_inference(self, *args, **kwargs) -> "_OnCpu":
        """Already an inference graph (ONNX Runtime optimises it when the session starts)."""
        return self


class OnnxModel(_OnCpu):
    """An ONNX file run by ONNX Runtime with a yolokit model's contract (module docstring); CPU only."""

    def __init__(self, path: str | Path, names=None, threads: int | None = None):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError(f"{path}: running ONNX models needs onnxruntime (pip install yolokit[onnx])") from None
        self.path = Path(path)
        try:
            self.session = ort.InferenceSession(str(self.path), session_options(threads),
                                                providers=["CPUExecutionProvider"],
                                                disabled_optimizers=QDQ_DISABLED_OPTIMIZERS)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise WeightsError(f"{path}: ONNX Runtime cannot load this file ({exc})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or outputs[0].name == "detections":
            raise ConfigError(f"{path}: expected one input (B,3,H,W) and one output (B,N,5+C) 'predictions'; got "
                              f"inputs {[i.name for i in inputs]}, outputs {[o.name for o in outputs]} (a graph "
                              f"exported with --nms cannot run here: export without --nms)")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        meta = _checked_metadata(self.session.get_modelmeta().custom_metadata_map.get(META_KEY, "{}"), path)
        self.meta = meta
        shape = inputs[0].shape
        if meta.get("input_size"):
            self.input_size = tuple(int(v) for v in meta["input_size"])
        elif len(shape) == 4 and all(isinstance(v, int) for v in shape[2:]):
            self.input_size = (shape[2], shape[3])
        else:
            self.input_size = (416, 416)
        try:
            self.heads = [_head(h) for h in meta.get("heads") or []] or None
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsError(f"{path}: the '{META_KEY}' metadata's heads are not yolokit's ({type(exc).__name__}: "
                               f"{str(exc)[:80]})") from None
        self.class_names = meta.get("class_names")
        self.settings = dict(meta.get("settings") or {})
        self.settings.setdefault("imgsz", self.input_size[0])
        if names is not None:
            from yolokit.models.cfg import read_names

            self.class_names = read_names(names) if isinstance(names, (str, Path)) else list(names)
        width = outputs[0].shape[-1] if outputs[0].shape else None
        if self.class_names is not None and isinstance(width, int) and len(self.class_names) != width - 5:
            raise ConfigError(f"{names or path}: {len(self.class_names)} class names for a model with "
                              f"{width - 5} classes")
        self.device = torch.device("cpu")

    @property
    def num_classes(self) -> int | None:
        if self.heads:  # the exported metadata
            return self.heads[0].num_classes
        width = self.session.get_outputs()[0].shape[-1]
        return width - 5 if isinstance(width, int) else None

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[2:]) != tuple(self.input_size):
            raise ConfigError(f"{self.path.name}: exported for {self.input_size[0]}x{self.input_size[1]} inputs, "
                              f"got {x.shape[2]}x{x.shape[3]} (run at --imgsz {self.input_size[0]}, or export "
                              f"again with --imgsz {x.shape[2]})")
        out = self.session.run([self.output_name],
                               {self.input_name: x.detach().to("cpu", torch.float32).contiguous().numpy()})[0]
        return torch.from_numpy(out)

    @property
    def cpu_only(self) -> str:
        return f"{self.path.name}: ONNX models run on the CPU here (--device cpu)"

    def extra_repr(self) -> str:
        return f"{self.path}, input {self.input_size}, int8={bool(self.meta.get('int8'))}"


class OrtFastPath(_OnCpu):
    """A torch model run by ONNX Runtime: its own graph, exported in memory for each input shape on first use
    (about 0.7 s for yolov3-tiny) and kept for the last ``cache_size`` shapes; the batch axis is dynamic.

    What ``optimize_for_inference()`` returns on a CPU float32 model when onnxruntime is installed: with OpenVINO
    (equal within noise), the fastest fp32 CPU runtime measured here at every size (BENCHMARKS.md "infer"), with the
    eager model's detections.
    Same contract as the model (``input_size``, ``heads``, ``class_names``, ``settings``); CPU only."""

    cpu_only = "the ONNX Runtime fast path runs on the CPU (optimize_for_inference(backend='torch') for a GPU)"

    def __init__(self, model: nn.Module, threads: int | None = None, cache_size: int = 4):
        super().__init__()
        import copy

        import onnxruntime  # noqa: F401  (ImportError here, not at the first frame)

        # exported from; a copy, so the caller's mode is untouched. Its parameters keep requires_grad: the heads'
        # traceable (functional) decoding is the one taken for them (models.heads.YoloHead.forward).
        self.model = copy.deepcopy(model).eval()
        self.input_size = tuple(model.input_size)
        self.heads = getattr(model, "heads", None)
        self.class_names = getattr(model, "class_names", None)
        self.settings = dict(getattr(model, "settings", None) or {})
        self.device = torch.device("cpu")
        self.threads, self.cache_size = threads, int(cache_size)
        self._sessions: dict[tuple[int, int], object] = {}

    def session(self, shape: tuple[int, int]):
        """The ONNX Runtime session for inputs of ``shape = (H, W)`` (exported now if not cached)."""
        import io

        import onnxruntime as ort

        shape = (int(shape[0]), int(shape[1]))
        if shape not in self._sessions:
            buf = io.BytesIO()
            export_predictions(self.model, buf, shape)
            if len(self._sessions) >= self.cache_size:
                self._sessions.pop(next(iter(self._sessions)))       # the oldest shape
            self._sessions[shape] = ort.InferenceSession(buf.getvalue(), session_options(self.threads),
                                                         providers=["CPUExecutionProvider"])
        return self._sessions[shape]

    def prepare(self, shapes) -> None:
        """Build the sessions for these ``(H, W)`` input shapes now (the predictor does, before a video pipeline
        starts its threads: tracing is not thread-safe with respect to Python's warning filters)."""
        for shape in shapes:
            self.session(shape)

    def forward(self, x: Tensor) -> Tensor:
        out = self.session(tuple(x.shape[2:])).run(
            ["predictions"], {"images": x.detach().to("cpu", torch.float32).contiguous().numpy()})[0]
        return torch.from_numpy(out)


def load_onnx(path: str | Path, names=None, device="cpu", threads: int | None = None) -> OnnxModel:
    """:class:`OnnxModel` for ``path`` (what :func:`yolokit.load` returns for a ``.onnx`` file)."""
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such ONNX file")
    return OnnxModel(path, names=names, threads=threads).to(device).eval()
