"""Evaluate detections: VOC mAP (2007 11-point and 2010+ all-point, IoU 0.5, difficult ignored) and
COCO mAP through pycocotools, with a per-class table.

Ground truth: ``--data DATA.yaml [--split val]``, or ``--format voc|coco|yolo --images PATH
--annotations PATH [--names FILE]``. Detections: ``--pred results.json`` (COCO results JSON from any
detector), or ``--model CFG|CKPT [--weights W]`` to run a yolokit model first.

examples:
  yolokit eval --data configs/data/coco128.yaml --pred results.json
  yolokit eval --data configs/data/coco128.yaml --model yolov3-tiny.cfg --weights yolov3-tiny.weights --json
  yolokit eval --format voc --images JPEGImages --annotations Annotations --pred dets.json --out runs/eval --plots
"""

from __future__ import annotations

HELP = "VOC / COCO mAP of detections (a results JSON or a model) against a dataset"


def add_arguments(p):
    g = p.add_argument_group("ground truth")
    g.add_argument("--data", metavar="YAML", help="dataset description (configs/data/*.yaml)")
    g.add_argument("--split", default="val", help="split of --data to evaluate on")
    g.add_argument("--download", action="store_true", help="fetch --data first if its files are missing")
    g.add_argument("--format", choices=("voc", "coco", "yolo"), help="ground truth given directly: its format")
    g.add_argument("--images", metavar="PATH", help="with --format: the image folder")
    g.add_argument("--annotations", metavar="PATH",
                   help="with --format: VOC XML folder, COCO instances JSON, or YOLO label folder")
    g.add_argument("--names", metavar="FILE|A,B,..", help="with --format: class names (needed for yolo)")
    d = p.add_argument_group("detections")
    d.add_argument("--pred", metavar="JSON", help="COCO results JSON ([{image_id, category_id, bbox, score}])")
    d.add_argument("--model", metavar="CFG|CKPT", help="run this model (Darknet .cfg, checkpoint or model name)")
    d.add_argument("--weights", metavar="W", help="Darknet .weights for a .cfg model")
    d.add_argument("--random-weights", action="store_true",
                   help="allow a cfg/model name without --weights (random initialisation: for testing only)")
    d.add_argument("--imgsz", type=int, help="network input size, a multiple of 32 (default: the checkpoint's "
                                             "validation size, else the cfg's)")
    d.add_argument("--conf", type=float, help="detector score threshold in [0, 1] (default: the checkpoint's "
                                             "validation setting, else 0.001)")
    d.add_argument("--iou", type=float, help="detector NMS IoU in [0, 1] (default: the checkpoint's setting, "
                                            "else 0.6)")
    d.add_argument("--max-det", type=int, help="detector: at most this many detections per image (default: the "
                                               "checkpoint's setting, else 300)")
    d.add_argument("--batch", type=int, default=8, help="images per forward pass")
    d.add_argument("--device", default="auto", help="torch device for --model: auto (CUDA when available, else "
                                                    "cpu), cpu, cuda, cuda:N")
    d.add_argument("--tta", action="store_true", help="test-time augmentation (flip-averaged) with --model")
    d.add_argument("--tta-scales", type=float, nargs="+", default=[1.0], metavar="S",
                   help="with --tta, also these fractions of --imgsz (joined before the NMS)")
    d.add_argument("--category-ids", choices=("auto", "zero", "one", "coco91"), default="auto",
                   help="id space of --pred's category_id: auto (default: a COCO dataset's ids, else guessed "
                        "from the file), zero (0..C-1), one (1..C), coco91 (COCO's 80 classes in 91 ids)")
    m = p.add_argument_group("metrics and output")
    m.add_argument("--metrics", default="voc07,voc,coco", help="comma list of voc07, voc, coco")
    m.add_argument("--match-iou", type=float, default=0.5,
                   help="VOC: least IoU of a detection with a ground-truth box to count as a match (in [0, 1])")
    m.add_argument("--pixel-offset", type=float, default=0.0, choices=(0.0, 1.0),
                   help="VOC IoU pixel convention: 0 continuous, 1 VOC devkit '+1'")
    m.add_argument("--report-conf", type=float, default=0.25,
                   help="score threshold of the precision/recall line and confusion matrix (not the detector's "
                        "--conf)")
    m.add_argument("--coco-max-dets", type=int, default=100,
                   help="COCO maxDets for AP (not the detector's --max-det)")
    m.add_argument("--coco-backend", choices=("pycocotools", "faster"), default="pycocotools",
                   help="COCOeval implementation: pycocotools, or faster (faster-coco-eval, if installed)")
    m.add_argument("--out", dest="save_dir", metavar="DIR", help="run folder for metrics.json, metrics.txt, "
                   "detections.json, plots (one that holds files -> the next free name, DIR2, ...; --report "
                   "without --out: runs/eval)")
    m.add_argument("--plots", action="store_true", help="with --out: PR curves and confusion matrix PNGs")
    m.add_argument("--report", action="store_true",
                   help="write report.html in the run folder: one self-contained page (metrics, PR curves, TIDE, "
                        "thresholds, worst images) readable offline; turns on --plots and --tide, and --worst 6 "
                        "unless given")
    m.add_argument("--exist-ok", action="store_true", help="write into --out even when it holds files")
    m.add_argument("--save-pred", metavar="JSON", help="write the detections as a COCO results JSON")
    m.add_argument("--tide", action="store_true",
                   help="TIDE error breakdown (dAP of Cls, Loc, Both, Dupe, Bkg, Miss; FalsePos, FalseNeg), as tidecv; "
                        "with --out also drilldown.json (per-image TP / FP by type / FN at --report-conf)")
    m.add_argument("--analysis", action="store_true",
                   help="with --out: COCO analysis bands (C75, C50, Loc, Sim, Oth, BG, FN) as analysis/*.png")
    m.add_argument("--worst", type=int, default=0, metavar="K",
                   help="with --out: draw the K images with most errors at --report-conf as worst/*.png")
    m.add_argument("--json", action="store_true", help="print the metrics dict as JSON instead of the table")


