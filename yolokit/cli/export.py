"""Export a model to ONNX (dynamic batch), optionally with the NMS inside the graph.

Examples:
  yolokit export --model yolov3-tiny.cfg --weights yolov3-tiny.weights --format onnx
  yolokit export --model runs/train/best.pt --format onnx --nms --conf 0.25 --iou 0.45 --out best-nms.onnx

Input "images": (batch, 3, imgsz, imgsz) float RGB in [0, 1], letterboxed.
Output without --nms, "predictions": (batch, N, 5+C) = cx, cy, w, h (network pixels), objectness, class probs.
Output with --nms, "detections": (K, 7) = batch index, x1, y1, x2, y2 (network pixels), score, class.
When onnxruntime is installed the exported file is run once and compared with torch.

int8 (ONNX Runtime static quantization, QDQ): calibrated on real images, the convs feeding the heads and the
box decoding kept in float, then AP50 of fp32 and int8 measured on held-out images; an int8 model losing more
than --max-ap-drop points is refused (deleted, exit 2) unless --force:
  yolokit export --model yolov3-tiny.cfg --weights yolov3-tiny.weights --int8 \
      --calib configs/data/coco128_yolo.yaml            # calibrates on train, guards on val
  yolokit detect photo.jpg --model yolov3-tiny-int8.onnx     # any .onnx runs through ONNX Runtime
"""

from __future__ import annotations

HELP = "export a model to ONNX (dynamic batch, with or without NMS in the graph)"


def add_arguments(parser) -> None:
    from yolokit.cli.detect import add_model_arguments

    add_model_arguments(parser)
    parser.add_argument("--format", choices=("onnx",), default="onnx", help="export format (onnx)")
    parser.add_argument("--nms", action="store_true", help="put the confidence filter + NMS inside the graph")
    parser.add_argument("--conf", type=float, default=0.25, help="score threshold of the in-graph NMS, in [0, 1]")
    parser.add_argument("--iou", type=float, help="IoU threshold of the in-graph NMS, in [0, 1] (default: the "
                                                  "checkpoint's, else 0.45)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 11 for NonMaxSuppression)")
    parser.add_argument("--out", help="output file (default: beside the model file, <name>.onnx, -nms.onnx or "
                                      "-int8.onnx; ./<name>.onnx for a model name)")
    parser.add_argument("--check-image", metavar="IMG",
                        help="photo for the onnxruntime check (default: random pixels, which find nothing)")
    q = parser.add_argument_group("int8 (post-training static quantization with ONNX Runtime)")
    q.add_argument("--int8", action="store_true",
                   help="write an int8 ONNX model calibrated on --calib images, behind an AP50 guard")
    q.add_argument("--calib", metavar="DATA", help="calibration images: a dataset (as --data takes), e.g. "
                                                   "configs/data/coco128_yolo.yaml")
    q.add_argument("--calib-split", default="train", help="split of --calib to calibrate on (default: train)")
    q.add_argument("--calib-images", type=int, default=32, help="calibration images (default: 32)")
    q.add_argument("--calib-method", choices=("percentile", "minmax", "entropy"), default="percentile",
                   help="activation range estimate (default: percentile 99.999)")
    q.add_argument("--guard-data", metavar="DATA", help="held-out images for the accuracy guard (default: --calib)")
    q.add_argument("--guard-split", default="val", help="split of the guard data (default: val)")
    q.add_argument("--guard-images", type=int, help="use only the first N guard images (default: all)")
    q.add_argument("--max-ap-drop", type=float, default=1.0,
                   help="largest AP50 loss (points) accepted against fp32 (default: 1.0)")
    q.add_argument("--force", action="store_true", help="keep an int8 model that fails the guard (warns)")


def run(args) -> int:
    from pathlib import Path

    import torch

    import yolokit
    from yolokit.models.onnx import export_onnx, run_onnx
    from yolokit.models.predict import default_imgsz, model_settings
    from yolokit.settings import ExportSettings

    s = ExportSettings.from_args(args)  # every bad value is one line, before the model is loaded
    if args.int8:
        from yolokit.settings import check_at_least, check_int

        check_int("calib_images", args.calib_images, 1)
        if args.guard_images is not None:
            check_int("guard_images", args.guard_images, 1)
        check_at_least("max_ap_drop", args.max_ap_drop, 0.0)
    from yolokit.cli.detect import require_weights

    require_weights(args)  # a cfg without --weights exports noise: only with --random-weights
    model = yolokit.load(args.model, weights=args.weights, names=args.names, device=s.device).eval()
    args.imgsz = s.imgsz or default_imgsz(model)
    args.conf = s.conf
    args.iou = s.iou if s.iou is not None else float(model_settings(model).get("iou", 0.45))
    if args.int8:
        return _export_int8(args, model)
    # Default: the model's name in the current directory (a cfg may sit in a read-only folder).
    out = Path(args.out) if args.out else default_out(args, "-nms.onnx" if args.nms else ".onnx")
    export_onnx(model, out, args.imgsz, nms=args.nms, conf=args.conf, iou=args.iou, opset=args.opset)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, opset {args.opset}, dynamic batch"
          f"{', NMS in graph' if args.nms else ''})")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("onnxruntime not installed: skipped the torch/ONNX comparison (pip install yolokit[onnx])")
        return 0
    x = torch.rand(2, 3, args.imgsz, args.imgsz, device=s.device)
    if args.check_image:
        from yolokit.models.predict import Predictor
        from yolokit.apps.sources import open_source

        image = next(iter(open_source(args.check_image))).image
        x = Predictor(model, args.imgsz, bgr=True, device=s.device).preprocess([image, image[:, ::-1].copy()]).x
    with torch.no_grad():
        ref = model(x)
    ref = ref.cpu()
    got = torch.from_numpy(run_onnx(out, x))
    if args.nms:
        from yolokit.models.postprocess import postprocess

        n_ref = sum(len(d) for d in postprocess(ref, args.conf, args.iou, max_det=ref.shape[1]))
        print(f"onnxruntime check: {len(got)} detections, torch post-processor: {n_ref}")
    else:
        print(f"onnxruntime check: max |onnx - torch| = {(got - ref).abs().max().item():.2e} "
              f"over outputs {tuple(got.shape)}")
    return 0


def _export_int8(args, model) -> int:
    from pathlib import Path

    from yolokit.apps.export import export_int8
    from yolokit.errors import ConfigError

    if args.nms:
        raise ConfigError("--int8 exports without --nms (yolokit runs the int8 model through its own NMS)")
    if not args.calib:
        raise ConfigError("--int8 needs --calib DATA (real images to calibrate on, e.g. "
                          "configs/data/coco128_yolo.yaml)")
    out = Path(args.out) if args.out else default_out(args, "-int8.onnx")
    report = export_int8(model.cpu(), out, args.imgsz, args.calib, args.calib_split, args.calib_images,
                         args.guard_data, args.guard_split, args.guard_images, args.max_ap_drop, args.force,
                         args.calib_method, args.opset)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, int8, {args.imgsz}x{args.imgsz}; AP50 fp32 "
          f"{report['ap50_fp32']:.2f} -> int8 {report['ap50_int8']:.2f})")
    return 0


def default_out(args, suffix: str):
    """Where an export goes without --out: beside the model's file (runs/x/best.pt -> runs/x/best.onnx), as a
    user of a run folder expects, or in the current folder for a model name from configs/models."""
    from pathlib import Path

    model = Path(args.model)
    return model.with_name(model.stem + suffix) if model.is_file() else Path(model.stem + suffix)
