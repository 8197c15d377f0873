"""Test-time augmentation: AP50 gained against inference time paid, on one dataset split.

Each row runs :class:`yolokit.models.predict.Predictor` over the split with one TTA setting (the flip is
averaged row by row with the plain prediction; other scales join before the NMS; one forward pass per
size and per flip) and evaluates with :func:`yolokit.eval.evaluate` (VOC all-point AP at IoU 0.5, and
pycocotools' AP50 / AP).
"""

from __future__ import annotations

import time

HELP = "TTA: AP50 effect and cost (time per image) of flips + scales merged before NMS"

#: name -> (tta, scales, flip)
CONFIGS = {
    "none": (False, (1.0,), False),
    "flip, averaged (--tta)": (True, (1.0,), True),
    "scales 1, 0.83, 0.67, union": (True, (1.0, 0.83, 0.67), False),
    "flip + scales 1, 0.83, 0.67": (True, (1.0, 0.83, 0.67), True),
}


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="cfg or checkpoint (e.g. a raccoon fine-tune)")
    parser.add_argument("--weights", help="Darknet .weights for a .cfg model")
    parser.add_argument("--data", default="configs/data/raccoon.yaml", help="dataset YAML")
    parser.add_argument("--split", default="val")
    parser.add_argument("--imgsz", type=int, default=416)
    parser.add_argument("--conf", type=float, default=0.001, help="detector threshold for mAP (low)")
    parser.add_argument("--iou", type=float, default=0.6, help="NMS IoU")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")


def run(args) -> int:
    import yolokit
    from yolokit.models.predict import Predictor
    from benchmarks.common import publish
    from yolokit.report import markdown_table
    from yolokit.data import load_dataset
    from yolokit.eval import evaluate

    ds = load_dataset(args.data, args.split)
    base = yolokit.load(args.model, weights=args.weights, device=args.device)
    try:
        model = base.optimize_for_inference()
    except RuntimeError as exc:
        print(f"optimize_for_inference failed ({exc}); measuring the plain model")
        model = base
    configs = []
    for name, (tta, scales, flip) in CONFIGS.items():
        configs.append((name, len(scales) * (2 if flip else 1),
                        Predictor(model, args.imgsz, args.conf, args.iou, device=args.device, bgr=False,
                                  tta=tta, tta_scales=scales, tta_flip=flip)))
    # Interleaved per batch, so that load from other processes hits every configuration alike.
    dets = {name: [] for name, _, _ in configs}
    seconds = dict.fromkeys(dets, 0.0)
    for _, _, pred in configs:
        pred([ds[0].image])  # warm-up
    for start in range(0, len(ds), args.batch):
        images = [ds[i].image for i in range(start, min(start + args.batch, len(ds)))]
        for name, _, pred in configs:
            t0 = time.perf_counter()
            out = pred(images)
            seconds[name] += time.perf_counter() - t0
            dets[name].extend(d.cpu().numpy() for d in out)
    rows = []
    base_ms = 1000 * seconds["none"] / len(ds)
    for name, passes, pred in configs:
        ms = 1000 * seconds[name] / len(ds)
        m = evaluate(ds, dets[name], metrics=("voc", "coco"))
        coco = m.get("coco") or {}
        rows.append([name, f"{passes} ({', '.join(map(str, pred.sizes))})",
                     f"{ms:.0f}", f"{ms / base_ms:.2f}x", f"{100 * m['voc']:.1f}",
                     f"{100 * coco.get('AP50', float('nan')):.1f}", f"{100 * coco.get('AP', float('nan')):.1f}"])
        print(" | ".join(rows[-1]))
    header = ["TTA", "forward passes (sizes)", "ms/image", "cost", "VOC AP50", "COCO AP50", "COCO AP"]
    body = (f"{_describe(args.model)} on `{args.data}` split `{args.split}` ({len(ds)} images), {args.imgsz}x{args.imgsz}, "
            f"conf {args.conf}, NMS IoU {args.iou}; everything merged before one NMS. Time per image includes "
            f"letterbox, forward passes and NMS (batch {args.batch}, {args.device}); the configurations "
            f"run alternately batch by batch, so machine load affects them alike.\n\n"
            + markdown_table(header, rows))
    publish(args, "tta", body)
    return 0


def _describe(path: str) -> str:
    """The model file, with its md5 prefix and, for a yolokit checkpoint, how it was trained."""
    from pathlib import Path

    from yolokit.apps.assets import md5sum

    text = f"`{path}` (md5 {md5sum(path)[:8]}"
    if Path(path).suffix in (".pt", ".pth"):
        import torch

        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        targs = ckpt.get("train_args") or {}
        if "epoch" in ckpt:
            text += f", epoch {ckpt['epoch']}"
        if targs:
            text += f" of `yolokit train --data {targs.get('data')} --epochs {targs.get('epochs')} " \
                    f"--imgsz {targs.get('imgsz')}` from `{Path(str(targs.get('weights'))).name}`"
    return text + ")"
