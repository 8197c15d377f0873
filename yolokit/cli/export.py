"""Export a model to ONNX (dynamic batch), optionally with the NMS inside the graph.

Examples:
  yolokit export --model yolov3-tiny.cfg --weights yolov3-tiny.weights --format onnx
  yolokit export --model runs/train/best.pt --format onnx --nms --conf 0.25 --iou 0.45 --out best-nms.onnx

Input "images": (batch, 3, imgsz, imgsz) float RGB in [0, 1], letterboxed.
Output without --nms, "predictions": (batch, N, 5+C) = cx, cy, w, h (network pixels), objectness, class probs.
Output with --nms, "detections": (K, 7) = batch index, x1, y1, x2, y2 (network pixels), score, class.
When onnxruntime is installed the exported file is run once and compared with torch.
"""

from __future__ import annotations

HELP = "export a model to ONNX (dynamic batch, with or without NMS in the graph)"


def add_arguments(parser) -> None:
    from yolokit.cli.detect import add_model_arguments

    add_model_arguments(parser)
    parser.add_argument("--format", choices=("onnx",), default="onnx", help="export format (onnx)")
    parser.add_argument("--nms", action="store_true", help="put the confidence filter + NMS inside the graph")
    parser.add_argument("--conf", type=float, default=0.25, help="score threshold of the in-graph NMS")
    parser.add_argument("--iou", type=float, default=0.45, help="IoU threshold of the in-graph NMS")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 11 for NonMaxSuppression)")
    parser.add_argument("--out", help="output file (default: ./<model name>.onnx or -nms.onnx)")
    parser.add_argument("--check-image", metavar="IMG",
                        help="photo for the onnxruntime check (default: random pixels, which find nothing)")


def run(args) -> int:
    from pathlib import Path

    import torch

    import yolokit
    from yolokit.apps.export import export_onnx, run_onnx
    from yolokit.errors import ConfigError

    from yolokit.models.predict import default_imgsz

    if args.imgsz is not None and args.imgsz % 32:
        raise ConfigError(f"--imgsz {args.imgsz}: must be a multiple of 32 (the YOLO stride)")
    if args.nms and args.opset < 11:
        raise ConfigError(f"--opset {args.opset}: NonMaxSuppression needs opset 11 or later")
    from yolokit.cli.detect import require_weights

    require_weights(args)  # a cfg without --weights exports noise: only with --random-weights
    model = yolokit.load(args.model, weights=args.weights, names=args.names).eval()
    args.imgsz = args.imgsz or default_imgsz(model)
    args.iou = 0.45 if args.iou is None else args.iou
    # Default: the model's name in the current directory (a cfg may sit in a read-only folder).
    out = Path(args.out) if args.out else Path(Path(args.model).stem + ("-nms.onnx" if args.nms else ".onnx"))
    export_onnx(model, out, args.imgsz, nms=args.nms, conf=args.conf, iou=args.iou, opset=args.opset)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, opset {args.opset}, dynamic batch"
          f"{', NMS in graph' if args.nms else ''})")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("onnxruntime not installed: skipped the torch/ONNX comparison (pip install yolokit[onnx])")
        return 0
    x = torch.rand(2, 3, args.imgsz, args.imgsz)
    if args.check_image:
        from yolokit.models.predict import Predictor
        from yolokit.apps.sources import open_source

        image = next(iter(open_source(args.check_image))).image
        x = Predictor(model, args.imgsz, bgr=True).preprocess([image, image[:, ::-1].copy()]).x
    with torch.no_grad():
        ref = model(x)
    got = torch.from_numpy(run_onnx(out, x))
    if args.nms:
        from yolokit.postprocess import postprocess

        n_ref = sum(len(d) for d in postprocess(ref, args.conf, args.iou, max_det=ref.shape[1]))
        print(f"onnxruntime check: {len(got)} detections, torch post-processor: {n_ref}")
    else:
        print(f"onnxruntime check: max |onnx - torch| = {(got - ref).abs().max().item():.2e} "
              f"over outputs {tuple(got.shape)}")
    return 0
