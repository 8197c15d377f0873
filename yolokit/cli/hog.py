"""The classical baseline: HOG features + linear SVM over a sliding window and an image pyramid.

  yolokit hog train --data configs/data/raccoon.yaml --out runs/hog/raccoon.npz
  yolokit hog detect photo.jpg --model runs/hog/raccoon.npz --out runs/hog/detect --save-json
  yolokit hog detect 'photos/*.jpg' --model runs/hog/raccoon.npz --conf 0.5 --save-json --out runs/hog/photos

detect takes the same SOURCE kinds and output options as ``yolokit detect`` (it runs the same pipeline);
--imgsz is the longer image side before scanning (default: the size the model was trained at).
Evaluate with ``yolokit eval``, or ``yolokit compare`` for the side-by-side with YOLO.
"""

from __future__ import annotations

import sys

from yolokit.cli.detect import add_output_arguments

HELP = "HOG+SVM sliding-window baseline: train a model, detect with it"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="hog_command", required=True, metavar="{train,detect}")
    t = sub.add_parser("train", help="train a one-class HOG + linear-SVM detector (hard-negative mining)")
    t.add_argument("--data", required=True, help="dataset YAML (configs/data/*.yaml)")
    t.add_argument("--out", required=True, help="model file to write (.npz)")
    t.add_argument("--split", default="train", help="split to train on")
    t.add_argument("--class", dest="class_name", help="class to detect (default: the dataset's only class)")
    t.add_argument("--imgsz", type=int, default=480, help="longer image side for training and detection")
    t.add_argument("--inner", type=int, default=64, help="object size inside the window, pixels (sqrt of area)")
    t.add_argument("--margin", type=int, default=8, help="context pixels around the object in the window")
    t.add_argument("--scale", type=float, default=1.1, help="pyramid ratio between levels")
    t.add_argument("--rounds", type=int, default=2, help="hard-negative mining rounds")
    t.add_argument("--C", dest="c", type=float, default=1.0, help="LinearSVC C")
    t.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    t.add_argument("--seed", type=int, default=0, help="seed of the negative sampling")
    t.set_defaults(_hog_run=run_train)

    d = sub.add_parser("detect", help="detect with a trained model (same outputs as yolokit detect)")
    d.add_argument("source", nargs="+", help="image, directory, glob (quoted), video file, webcam index or URL")
    d.add_argument("--model", required=True, help="HOG+SVM model (.npz from 'yolokit hog train')")
    d.add_argument("--imgsz", type=int, help="longer image side before scanning (default: the model's)")
    add_output_arguments(d, default_out="runs/hog/detect")
    d.set_defaults(_hog_run=run_detect)


def run(args) -> int:
    return args._hog_run(args)


def run_train(args) -> int:
    from yolokit.data import load_dataset
    from yolokit.errors import ConfigError
    from yolokit.hog import train
    from yolokit.settings import check_at_least, check_int, check_positive

    check_int("imgsz", args.imgsz, 32)
    check_int("inner", args.inner, 8)
    check_int("margin", args.margin, 0)
    check_at_least("scale", args.scale, 1.01)
    check_int("rounds", args.rounds, 0)
    check_positive("C", args.c)
    check_int("limit", args.limit, 0)

    data = load_dataset(args.data, split=args.split, decode=True)  # bad images reported and left out
    names = list(data.class_names)
    if args.class_name is None:
        if len(names) != 1:
            raise ConfigError(f"{args.data}: {len(names)} classes; name the one to detect with --class")
        index = 0
    elif args.class_name in names:
        index = names.index(args.class_name)
    else:
        raise ConfigError(f"--class {args.class_name!r}: not a class of {args.data} ({', '.join(names)})")
    if len(data.problems):
        print(f"{args.data} [{args.split}]: {data.problems.summary()}", file=sys.stderr)
    if args.limit:
        data = [data[i] for i in range(min(args.limit, len(data)))]
    model = train(data, class_index=index, class_name=names[index], inner=args.inner, margin=args.margin,
                  scale=args.scale, imgsz=args.imgsz, rounds=args.rounds, c=args.c, seed=args.seed,
                  log=print)
    print(f"wrote {model.save(args.out)}")
    return 0


def run_detect(args) -> int:
    from yolokit.apps.sources import open_source
    from yolokit.cli.detect import parse_classes, run_sources
    from yolokit.hog import HogSvmDetector
    from yolokit.hog.predict import HogPredictor

    from yolokit.settings import PredictSettings, check_int

    # HOG's --imgsz is the longer image side (any size); the thresholds are checked as detect's
    s = PredictSettings.from_args(args, imgsz=None, device="cpu")
    imgsz = None if args.imgsz is None else check_int("imgsz", args.imgsz, 32)
    sources = [open_source(src) for src in args.source]
    model = HogSvmDetector.load(args.model)
    predictor = HogPredictor(model, imgsz, s.conf, s.iou, s.max_det,
                             classes=parse_classes(args.classes, model.class_names))
    return run_sources(sources, predictor, args)