def load_ground_truth(args):
    """The dataset named by ``--data`` or by ``--format/--images/--annotations``."""
    from pathlib import Path

    from yolokit.data import load_dataset
    from yolokit.errors import ConfigError

    if args.data and args.format:
        raise ConfigError("give either --data or --format/--images/--annotations, not both")
    if args.data:
        if getattr(args, "download", False):
            from yolokit.data.download import ensure

            ensure(args.data)
        return load_dataset(args.data, args.split)
    if not (args.format and args.images and args.annotations):
        raise ConfigError("ground truth needed: --data DATA.yaml, or --format and --images and --annotations")
    split = {"images": str(Path(args.images).resolve())}
    split["labels" if args.format == "yolo" else "annotations"] = str(Path(args.annotations).resolve())
    spec = {"format": args.format, "root": ".", "splits": {"val": split}}
    if args.names:
        names = Path(args.names)
        spec["names"] = str(names.resolve()) if names.is_file() else [n.strip() for n in args.names.split(",")]
    return load_dataset(spec, "val")


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from yolokit.errors import ConfigError
    from yolokit.eval import evaluate, format_table, save_detections
    from yolokit.settings import EvalSettings, check_int

    settings = EvalSettings.from_args(args)  # every bad value is one line, before any file is read
    check_int("worst", getattr(args, "worst", 0), 0)
    if bool(args.pred) == bool(args.model):
        raise ConfigError("give exactly one of --pred results.json or --model CFG|CKPT")
    if args.model:  # a results.csv or a bare .weights as --model: said before the dataset is read
        from yolokit.cli.detect import model_file_problem

        problem = model_file_problem(Path(args.model))
        if problem:
            raise ConfigError(problem)
    ds = load_ground_truth(args)
    if args.model:  # the model reads every image: bad ones reported and left out, as train and detect do
        from yolokit.data.load import drop_undecodable

        drop_undecodable(ds)
    if len(ds.problems):
        print(f"ground truth: {len(ds)} images, {ds.num_boxes} boxes; data problems: {ds.problems.summary()} "
              f"(see `yolokit check`)", file=sys.stderr)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if args.pred:
        dets = args.pred
    else:
        dets = _run_model(args, settings, ds)
        if dets is None:  # a torchrun worker: rank 0 scores the gathered detections (yolokit.eval.distributed)
            return 0
    if args.report:
        args.plots = args.tide = True
        args.worst = args.worst or 6
    folder = None
    if args.save_dir is not None or args.report:  # a run folder, as detect and train (rank 0 only gets here)
        from yolokit.apps.outputs import choose_run_folder

        folder, why = choose_run_folder(args.save_dir, "runs/eval", args.exist_ok)
        args.save_dir = str(folder)
        print(f"run folder: {folder} ({why})", file=sys.stderr if args.json else sys.stdout)
    cat_ids = None if args.category_ids == "auto" else args.category_ids
    result = evaluate(ds, dets, metrics=metrics, match_iou=settings.match_iou, pixel_offset=args.pixel_offset,
                      category_ids=cat_ids, report_conf=settings.report_conf, coco_max_dets=settings.coco_max_dets,
                      coco_backend=args.coco_backend, save_dir=args.save_dir, plots=args.plots, tide=args.tide,
                      analysis=args.analysis, worst=args.worst)
    if args.save_pred:
        save_detections(ds, dets, args.save_pred, category_ids=cat_ids)
    if args.report:
        from yolokit.eval.report import write_report

        what = args.model or args.pred
        data = args.data or args.annotations
        lines = [line for line in (getattr(args, "_settings_line", None),
                                   f"matching IoU {settings.match_iou:g}, report score {settings.report_conf:g}, "
                                   f"COCO maxDets {settings.coco_max_dets}") if line]
        write_report(folder, result, f"{Path(what).name} on {Path(str(data)).name} [{args.split}]", lines)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))
    if folder is not None:
        from yolokit.apps.outputs import written_lines

        files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: (p.name != "report.html", p))
        print("\n".join(written_lines(files)), file=sys.stderr if args.json else sys.stdout)
    return 0


