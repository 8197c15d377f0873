"""Compare HOG+SVM with YOLO models on one dataset split: same NMS, same evaluator, same CPU.

  yolokit compare --data configs/data/raccoon.yaml --hog runs/hog/raccoon.npz \\
      --yolo yolov3-tiny-finetuned=runs/raccoon/best.pt --yolo tiny-scratch=runs/scratch/best.pt \\
      --imgsz 224 320 416 --write BENCHMARKS.md --plot docs/compare_raccoon.png

Columns: AP50 and AP (COCO protocol), FPS of predict on this CPU (batch 1), learned parameters, FLOPs per
image, and AP per 100K parameters, for every model at every --imgsz (the plot shows the same).
--yolo takes NAME=CHECKPOINT, NAME=MODEL_NAME or NAME=CFG,WEIGHTS.
"""

from __future__ import annotations

#: Printed under the table: compare's AP is COCO's, eval's headline AP50 is VOC's; the same model differs.
AP_NOTE = ("AP50 and AP above: COCO protocol (pycocotools, 101-point interpolation, detections at conf 0.001). "
           "`yolokit eval` heads its table with the VOC all-point AP at IoU 0.5, a different definition: for the "
           "same model the two AP50s differ by a point or more (eval prints both as AP50 and cocoAP50).")
HELP = "side-by-side AP / FPS / params / FLOPs of HOG+SVM and YOLO models on a dataset split"


def add_arguments(p) -> None:
    p.add_argument("--data", required=True, help="dataset YAML")
    p.add_argument("--split", default="val", help="split to evaluate")
    p.add_argument("--class", dest="class_name", help="class to score (default: the dataset's only class)")
    p.add_argument("--hog", nargs="*", default=[], metavar="[NAME=]MODEL.npz", help="HOG+SVM models")
    p.add_argument("--yolo", nargs="*", default=[], metavar="NAME=PATH[,WEIGHTS]", help="YOLO models")
    p.add_argument("--prior", action="store_true",
                   help="add a row for the median training box (4 numbers, sees no pixels): how much AP the "
                        "dataset's layout alone gives")
    p.add_argument("--imgsz", dest="sizes", nargs="+", type=int, default=[224, 320, 416],
                   help="input sizes: YOLO's square input, HOG's longer image side")
    p.add_argument("--table-imgsz", dest="table_size", type=int,
                   help="only this input size in the markdown table (default: all)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N images")
    p.add_argument("--threads", type=int, default=1,
                   help="torch and OpenCV threads for every model (default 1: on a shared machine, multi-threaded "
                        "timings swing 10x with other jobs' load; one thread is reproducible)")
    p.add_argument("--write", metavar="MD", help="update the 'compare' section of this markdown file")
    p.add_argument("--plot", metavar="PNG", help="speed-vs-accuracy plot across --imgsz")
    p.add_argument("--note", action="append", default=[],
                   help="a line for the written section (e.g. where a checkpoint came from); repeatable")


def _entries(args):
    from yolokit.errors import ConfigError
    from yolokit.apps.compare import Entry

    out = []
    for spec in args.hog:
        name, _, path = spec.rpartition("=")
        out.append(Entry(name or "HOG+SVM", "hog", path))
    for spec in args.yolo:
        name, sep, path = spec.partition("=")
        if not sep or not path:
            raise ConfigError(f"--yolo {spec!r}: expected NAME=PATH[,WEIGHTS]")
        path, _, weights = path.partition(",")
        out.append(Entry(name, "yolo", path, weights or None))
    if getattr(args, "prior", False):
        out.append(Entry("median training box (prior)", "prior", args.data))
    if not out:
        raise ConfigError("compare: give at least one --hog or --yolo model")
    return out


def run(args) -> int:
    from pathlib import Path

    from yolokit.data import load_dataset
    from yolokit.errors import ConfigError
    from yolokit.apps import compare

    from yolokit.settings import check_int

    for size in args.sizes:
        check_int("imgsz", size, 32)
    check_int("limit", args.limit, 0)
    check_int("threads", args.threads, 0)
    entries = _entries(args)
    if args.threads:
        import cv2
        import torch

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    data = load_dataset(args.data, split=args.split)
    names = list(data.class_names)
    if args.class_name is None and len(names) != 1:
        raise ConfigError(f"{args.data}: {len(names)} classes; name the one to score with --class")
    index = names.index(args.class_name) if args.class_name in names else 0
    if args.class_name is not None and args.class_name not in names:
        raise ConfigError(f"--class {args.class_name!r}: not a class of {args.data} ({', '.join(names)})")
    n = min(args.limit, len(data)) if args.limit else len(data)
    samples = [data[i] for i in range(n)]
    results = []
    for entry in entries:
        results += compare.evaluate(entry, samples, args.sizes, index, names[index])
    md = compare.table(results, args.table_size)
    print(md)
    print(AP_NOTE)
    if args.plot:
        title = f"{Path(args.data).stem} {args.split} ({n} images): AP50 vs FPS at input {args.sizes}"
        print(f"wrote {compare.plot(results, args.plot, title)}")
    if args.write:
        from yolokit.report import write_section

        sizes = args.table_size or ", ".join(map(str, args.sizes))
        body = (f"`{names[index]}` on {Path(args.data).name} split `{args.split}` ({n} images), input sizes "
                f"{sizes}. AP50/AP: COCO protocol (pycocotools) on detections at conf 0.001 after "
                "yolokit's NMS (IoU 0.45). FPS: `predict` per image (best of 3 passes over 8 images), batch 1, "
                f"{args.threads or 'default'} thread(s) of this CPU (YOLO "
                "after `optimize_for_inference`). FLOPs: "
                "YOLO = torch's counter for one forward (2 x MACs); HOG+SVM = 2 x windows x descriptor length "
                "(HOG extraction itself not counted). Input size: YOLO's square input; HOG's longer image side."
                f"\n\n{md}\n")
        if args.plot:
            body += f"\nSpeed vs accuracy across input sizes {args.sizes}: `{args.plot}`\n"
        if args.note:
            body += "\n" + "\n".join(f"- {line}" for line in args.note) + "\n"
        write_section(args.write, "compare", body)
    return 0
