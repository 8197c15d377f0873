"""Anchors for a dataset: k-means on box shapes with the YOLOv2 1 - IoU distance.

  yolokit anchors --data configs/data/raccoon.yaml --n 6 --imgsz 416
  yolokit anchors --data configs/data/coco128.yaml --n 9 --imgsz 416 --split train

Prints the anchors as a Darknet cfg line, and the mean best IoU and best possible recall (best anchor
IoU >= 0.5) of these anchors next to Darknet's defaults for the same count (yolov3-tiny for 6, yolov3
for 9, yolov2-voc for 5).
"""

from __future__ import annotations

HELP = "k-means anchors (1 - IoU distance) with mean best IoU and best possible recall vs the defaults"


def add_arguments(parser):
    from yolokit.cli import add_data_argument

    add_data_argument(parser)
    parser.add_argument("--n", type=int, default=9, help="number of anchors (6 for tiny models, 9 for yolov3)")
    parser.add_argument("--imgsz", type=int, default=416, help="network input size the anchors are for")
    parser.add_argument("--split", default=None, help="split to use (default: train, else the first)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the k-means initialisation")
    parser.add_argument("--bpr-iou", type=float, default=0.5, help="IoU a box's best anchor must reach to count as recallable")


def run(args) -> int:
    from yolokit.data import load_dataset
    from yolokit.data.anchors import DEFAULT_ANCHORS, anchor_fitness, box_sizes, darknet_line, kmeans_anchors
    from yolokit.data.config import split_names
    from yolokit.settings import check_fraction, check_imgsz, check_int

    check_int("n", args.n, 1)
    check_imgsz("imgsz", args.imgsz)
    check_fraction("bpr_iou", args.bpr_iou)
    splits = split_names(args.data)
    split = args.split or ("train" if "train" in splits else splits[0])
    ds = load_dataset(args.data, split)
    wh = box_sizes(ds, args.imgsz)
    anchors = kmeans_anchors(wh, args.n, seed=args.seed)
    print(f"{len(wh)} boxes from {len(ds)} images ({ds.source}, split '{split}'), letterboxed to {args.imgsz}")
    print(darknet_line(anchors))
    rows = [("k-means", anchors)]
    if args.n in DEFAULT_ANCHORS:
        rows.append(({5: "yolov2-voc", 6: "yolov3-tiny", 9: "yolov3"}[args.n] + " default", DEFAULT_ANCHORS[args.n]))
    print(f"{'anchors':<22}{'mean best IoU':>14}{'BPR@' + format(args.bpr_iou, 'g'):>10}")
    for name, a in rows:
        miou, bpr = anchor_fitness(wh, a, args.bpr_iou)
        print(f"{name:<22}{miou:>14.4f}{bpr:>10.4f}")
    return 0
