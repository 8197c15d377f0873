"""Forward latency of a Darknet model (default yolov3-tiny, bs1, 416x416) in yolokit's execution modes,
against OpenCV 4.x's DNN module running the SAME cfg/weights in the same process, rounds interleaved.

Contenders (CPU): plain eager torch (``no_grad``); batch-norm folded + channels-last; ``optimize_for_inference``
(folded BN, conv+activation fused into one oneDNN primitive with pre-packed weights, channels-last);
optionally ``torch.compile`` (``--compile``; its warm-up is timed) and the bf16 fused model (``--bf16``; its
accuracy is reported); OpenCV ``cv2.dnn.readNetFromDarknet`` when importable (OpenCV < 5). On a GPU (when present) eager
fp32 and fp16 are timed too.

Every contender's output is turned into detections (conf 0.25, NMS 0.45, yolokit.postprocess) on the three
Darknet sample images and compared with eager torch's: "agree" means same count, same classes, IoU >= 0.99 and
scores within 0.01.
"""

from __future__ import annotations

import argparse
import statistics
import time

HELP = "model forward latency: eager / optimized torch vs OpenCV DNN on the same Darknet files"


def add_arguments(parser):
    parser.add_argument("--cfg", default=None, help="Darknet cfg (default: shared yolov3-tiny)")
    parser.add_argument("--weights", default=None, help="Darknet weights (default: shared yolov3-tiny)")
    parser.add_argument("--imgsz", type=int, default=416)
    parser.add_argument("--repeat", type=int, default=30, help="timed rounds (each runs every contender once)")
    parser.add_argument("--threads", default=None,
                        help="comma-separated thread counts to time, e.g. 1,2 (torch and OpenCV alike; "
                             "default: torch's current count)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (inductor)")
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast of the optimized model")
    parser.add_argument("--shared", default=None, help="path to shared/data (default: ../shared/data)")
    parser.add_argument("--omp-passive", action="store_true",
                        help="also time every contender in a child process with OMP_WAIT_POLICY=PASSIVE (OpenMP "
                             "threads sleep instead of spinning; matters on a busy, shared CPU)")
    parser.add_argument("--rows-json", default=None, help=argparse.SUPPRESS)  # used by --omp-passive's child


