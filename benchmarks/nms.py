"""Post-processor speed: ``yolokit.postprocess`` against a per-image loop of ``torchvision.ops.batched_nms``
(and ultralytics' ``non_max_suppression`` when that package is importable), on the same dense workload.

The workload imitates what a 640x640 dense detector emits (B=8, N=25200 = 3 x (80^2 + 40^2 + 20^2), C=80):
a few dozen objects per image, each surrounded by a cluster of jittered candidates with high objectness,
and a background of random boxes with low objectness and low class probabilities.
"""

from __future__ import annotations

import statistics

HELP = "post-processor speed vs the torchvision per-image loop (and ultralytics if installed)"


def add_arguments(parser):
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--boxes", type=int, default=25200)
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--conf", type=float, nargs="+", default=[0.25, 0.001])
    parser.add_argument("--iou", type=float, default=0.45)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the NMS kernel is single-threaded, and on a shared CPU "
                             "OpenMP spin-waits make 2-thread timings unstable)")


def dense_workload(batch=8, boxes=25200, classes=80, size=640, seed=0, device="cpu"):
    """Clustered, jittered candidates ``(batch, boxes, 5+classes)`` in the post-processor's layout."""
    import torch

    g = torch.Generator().manual_seed(seed)
    n_obj = 24
    obj_centre = torch.rand(batch, n_obj, 2, generator=g) * size
    obj_size = 16 + torch.rand(batch, n_obj, 2, generator=g) * (size / 3)
    obj_class = torch.randint(0, classes, (batch, n_obj), generator=g)

    owner = torch.randint(0, n_obj, (batch, boxes), generator=g)
    is_fg = torch.rand(batch, boxes, generator=g) < 0.15
    pick = owner.unsqueeze(-1).expand(-1, -1, 2)
    centre = torch.gather(obj_centre, 1, pick) + torch.randn(batch, boxes, 2, generator=g) * 0.1 * torch.gather(obj_size, 1, pick)
    wh = torch.gather(obj_size, 1, pick) * torch.exp(torch.randn(batch, boxes, 2, generator=g) * 0.15)
    bg_centre = torch.rand(batch, boxes, 2, generator=g) * size
    bg_wh = 8 + torch.rand(batch, boxes, 2, generator=g) * size / 4
    fg = is_fg.unsqueeze(-1)
    xywh = torch.cat((torch.where(fg, centre, bg_centre), torch.where(fg, wh, bg_wh)), dim=-1)

    objectness = torch.where(is_fg, 0.2 + 0.8 * torch.rand(batch, boxes, generator=g),
                             0.3 * torch.rand(batch, boxes, generator=g) ** 6)
    cls = torch.sigmoid(torch.randn(batch, boxes, classes, generator=g) - 4.5)
    true_cls = torch.gather(obj_class, 1, owner)
    fg_prob = 0.5 + 0.5 * torch.rand(batch, boxes, generator=g)
    cls.scatter_(2, true_cls.unsqueeze(-1), torch.where(is_fg, fg_prob, cls.gather(2, true_cls.unsqueeze(-1)).squeeze(-1)).unsqueeze(-1))
    return torch.cat((xywh, objectness.unsqueeze(-1), cls), dim=-1).to(device)


def real_workload(batch=8, size=640, device="cpu", shared=None):
    """Decoded outputs ``(batch, N, 85)`` of pretrained yolov3-tiny (``shared``, default ``../shared/data``) on
    the first ``batch`` coco128 val2017 images, letterboxed to ``size`` by the one Predictor: what a user's
    detector hands the NMS. ``None`` when that data is not there."""
    import torch

    from benchmarks.common import SHARED_DATA
    from yolokit.data.images import read_image
    from yolokit.models import load
    from yolokit.models.predict import Predictor

    shared = SHARED_DATA if shared is None else shared
    tiny, images = shared / "yolov3_tiny_darknet", shared / "coco128_yolo" / "images" / "val2017"
    if not (tiny / "yolov3-tiny.weights").is_file() or not images.is_dir():
        return None
    model = load(tiny / "yolov3-tiny.cfg", tiny / "yolov3-tiny.weights")
    photos = [read_image(p) for p in sorted(images.glob("*.jpg"))[:batch]]
    with torch.no_grad():
        return model(Predictor(model, size).preprocess(photos).x).to(device)