def _run_model(args, settings, ds) -> list:
    """--model: one (K, 6) detection array per dataset image (original pixels), through the one Predictor with
    the model's saved settings as defaults."""
    import sys

    import yolokit
    from yolokit.eval import predict_dataset
    from yolokit.models.predict import EVAL_DEFAULTS, Predictor

    from yolokit.cli.detect import require_weights

    require_weights(args)  # a cfg without --weights scores noise: only with --random-weights
    model = yolokit.load(args.model, args.weights, device=settings.device)
    names = getattr(model, "class_names", None)
    if names and len(names) != len(ds.class_names):
        print(f"warning: the model has {len(names)} classes, the dataset {len(ds.class_names)}; "
              f"class indices are compared as they are", file=sys.stderr)
    predictor = Predictor(model, settings.imgsz, settings.conf, settings.iou, settings.max_det,
                          device=settings.device, tta=settings.tta, tta_scales=settings.tta_scales,
                          defaults=EVAL_DEFAULTS)
    args._settings_line = settings_origin_line(predictor, model, settings)
    print(args._settings_line, file=sys.stderr)
    from yolokit.engine.distributed import init_from_env
    from yolokit.eval.distributed import predict_dataset_distributed

    if init_from_env(settings.device).world > 1:  # under torchrun: each rank predicts its shard, gathered on rank 0
        return predict_dataset_distributed(predictor, ds, settings.batch, all_ranks=False)
    return predict_dataset(predictor, ds, settings.batch, progress=not args.json and sys.stderr.isatty())


def settings_origin_line(predictor, model, settings) -> str:
    """``predicting at imgsz 416 (--imgsz), conf 0.005 (the model's), iou 0.6 (eval default), max_det 300 (...)``:
    each value and where it came from -- a flag, the checkpoint's saved settings, or evaluation's default."""
    from yolokit.models.predict import model_settings

    saved = model_settings(model)
    parts = []
    for key, value in (("imgsz", predictor.imgsz), ("conf", predictor.conf), ("iou", predictor.iou),
                       ("max_det", predictor.max_det)):
        if getattr(settings, key, None) is not None:
            origin = "--" + key.replace("_", "-")
        elif saved.get(key) is not None:
            origin = "the model's saved setting"
        elif key == "imgsz":
            origin = "the cfg's [net] size"
        else:
            origin = "eval default"
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{key} {shown} ({origin})")
    return "predicting at " + ", ".join(parts)
