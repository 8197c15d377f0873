"""int8 export: ONNX Runtime static quantization (QDQ) of a yolokit ONNX file, calibrated on real images, with an
accuracy guard (AP50 of fp32 and int8 on a held-out split). The ONNX file format itself -- export with or without
the NMS inside the graph, its metadata, loading and running it -- is :mod:`yolokit.models.onnx`."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from yolokit.errors import ConfigError


# ---------------------------------------------------------------------------------------------- int8

#: Largest AP50 loss (points, coco-style 0-100) that ``quantize_int8``'s accuracy guard accepts by default.
MAX_AP50_DROP = 1.0


def head_convs(model: nn.Module) -> list[int]:
    """Indices of the layers that feed a detection head (the convs kept in float by :func:`quantize_int8`).

    Their outputs are box offsets and logits that the decoder pushes through ``exp`` and ``sigmoid``: int8
    steps there move boxes and scores far more than anywhere in the trunk."""
    from yolokit.models.heads import head_inputs

    return sorted({index for _, index in head_inputs(model)})


#: A Darknet model's stem: its layers before the first conv with at least this many input channels.
STEM_CHANNELS = 32


def int8_float_layers(model: nn.Module) -> list[int]:
    """Layers :func:`quantize_int8` keeps in float32: the stem and the convs feeding a detection head
    (:func:`head_convs`).

    The stem is every layer before the first conv with ``STEM_CHANNELS`` or more input channels (yolov3-tiny: the
    3- and 16-channel convs at full and half resolution and their pools, layers 0-3; yolov3: layer 0). ONNX
    Runtime's int8 kernels lose to its float ones on so few input channels (yolov3-tiny's first conv: 4.5 vs 1.8
    ms at 416 px), and those layers carry the photo's finest detail: keeping them float made int8 yolov3-tiny
    faster (0.52x ONNX Runtime fp32 instead of 0.64x) and more accurate (AP50 +0.2 instead of -0.2 on coco128
    val2017; BENCHMARKS.md "infer")."""
    stem = []
    for i, layer in enumerate(getattr(model, "layers", None) or []):
        conv = getattr(layer, "conv", None)
        if conv is not None and getattr(conv, "in_channels", 0) >= STEM_CHANNELS:
            break
        stem.append(i)
    return sorted(set(stem) | set(head_convs(model)))


#: Ops quantized in the trunk (QDQ around each; ONNX Runtime fuses them into its int8 kernels).
_INT8_OPS = ("Conv", "LeakyRelu", "MaxPool", "Concat", "Resize", "Add")


def _layer_index(node_name: str) -> int | None:
    """``/model/layers.12/conv/Conv`` -> 12 (None for nodes outside the layer list)."""
    import re

    m = re.search(r"/layers\.(\d+)/", node_name)
    return int(m.group(1)) if m else None


class _CalibrationImages:
    """ONNX Runtime ``CalibrationDataReader`` over dataset images, pre-processed by the one Predictor."""

    def __init__(self, images, prepare):
        self._images, self._prepare = iter(images), prepare

    def get_next(self):
        image = next(self._images, None)
        return None if image is None else {"images": self._prepare(image)}


def quantize_int8(model: nn.Module, fp32_path: str | Path, out: str | Path, calib_images, imgsz: int,
                  keep_float: list[int] | None = None, per_channel: bool = True, method: str = "minmax") -> Path:
    """Post-training static int8 quantization of an exported fp32 ONNX file with ONNX Runtime.

    Activation ranges come from ``calib_images`` (HxWx3 uint8 RGB, real photos: e.g. coco128 train)
    letterboxed at ``imgsz`` exactly as detection does (:class:`yolokit.models.predict.Predictor`); min/max
    calibration, QDQ format, uint8 activations (asymmetric) and int8 weights per output channel (symmetric):
    the U8S8 pair ONNX Runtime's x86 kernels run. The layers of ``keep_float`` (default:
    :func:`int8_float_layers`) and everything after the heads' convs (the box decoding) stay float32.

    Why ONNX Runtime (issue 13, BENCHMARKS.md "infer"): it is the fastest fp32 CPU runtime measured here (with
    OpenVINO, equal within noise), its int8 kernels are maintained, and the result is one portable file that
    ``yolokit.load`` runs;
    ``torch.ao.quantization`` is deprecated, and torchao's PT2E path needs ``torch.compile`` (minutes of
    warm-up on this CPU) and cannot be saved as one file.
    """
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quant_pre_process,
                                          quantize_static)

    from yolokit.models.predict import Predictor

    import onnx

    out = Path(out)
    keep = int8_float_layers(model) if keep_float is None else keep_float
    graph = onnx.load(str(fp32_path)).graph
    # Exported node names follow the torch module path (/model/layers.<i>/conv/Conv): quantize only the trunk's
    # layers, never a head's decoding (its sigmoid/exp outputs and the final concat span 0..1 and 0..input
    # pixels at once: one uint8 scale for both destroys the probabilities) nor the convs in ``keep``.
    heads = {h.layer for h in getattr(model, "heads", None) or []}
    trunk = [n.name for n in graph.node if n.op_type in _INT8_OPS
             and (i := _layer_index(n.name)) is not None and i not in heads and i not in keep]
    predictor = Predictor(model, imgsz)

    def prepare(image):
        return predictor.preprocess([image]).x.numpy()

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise ConfigError(f"calibration method {method!r}: expected one of {sorted(methods)}")
    pre = out.with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), _CalibrationImages(calib_images, prepare),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=list(_INT8_OPS), nodes_to_quantize=trunk,
                        calibrate_method=methods[method],
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    finally:
        pre.unlink(missing_ok=True)
    return out


def ap50(model: nn.Module, dataset, imgsz: int, batch: int = 8, limit: int | None = None) -> float:
    """AP50 (all-point mAP at IoU 0.5, in points 0-100, :func:`yolokit.eval.evaluate`'s "voc") of ``model`` on
    ``dataset`` (its first ``limit`` images) through the one Predictor at the evaluation thresholds (conf 0.001,
    iou 0.6)."""
    from yolokit.eval import evaluate_model

    names = dataset.class_names
    if limit is not None and limit < len(dataset):
        dataset = [dataset[i] for i in range(limit)]
    result = evaluate_model(model, dataset, imgsz=imgsz, conf=0.001, iou=0.6, batch_size=batch, metrics=("voc",),
                            class_names=names)
    return 100.0 * float(result["voc"] or 0.0)


def accuracy_guard(fp32_ap50: float, int8_ap50: float, max_drop: float = MAX_AP50_DROP) -> tuple[bool, str]:
    """``(ok, message)``: ok when the int8 model loses at most ``max_drop`` AP50 points against fp32."""
    drop = fp32_ap50 - int8_ap50
    verdict = "within" if drop <= max_drop else "OVER"
    return drop <= max_drop, (f"AP50 fp32 {fp32_ap50:.2f}, int8 {int8_ap50:.2f}: drop {drop:+.2f} points, "
                              f"{verdict} the {max_drop:.2f}-point limit")


def _images(spec, split: str, limit: int | None):
    from yolokit.data import load_dataset

    ds = load_dataset(spec, split)
    n = len(ds) if limit is None else min(limit, len(ds))
    if n == 0:
        raise ConfigError(f"{spec}: split '{split}' has no images")
    return ds, n


def export_int8(model: nn.Module, out: str | Path, imgsz: int, calib, calib_split: str = "train",
                calib_images: int = 32, guard=None, guard_split: str = "val", guard_images: int | None = None,
                max_drop: float = MAX_AP50_DROP, force: bool = False, method: str = "percentile",
                opset: int = 17, log=print) -> dict:
    """Export ``model`` as an int8 ONNX file at ``out``, calibrated on real images, behind an accuracy guard.

    1. fp32 export (a temporary file); 2. :func:`quantize_int8` calibrated on the first ``calib_images`` images
    of ``calib``'s ``calib_split`` (a dataset spec as ``--data`` takes); 3. AP50 of fp32 and int8 on a HELD-OUT
    split (``guard``/``guard_split``, default the calibration data's ``val``) through the one Predictor; more than
    ``max_drop`` points lost: the int8 file is deleted and ConfigError raised, unless ``force`` (then a warning).
    The guard's figures are stored in the file's metadata (``yolokit.load(out).meta["int8"]``).
    Returns that report (dict).
    """
    import tempfile

    from yolokit.models.onnx import OnnxModel, export_onnx, write_metadata

    guard = calib if guard is None else guard
    if str(guard) == str(calib) and guard_split == calib_split:
        raise ConfigError(f"the accuracy guard needs images the calibration did not see: calibration and guard "
                          f"both use {calib} split '{calib_split}' (pass another --guard-split or --guard-data)")
    calib_ds, n_calib = _images(calib, calib_split, calib_images)
    guard_ds, n_guard = _images(guard, guard_split, guard_images)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = export_onnx(model, Path(tmp) / "fp32.onnx", imgsz, opset=opset)
        log(f"calibrating on {n_calib} images of {calib} [{calib_split}] ({method}) ...")
        quantize_int8(model, fp32_path, out, (calib_ds[i].image for i in range(n_calib)), imgsz, method=method)
        fp32, int8 = OnnxModel(fp32_path), OnnxModel(out)
        log(f"accuracy guard: AP50 of fp32 and int8 on {n_guard} images of {guard} [{guard_split}] ...")
        ap_fp32, ap_int8 = ap50(fp32, guard_ds, imgsz, limit=n_guard), ap50(int8, guard_ds, imgsz, limit=n_guard)
    ok, message = accuracy_guard(ap_fp32, ap_int8, max_drop)
    report = {"calib": str(calib), "calib_split": calib_split, "calib_images": n_calib, "method": method,
              "keep_float": int8_float_layers(model), "guard": str(guard), "guard_split": guard_split,
              "guard_images": n_guard, "ap50_fp32": round(ap_fp32, 3), "ap50_int8": round(ap_int8, 3),
              "max_drop": max_drop, "passed": ok}
    meta = dict(int8.meta)
    meta["int8"] = report
    write_metadata(out, meta)
    if not ok and not force:
        out.unlink(missing_ok=True)
        raise ConfigError(f"int8 model refused: {message} (a bigger --calib-images, or --force to keep it)")
    log(("WARNING: " if not ok else "") + message)
    return report

