"""Detect objects in images, directories, globs, video files, webcams and streams.

Examples:
  yolokit detect photo.jpg --model yolov3-tiny.cfg --weights yolov3-tiny.weights
  yolokit detect 'photos/*.png' --model runs/train/best.pt --save-json --out runs/detect
  yolokit detect traffic.avi --model yolov3-tiny.cfg --weights yolov3-tiny.weights --classes car truck
  yolokit detect 0 --model best.pt --show                 # webcam 0 (needs a GUI build of OpenCV)
  yolokit detect rtsp://camera/stream --model best.pt

Annotated images keep their names; a video becomes OUT/<name>.mp4 at the input's fps and size.
--save-json writes OUT/<name>.json in the COCO results format (as `yolokit eval --pred` reads it).
"""

from __future__ import annotations

import sys
from pathlib import Path

HELP = "detect on images, directories, globs, videos, webcams, streams (annotated output)"


def add_arguments(parser) -> None:
    parser.add_argument("source", nargs="+",
                        help="image, directory, glob (quoted), video file, webcam index, or rtsp/http URL")
    add_model_arguments(parser)
    add_output_arguments(parser, default_out="runs/detect")
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: average with the mirrored image (before the NMS)")
    parser.add_argument("--tta-scales", type=float, nargs="+", default=[1.0], metavar="S",
                        help="with --tta, also these fractions of --imgsz (joined before the NMS), e.g. 1 0.83 0.67")
    parser.add_argument("--batch", type=int, default=1, help="frames per forward pass (video)")
    parser.add_argument("--conf-file", metavar="METRICS_JSON",
                        help="per-class score thresholds: metrics.json of `yolokit eval --out` (its F1-optimal "
                             "'thresholds') or {class: conf}; classes it lacks use --conf")


def settings(args):
    """The validated :class:`yolokit.settings.PredictSettings` of these flags (one line per bad value). A HOG+SVM
    ``--model M.npz`` runs on the CPU and its --imgsz is the longer image side (any size >= 32)."""
    from yolokit.errors import ConfigError
    from yolokit.settings import PredictSettings, check_int

    problem = model_file_problem(Path(str(args.model))) if args.model is not None else None
    if problem:  # a results.csv or a bare .weights as --model: said before any source is opened
        raise ConfigError(problem)
    if args.model is not None and is_hog_model(args):
        s = PredictSettings.from_args(args, imgsz=None, device="cpu")
        s.imgsz = None if args.imgsz is None else check_int("imgsz", args.imgsz, 32)
        return s
    return PredictSettings.from_args(args)


def add_output_arguments(parser, default_out: str) -> None:
    """Thresholds and output options shared by every detector's command (``detect``, ``hog detect``)."""
    parser.add_argument("--conf", type=float, default=0.25,
                        help="score threshold in [0, 1] (YOLO: objectness x class prob; HOG: calibrated SVM score)")
    parser.add_argument("--iou", type=float, help="NMS IoU threshold in [0, 1] (default: the checkpoint's, else 0.45)")
    parser.add_argument("--max-det", type=int, default=300, help="at most this many detections per image")
    parser.add_argument("--classes", nargs="+", metavar="CLASS", help="keep only these classes (names or indices)")
    parser.add_argument("--out", help=f"run folder (default: {default_out}; one that holds files -> the next free "
                                      f"name, {default_out}2, ...)")
    parser.add_argument("--exist-ok", action="store_true", help="write into --out even when it holds files")
    parser.set_defaults(_default_out=default_out)
    parser.add_argument("--no-save", dest="nosave", action="store_true", help="write no annotated images/video")
    parser.add_argument("--save-json", action="store_true", help="write OUT/<source>.json (COCO results)")
    parser.add_argument("--show", action="store_true", help="show frames in a window (q or Esc stops)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames per source")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_model_arguments(parser, required: bool = True) -> None:
    """--model/--weights/--names/--imgsz/--device, shared with ``yolokit export`` and benches."""
    parser.add_argument("--model", required=required, help="Darknet .cfg or yolokit checkpoint (.pt)")
    parser.add_argument("--weights", help="Darknet .weights for a .cfg model")
    parser.add_argument("--names", help="class names file (one per line); default: the checkpoint's, "
                                        "or the one .names file beside the cfg/weights that fits")
    parser.add_argument("--imgsz", type=int, help="network input size, a multiple of 32 (default: the size the "
                                                  "checkpoint was trained and validated at, else the cfg's)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available, else cpu), cpu, cuda, cuda:N")
    parser.add_argument("--random-weights", action="store_true",
                        help="allow a cfg/model name without --weights (random initialisation: for testing only)")