def _passive_rows(args) -> list:
    """Re-run this benchmark in a child process with OMP_WAIT_POLICY=PASSIVE (libgomp reads it only when it is
    loaded, so it cannot be changed in this process) and return its table rows."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rows.json")
        cmd = [sys.executable, "-m", "yolokit", "bench", "infer", "--imgsz", str(args.imgsz),
               "--repeat", str(args.repeat), "--rows-json", out]
        for flag in ("cfg", "weights", "threads", "shared"):
            if getattr(args, flag):
                cmd += [f"--{flag}", str(getattr(args, flag))]
        cmd += ["--bf16"] if args.bf16 else []
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
                       stdout=subprocess.DEVNULL)
        with open(out) as f:
            return json.load(f)


def _shared(arg):
    from pathlib import Path

    if arg:
        return Path(arg)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _images(shared):
    import cv2

    from yolokit.errors import DataError

    out = []
    for name in ("dog.jpg", "person.jpg", "horses.jpg"):
        path = shared / "yolo_fastest_darknet" / "data" / name
        img = cv2.imread(str(path))
        if img is None:
            raise DataError(f"{path}: cannot read the sample image")
        out.append(img[:, :, ::-1].copy())
    return out


def _blob(rgb, size):
    import cv2
    import torch

    resized = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(resized).permute(2, 0, 1)[None].float().div(255.0).contiguous()


def _opencv_net(cfg, weights):
    try:
        import cv2
    except ImportError:
        return None, "cv2 not importable"
    if not hasattr(cv2.dnn, "readNetFromDarknet"):
        return None, f"OpenCV {cv2.__version__} has no Darknet importer (removed in 5.x)"
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    return net, f"OpenCV {cv2.__version__}"


def _opencv_forward(net, model, x):
    """OpenCV's rows -> yolokit's decoded layout (pixels, class probabilities without objectness).

    Row order differs (OpenCV: cell then anchor); it does not matter after NMS.
    """
    import numpy as np
    import torch

    net.setInput(x.numpy())
    outs = net.forward(net.getUnconnectedOutLayersNames())
    rows = torch.from_numpy(np.concatenate(outs, 0))
    h, w = x.shape[2:]
    rows[:, [0, 2]] *= w
    rows[:, [1, 3]] *= h
    # OpenCV multiplies class probabilities by objectness (and zeroes products < 0.2, below conf 0.25 anyway).
    rows[:, 5:] /= rows[:, 4:5].clamp_min(1e-12)
    return rows[None]


def _compare(ref, dets) -> tuple[bool, float, float]:
    """``(agree, min IoU, max score difference)`` of ``dets`` against ``ref`` over all images.

    Agree = same count and classes, IoU >= 0.99, scores within 0.01."""
    from yolokit.ops.boxes import box_iou

    agree, min_iou, max_diff = True, 1.0, 0.0
    for a, b in zip(ref, dets):
        if a.shape[0] != b.shape[0]:
            return False, 0.0, float("inf")
        if not a.shape[0]:
            continue
        iou = box_iou(a[:, :4], b[:, :4])
        best, j = iou.max(1)
        agree &= bool((a[:, 5] == b[j, 5]).all())
        min_iou = min(min_iou, best.min().item())
        max_diff = max(max_diff, (a[:, 4] - b[j, 4]).abs().max().item())
    return agree and min_iou >= 0.99 and max_diff <= 0.01, min_iou, max_diff


def _interleaved(fns, repeat):
    times = {name: [] for name in fns}
    for round_ in range(repeat + 2):  # two warm-up rounds
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if round_ >= 2:
                times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def run(args):
    import torch

    from yolokit.bench.common import markdown_table, write_section
    from yolokit.models import load
    from yolokit.models.inference import optimize
    from yolokit.postprocess import postprocess

    shared = _shared(args.shared)
    cfg = args.cfg or shared / "yolov3_tiny_darknet" / "yolov3-tiny.cfg"
    weights = args.weights or shared / "yolov3_tiny_darknet" / "yolov3-tiny.weights"
    thread_counts = [int(t) for t in str(args.threads).split(",")] if args.threads else [torch.get_num_threads()]
    size = args.imgsz
    model = load(cfg, weights)
    images = [_blob(img, size) for img in _images(shared)]
    x = torch.rand(1, 3, size, size)

    def eager(inp):
        with torch.no_grad():
            return model(inp)

    folded = optimize(model, fuse=False)
    fused = model.optimize_for_inference()
    contenders = {"torch eager (no_grad)": eager, "BN folded + channels_last": folded,
                  "optimize_for_inference (fused oneDNN)": fused}
    notes = []
    if args.bf16:
        contenders["optimize_for_inference(dtype=bfloat16)"] = model.optimize_for_inference(dtype=torch.bfloat16)
    if args.compile:
        # freezing: weights become constants, so inductor folds them and pre-packs them for oneDNN.
        compiled = torch.compile(optimize(model, fuse=False).model, options={"freezing": True})

        def comp(inp):
            with torch.inference_mode():
                return compiled(inp.contiguous(memory_format=torch.channels_last))
        t0 = time.perf_counter()
        comp(x)
        notes.append(f"torch.compile (inductor, freezing) warm-up: {time.perf_counter() - t0:.1f} s")
        contenders["torch.compile (inductor, freezing)"] = comp
    net, cv_note = _opencv_net(cfg, weights)
    if net is not None:
        contenders[f"{cv_note} DNN"] = lambda inp: _opencv_forward(net, model, inp)
        peer = f"{cv_note} DNN"
    else:
        peer = None
        notes.append(f"no OpenCV peer: {cv_note}")

    # Detections on the real sample images, each contender against eager torch.
    ref = [postprocess(eager(im).float(), 0.25, 0.45)[0] for im in images]
    agree = {name: _compare(ref, [postprocess(fn(im).float(), 0.25, 0.45)[0] for im in images])
             for name, fn in contenders.items()}
    import os

    load_before = os.getloadavg()[0]
    rows = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        if net is not None:
            import cv2

            cv2.setNumThreads(threads)
        times = _interleaved({name: (lambda fn=fn: fn(x)) for name, fn in contenders.items()}, args.repeat)
        for name in contenders:
            ratio = statistics.median([a / b for a, b in zip(times[name], times[peer])]) if peer else "-"
            ok, min_iou, max_diff = agree[name]
            rows.append([threads, name, statistics.median(times[name]), min(times[name]), ratio,
                         "yes" if ok else "NO", f"{min_iou:.4f}", f"{max_diff:.4f}"])
    if torch.cuda.is_available() and not args.rows_json:
        gpu = model.to("cuda")
        xg = x.cuda()

        def cuda_fn(half):
            def f():
                with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=half):
                    gpu(xg)
                torch.cuda.synchronize()
            return f
        gt = _interleaved({"cuda eager fp32": cuda_fn(False), "cuda autocast fp16": cuda_fn(True)}, args.repeat)
        for name, v in gt.items():
            rows.append(["-", f"{name} ({torch.cuda.get_device_name(0)})", statistics.median(v), min(v), "-", "-",
                         "-", "-"])
        model.to("cpu")
    if args.rows_json:
        import json

        with open(args.rows_json, "w") as f:
            json.dump(rows, f)
        return 0
    policy = os.environ.get("OMP_WAIT_POLICY", "default")
    rows = [[f"{r[0]} ({policy})", *r[1:]] for r in rows]
    if args.omp_passive:
        rows += [[f"{r[0]} (PASSIVE)", *r[1:]] for r in _passive_rows(args)]
    header = ["threads (OMP_WAIT_POLICY)", "contender", "median ms", "min ms", f"x {peer or 'peer'} (per-round median)",
              "detections agree", "min IoU", "max score diff"]
    table = markdown_table(header, rows)
    flops = model.flops() * (size / model.input_size[0]) * (size / model.input_size[1])
    body = (f"Model `{cfg}` at {size}x{size}, batch 1, {args.repeat} interleaved rounds per thread count; "
            f"{flops / 1e9:.2f} BFLOPs (Darknet convention).\n\n{table}\n\n"
            "Detections: conf 0.25, NMS 0.45 on dog/person/horses.jpg, compared with eager torch (same count and "
            "classes, IoU >= 0.99, scores within 0.01). " + " ".join(notes)
            + f"\n\nMachine load (1-min load average) {load_before:.1f} before timing, {os.getloadavg()[0]:.1f} after. "
            "On a busy, shared CPU torch's OpenMP threads spin-wait at every barrier while their partner is "
            "descheduled, so multi-threaded torch rows suffer far more than OpenCV's own thread pool; "
            "OMP_WAIT_POLICY=PASSIVE (rows marked PASSIVE: a child process, same contenders) or 1 thread removes "
            "that effect (spinning exists to cut wake-up latency on an idle machine; that case could not be measured "
            "here).")
    print(body)
    if args.write:
        write_section(args.write, "infer", body)
    return 0