def torchvision_loop(pred, conf_thres=0.25, iou_thres=0.45, max_det=300):
    """The peer: per image, best class, confidence filter, ``torchvision.ops.batched_nms``."""
    import torch
    import torchvision

    from yolokit.ops.boxes import cxcywh_to_xyxy

    out = []
    for x in pred:
        scores, cls = (x[:, 5:] * x[:, 4:5]).max(1)
        m = scores > conf_thres
        boxes, scores, cls = cxcywh_to_xyxy(x[m, :4]), scores[m], cls[m]
        keep = torchvision.ops.batched_nms(boxes, scores, cls, iou_thres)[:max_det]
        out.append(torch.cat((boxes[keep], scores[keep, None], cls[keep, None].float()), 1))
    return out


def _ultralytics_version():
    import ultralytics

    return ultralytics.__version__


def _ultralytics_nms():
    try:
        from ultralytics.utils.nms import non_max_suppression
    except ImportError:
        try:
            from ultralytics.utils.ops import non_max_suppression
        except ImportError:
            return None
    return non_max_suppression


def _compare(pred, conf, args, ultra, sync):
    """One table row (after the workload name): yolokit vs the torchvision loop (vs ultralytics) at ``conf``."""
    import torch

    from benchmarks.common import interleaved, paired_ratio
    from yolokit.models.postprocess import postprocess

    fns = {"ours": lambda: postprocess(pred, conf, args.iou),
           "peer": lambda: torchvision_loop(pred, conf, args.iou)}
    if ultra is not None:
        # ultralytics expects (B, 4+C, N) with class scores already including objectness.
        u_in = torch.cat((pred[..., :4], pred[..., 5:] * pred[..., 4:5]), -1).transpose(1, 2).contiguous()
        fns["ultra"] = lambda: ultra(u_in, conf, args.iou, max_det=300)
    times = interleaved(fns, args.repeat, sync=sync)
    kept = sum(len(d) for d in postprocess(pred, conf, args.iou))
    cands = int(((pred[..., 5:] * pred[..., 4:5]).amax(-1) > conf).sum())
    row = [conf, cands, kept, f"{statistics.median(times['ours']):.1f}", f"{statistics.median(times['peer']):.1f}",
           f"{paired_ratio(times, 'ours', 'peer'):.2f}x"]
    if ultra is None:
        return row + ["n/a", "n/a"]
    return row + [f"{statistics.median(times['ultra']):.1f}", f"{paired_ratio(times, 'ultra', 'ours'):.1f}x"]


def run(args):
    import torch

    from yolokit.report import markdown_table, write_section

    torch.set_num_threads(args.threads)
    workloads = {f"synthetic B={args.batch} N={args.boxes}": dense_workload(
        args.batch, args.boxes, args.classes, seed=args.seed, device=args.device)}
    real = real_workload(args.batch, 640, args.device)
    if real is not None:
        workloads[f"yolov3-tiny coco128 B={args.batch} N={real.shape[1]}"] = real
    else:
        print("no yolov3-tiny workload: ../shared/data (yolov3_tiny_darknet, coco128_yolo) not found")
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    ultra = _ultralytics_nms()
    rows = []
    for name, pred in workloads.items():
        for conf in args.conf:
            rows.append([name] + _compare(pred, conf, args, ultra, sync))
    header = ["workload", "conf", "candidates", "kept", "yolokit ms", "torchvision loop ms", "yolokit / loop",
              "ultralytics ms", "ultralytics / yolokit"]
    table = markdown_table(header, rows)
    print(table)
    if args.write:
        body = (f"## Post-processor (`yolokit bench nms`, device {args.device})\n\n"
                f"Workloads: synthetic = B={args.batch}, N={args.boxes}, C={args.classes}, clustered jittered "
                f"candidates like a 3-scale 640 px model's (`benchmarks.nms.dense_workload`, seed {args.seed}); "
                + (f"yolov3-tiny = its decoded outputs on the first {args.batch} coco128 val2017 images "
                   "letterboxed to 640 (`real_workload`); " if real is not None else "")
                + f"IoU {args.iou}, max_det 300; "
                f"median of {args.repeat} interleaved rounds (ratios: median of per-round ratios). "
                f"yolokit / loop below 1 means yolokit is faster."
                + (f" ultralytics {_ultralytics_version()} `non_max_suppression` gets the same boxes as "
                   "(B, 4+C, N) with objectness folded into the class scores; its own time limit may drop "
                   "images at low thresholds, yolokit's never does." if ultra else
                   " ultralytics is not installed in this environment, so its columns are n/a.")
                + "\n\n" + table)
        write_section(args.write, f"nms-{args.device.split(':')[0]}", body)
    return 0