def require_weights(args) -> None:
    """A cfg or model name without --weights is a randomly initialised network: refused unless
    --random-weights says that is meant (its detections are noise)."""
    from pathlib import Path

    from yolokit.errors import ConfigError
    from yolokit.models import is_checkpoint

    src = Path(str(args.model))
    problem = model_file_problem(src)
    if problem:
        raise ConfigError(problem)
    if args.weights is None and not getattr(args, "random_weights", False) \
            and not (src.is_file() and (is_checkpoint(src) or src.suffix.lower() == ".onnx")):
        raise ConfigError(f"--model {args.model}: no trained weights (a cfg or model name needs --weights W, "
                          f"or a checkpoint .pt); pass --random-weights to run it randomly initialised")


#: What --model takes, for the messages below.
MODEL_KINDS = ("a Darknet .cfg with --weights W.weights, a checkpoint .pt (e.g. runs/train/best.pt), an exported "
               ".onnx, a HOG+SVM .npz, or a model name from configs/models")


def model_file_problem(path: Path) -> str | None:
    """A one-line error when ``--model PATH`` is a file of the wrong kind (Darknet weights without their cfg, a
    results table, an image...); None when it may be a model."""
    suffix = path.suffix.lower()
    if suffix == ".weights":
        cfgs = sorted(path.parent.glob("*.cfg"))
        cfg = next((c for c in cfgs if c.stem == path.stem), cfgs[0] if len(cfgs) == 1 else None)
        example = f"--model {cfg} --weights {path}" if cfg else f"--model NAME.cfg --weights {path}"
        return (f"--model {path}: a Darknet .weights file holds the weights only; the network is its .cfg: "
                f"{example}")
    if suffix in (".csv", ".json", ".txt", ".yaml", ".yml", ".log", ".jpg", ".jpeg", ".png", ".mp4", ".avi",
                  ".names", ".xml", ".html"):
        hint = ""
        if suffix == ".csv" and (path.parent / "best.pt").is_file():  # results.csv of a training run
            hint = f" (this run's model is {path.parent / 'best.pt'})"
        return f"--model {path}: a {suffix} file is not a model{hint}; --model takes {MODEL_KINDS}"
    return None


def is_hog_model(args) -> bool:
    """``--model`` names a HOG+SVM ``.npz`` (``yolokit hog train``): detect and track run it like a YOLO model."""
    return Path(str(args.model)).suffix.lower() == ".npz"


def hog_predictor(args, s):
    """The HOG+SVM detector of ``--model M.npz`` behind the same predictor interface as YOLO's."""
    from yolokit.hog import HogSvmDetector
    from yolokit.hog.predict import HogPredictor

    model = HogSvmDetector.load(args.model)
    return HogPredictor(model, s.imgsz, s.conf, s.iou, s.max_det,
                        classes=parse_classes(args.classes, model.class_names))


def load_model(args):
    """The model named by --model/--weights/--names on --device, optimised for inference
    (batch-norm folded, channels-last on CPU). Checks --imgsz and resolves --device in ``args`` first (for
    commands that build no :class:`~yolokit.settings.PredictSettings`)."""
    import yolokit
    from yolokit.settings import check_device, check_imgsz

    if args.imgsz is not None:
        check_imgsz("imgsz", args.imgsz)
    args.device = check_device("device", args.device)  # auto -> cuda or cpu, for later uses of args.device
    require_weights(args)
    model = yolokit.load(args.model, weights=args.weights, names=args.names, device=args.device)
    return model.optimize_for_inference()


def parse_classes(values, names) -> list[int] | None:
    """--classes values (names or indices) -> class indices; unknown ones are an error."""
    from yolokit.errors import ConfigError

    if not values:
        return None
    out = []
    for v in values:
        if v.isdigit():
            if names is not None and int(v) >= len(names):
                raise ConfigError(f"--classes {v}: the model has {len(names)} classes, indices 0..{len(names) - 1}")
            out.append(int(v))
        elif names is not None and v in names:
            out.append(names.index(v))
        else:
            known = f"; known: {', '.join(names)}" if names else " (the model has no class names)"
            raise ConfigError(f"--classes: unknown class {v!r}{known}")
    return out


def run(args) -> int:
    from yolokit.models.predict import Predictor
    from yolokit.apps.sources import open_source

    s = settings(args)  # every bad value is one line, before anything is opened
    args.device = s.device
    from yolokit.apps.sources import distinct_outputs

    # fail on a bad SOURCE before loading the model; two inputs never share an output name
    sources = distinct_outputs([open_source(src) for src in args.source])
    from yolokit.apps.distributed import join

    args.world = join(s.device)  # under torchrun: (rank, world); each rank detects its block of the images
    if is_hog_model(args):  # a HOG+SVM .npz: the same file `yolokit track` and `yolokit hog detect` take
        if s.tta:
            from yolokit.errors import ConfigError

            raise ConfigError("--tta applies to YOLO models, not to a HOG+SVM .npz")
        predictor = hog_predictor(args, s)
        names = predictor.class_names
    else:
        model = load_model(args)
        names = getattr(model, "class_names", None)
        predictor = Predictor(model, s.imgsz, s.conf, s.iou, s.max_det,
                              classes=parse_classes(args.classes, names), device=s.device, tta=s.tta,
                              tta_scales=s.tta_scales, bgr=True)  # OpenCV frames are BGR
    if args.conf_file:  # predict at the lowest class threshold, then keep each class above its own
        from yolokit.eval.thresholds import apply_class_thresholds

        predictor = apply_class_thresholds(predictor, args.conf_file, names)
    return run_sources(sources, predictor, args, batch=s.batch)


def run_folder(args) -> Path:
    """The run folder of this command, chosen and created once (:mod:`yolokit.apps.outputs`; under torchrun by
    rank 0, for every rank); ``args.out`` is set to it and the choice is printed: ``run folder: PATH (why)``."""
    from yolokit.apps.outputs import choose_run_folder

    if getattr(args, "_out_chosen", False):
        return Path(args.out)
    rank, world = getattr(args, "world", (0, 1))
    chosen = [None]
    if rank == 0:
        chosen = [choose_run_folder(args.out, args._default_out, args.exist_ok)]
    if world > 1:
        import torch.distributed as dist

        dist.broadcast_object_list(chosen, src=0)
    folder, why = chosen[0]
    args.out, args._out_chosen = str(folder), True
    if rank == 0:
        print(f"run folder: {folder} ({why})")
    return folder


def run_sources(sources, predictor, args, batch: int = 1, written: list | None = None, **pipeline_kwargs) -> int:
    """Run every source through the pipeline with the output options of :func:`add_output_arguments`;
    report timings and skipped frames. The files written are appended to ``written``; when it is None they are
    listed at the end. Returns the exit status (130 when interrupted)."""
    from yolokit.apps.outputs import written_lines

    files = [] if written is None else written
    status = _run_sources(sources, predictor, args, batch, files, pipeline_kwargs)
    if written is None:
        print("\n".join(written_lines(files)))
    return status


def _run_sources(sources, predictor, args, batch, written, pipeline_kwargs) -> int:
    from yolokit.apps.distributed import RankPart
    from yolokit.apps.pipeline import run as run_pipeline

    out = run_folder(args) if not args.nosave or args.save_json else None
    for source in sources:
        part = RankPart(source, *getattr(args, "world", (0, 1)))  # this rank's images (all without torchrun)
        if part.source is None:
            continue  # a video under torchrun: rank 0 runs it
        source = part.source
        result = run_pipeline(source, predictor, out, batch=batch, save=not args.nosave,
                              save_json=args.save_json, show=args.show, max_frames=args.max_frames,
                              progress=not args.no_progress, **pipeline_kwargs)
        result.outputs = part.merge(result.outputs)  # rank 0: one OUT/<name>.json in image order
        print(f"{source.name}: {result.timings.summary()}")
        if result.failed:
            what = "frames" if source.kind == "video" else "images"
            print(f"{source.name}: {result.failed} {what} could not be decoded and were skipped", file=sys.stderr)
            for reason in getattr(source, "reasons", ()):
                print(f"  {reason}", file=sys.stderr)
        if getattr(source, "lost", 0):
            print(source.report(), file=sys.stderr)
        written.extend(result.outputs)
        if result.interrupted:
            print(f"{source.name}: interrupted; output closed after {result.frames} frames", file=sys.stderr)
            return 130
    return 0
