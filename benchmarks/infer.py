"""CPU inference paths of one Darknet model (default yolov3-tiny) over input sizes, contenders interleaved.

Contenders at every size (``--sizes``, default 224 320 416 512 608; batch ``--batch``):

* ``eager``: the model under ``no_grad``;
* ``fast path``: ``model.optimize_for_inference()``, what ``yolokit detect`` runs: ONNX Runtime on the model's
  own graph (exported in memory per input shape) when onnxruntime is installed, else the fused torch module;
* ``fused torch module``: ``optimize_for_inference(backend="torch")`` (BN folded, conv+activation fused in oneDNN,
  weights packed per input shape, channels-last), shown when the fast path is ONNX Runtime;
* ``ORT fp32``: yolokit's ONNX export at that size in ONNX Runtime (``yolokit.load("x.onnx")``);
* ``OpenVINO fp32``: that export compiled by OpenVINO's CPU plugin, when openvino is installed;
* ``ORT int8``: that export quantized (:func:`yolokit.apps.export.quantize_int8`, calibrated on
  ``--calib-images`` coco128 train images) at the ``--int8-sizes``;
* ``OpenCV DNN``: ``cv2.dnn.readNetFromDarknet`` on the same cfg/weights (OpenCV 4.x);
* optional: ``--bf16`` (fast path in bfloat16), ``--compile`` (torch.compile, inductor; its warm-up is timed).

``--model NAME ...`` runs the sweep for each named model in turn (one table, a model column, the ratio column
against OpenCV DNN): ``yolov3-tiny`` with its shipped weights, any other name a cfg of ``shared/darknet_cfgs``
(e.g. ``yolov4-tiny``, ``yolov7-tiny``) with random weights (:func:`yolokit.models.zoo.random_model`, seed 0)
written to a temporary ``.weights`` file that both yolokit and OpenCV read. Random weights leave every score near
0.3, so detections are ties cut by the 300-box cap: for those models the agreement column gives the raw output's
max abs difference against eager instead (same row layout; OpenCV's raw parity is ``tests/models/test_zoo.py``).

Each timed round runs every contender once on the same input (so a busy machine slows all alike); the ratio
column is the per-round median of ``contender / ORT fp32``. Agreement: fp32 contenders against eager torch on
dog/person/horses.jpg (same count and classes, IoU >= 0.99, scores within 0.01); int8 and bf16 by AP50 (all-point,
IoU 0.5, conf 0.001, NMS 0.6) on coco128 val2017 against ORT fp32 at the same size (``--ap-images``).

``--defaults`` instead measures the OpenMP wait policy the CLI should use: default (spin), PASSIVE, 1 thread,
each in a child process (libgomp reads ``OMP_WAIT_POLICY`` once, when torch loads it), idle and with
``--load-procs`` busy background processes, timing detect's per-frame work (the one Predictor: letterbox +
forward + NMS) for the fast path and ORT fp32, against OpenCV DNN (blob + forward + the same NMS).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import ROOT, SHARED_DATA

HELP = "inference paths over input sizes: eager / fast path / ONNX Runtime fp32+int8 / OpenCV DNN (--defaults: OMP)"

SIZES = (224, 320, 416, 512, 608)


def add_arguments(parser):
    parser.add_argument("--cfg", default=None, help="Darknet cfg (default: shared yolov3-tiny)")
    parser.add_argument("--weights", default=None, help="Darknet weights (default: shared yolov3-tiny)")
    parser.add_argument("--model", nargs="+", default=None, metavar="NAME",
                        help="models to sweep in turn: yolov3-tiny (shipped weights) or a cfg name of "
                             "shared/darknet_cfgs (random weights), e.g. yolov3-tiny yolov4-tiny yolov7-tiny; "
                             "ratios against OpenCV DNN (instead of --cfg/--weights)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="input sizes (multiples of 32)")
    parser.add_argument("--batch", type=int, default=1, help="images per forward pass")
    parser.add_argument("--repeat", type=int, default=10, help="timed rounds per size (each runs every contender)")
    parser.add_argument("--threads", type=int, default=None, help="torch/ORT/OpenCV threads (default: torch's)")
    parser.add_argument("--int8-sizes", type=int, nargs="*", default=[416],
                        help="sizes with an int8 contender (each is calibrated; default: 416)")
    parser.add_argument("--calib-images", type=int, default=32, help="coco128 train images for int8 calibration")
    parser.add_argument("--ap-images", type=int, default=128,
                        help="coco128 val2017 images for the int8/bf16 AP50 check (0: skip)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime contenders")
    parser.add_argument("--bf16", action="store_true", help="also time the bf16 fast path")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow warm-up)")
    parser.add_argument("--shared", default=None, help="path to shared/data (default: ../shared/data)")
    parser.add_argument("--defaults", action="store_true",
                        help="measure OMP_WAIT_POLICY default / PASSIVE / 1 thread, idle and under load, for detect")
    parser.add_argument("--load-procs", type=int, default=2, help="busy background processes for --defaults")
    parser.add_argument("--section", default=None,
                        help="BENCHMARKS.md section to write (default: infer, or infer-defaults with --defaults)")
    parser.add_argument("--rows-json", default=None, help=argparse.SUPPRESS)  # --defaults' child output


def _shared(arg):
    return Path(arg) if arg else SHARED_DATA


def _images(shared):
    from yolokit.data.images import read_image

    return [read_image(shared / "yolo_fastest_darknet" / "data" / n) for n in ("dog.jpg", "person.jpg", "horses.jpg")]


def _opencv_net(cfg, weights, threads):
    try:
        import cv2
    except ImportError:
        return None, "cv2 not importable"
    if not hasattr(cv2.dnn, "readNetFromDarknet"):
        return None, f"OpenCV {cv2.__version__} has no Darknet importer (removed in 5.x)"
    cv2.setNumThreads(threads)
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    return net, f"OpenCV {cv2.__version__} DNN"


def _openvino(onnx_path, threads):
    """OpenVINO's CPU plugin compiling yolokit's fp32 ONNX export (``None`` when openvino is not installed):
    a contender only; yolokit has no OpenVINO path because it measured equal to ONNX Runtime within noise here."""
    try:
        import openvino as ov
    except ImportError:
        return None
    import torch

    # f32 hint: on CPUs with AVX-512 BF16 the plugin otherwise runs bfloat16 (scores moved by up to 0.03 here)
    compiled = ov.Core().compile_model(str(onnx_path), "CPU", {"INFERENCE_NUM_THREADS": int(threads),
                                                               "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()

    def forward(x):
        return torch.from_numpy(request.infer({0: x.numpy()})[compiled.output(0)].copy())
    forward.name = f"OpenVINO {ov.__version__.split('-')[0]} fp32"
    return forward


def _opencv_forward(net, x):
    """OpenCV's rows -> yolokit's decoded layout (pixels, class probabilities without objectness).
    Row order differs (OpenCV: cell then anchor); it does not matter after NMS."""
    import numpy as np
    import torch

    net.setInput(x.numpy())
    b, h, w = x.shape[0], x.shape[2], x.shape[3]
    outs = net.forward(net.getUnconnectedOutLayersNames())  # (rows, 5+C) each; (B, rows, 5+C) when B > 1
    rows = torch.from_numpy(np.concatenate([o.reshape(b, -1, o.shape[-1]) for o in outs], 1))
    rows[..., [0, 2]] *= w
    rows[..., [1, 3]] *= h
    # OpenCV multiplies class probabilities by objectness (and zeroes products < 0.2, below conf 0.25 anyway).
    rows[..., 5:] /= rows[..., 4:5].clamp_min(1e-12)
    return rows


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
        best, j = box_iou(a[:, :4], b[:, :4]).max(1)
        agree &= bool((a[:, 5] == b[j, 5]).all())
        min_iou = min(min_iou, best.min().item())
        max_diff = max(max_diff, (a[:, 4] - b[j, 4]).abs().max().item())
    return agree and min_iou >= 0.99 and max_diff <= 0.01, min_iou, max_diff


def _ratio(times, name, peer):
    from benchmarks.common import paired_ratio

    return paired_ratio(times, name, peer) if peer in times else "-"


def run(args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.defaults or args.rows_json:
        return _defaults(args)
    return _sweep(args)


# ---------------------------------------------------------------------------------------------- sweep

def _sweep(args):
    import tempfile

    from benchmarks.common import interleaved

    load_before = os.getloadavg()
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for model, cfg, weights, random in _models(args, Path(tmp)):
            s = _setup(args, cfg, weights)
            s.random = random
            notes.append(f"{model}: {s.model.flops() / 1e9:.2f} BFLOPs at {s.model.input_size[0]}, "
                         f"{'random' if random else 'shipped'} weights.")
            for size in args.sizes:
                contenders, accuracy = _contenders(s, args, size, Path(tmp))
                agree = _agreement(s, args, size, contenders, accuracy)
                x = s.predictor(size).preprocess(s.photos[:1] * args.batch).x
                times = interleaved({name: (lambda fn=fn: fn(x)) for name, fn in contenders.items()}, args.repeat,
                                    warmup=2)
                peer = s.cv_name if args.model and s.net is not None else s.peer
                rows += [[model] + r if args.model else r
                         for r in _rows(size, contenders, times, agree, accuracy, peer)]
                print(f"{model} size {size}: done", flush=True)
            notes += [n for n in s.notes if n not in notes]
    if args.model:
        s.notes = notes
    _report(s, args, rows, load_before)
    return 0


def _models(args, tmp: Path) -> list[tuple[str, Path, Path, bool]]:
    """``(name, cfg, weights, random weights?)`` of each model to sweep: ``--model`` names, else ``--cfg``."""
    shared = _shared(args.shared)
    tiny = shared / "yolov3_tiny_darknet" / "yolov3-tiny"
    if not args.model:
        cfg = Path(args.cfg or f"{tiny}.cfg")
        return [(cfg.stem, cfg, Path(args.weights or f"{tiny}.weights"), False)]
    from yolokit.models.cfg import read_cfg
    from yolokit.models.weights import save_weights
    from yolokit.models.zoo import random_model

    out = []
    for name in args.model:
        if name == "yolov3-tiny":
            out.append((name, Path(f"{tiny}.cfg"), Path(f"{tiny}.weights"), False))
            continue
        cfg = shared / "darknet_cfgs" / f"{name}.cfg"
        if not cfg.is_file():
            raise SystemExit(f"--model {name}: no {cfg}")
        weights = tmp / f"{name}-random.weights"  # never kept: the temporary folder goes with the run
        save_weights(random_model(read_cfg(cfg)[0], str(cfg)), weights)
        out.append((name, cfg, weights, True))
    return out


@dataclass
class _Setup:
    """What every size of the sweep shares: the model and its fixed contenders, photos, data, notes."""

    cfg: Path
    model: object
    fast: object
    fused: object
    photos: list
    net: object
    cv_name: str
    ort: bool
    threads: int
    notes: list = field(default_factory=list)
    calib: object = None
    val: object = None
    bf16: object = None
    compiled: object = None
    random: bool = False

    @property
    def peer(self) -> str:
        return "ONNX Runtime fp32" if self.ort else "eager"

    def predictor(self, size: int):
        from yolokit.models.predict import Predictor

        return Predictor(self.model, size)


def _setup(args, cfg: Path, weights: Path) -> _Setup:
    import torch

    from yolokit.models import load

    shared = _shared(args.shared)
    threads = torch.get_num_threads()
    model = load(cfg, weights)
    fast = model.optimize_for_inference(backend="torch" if args.no_onnx else "auto")
    fused = None if args.no_onnx or not hasattr(fast, "session") else model.optimize_for_inference(backend="torch")
    net, cv_name = _opencv_net(cfg, weights, threads)
    s = _Setup(cfg, model, fast, fused, _images(shared), net, cv_name, not args.no_onnx, threads,
               [] if net is not None else [f"no OpenCV contender: {cv_name}."])
    if s.ort:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            s.ort = False
            s.notes.append("no ONNX Runtime contenders: onnxruntime not installed.")
    if s.ort and args.int8_sizes or args.bf16:
        from yolokit.data import load_dataset

        coco = ROOT / "configs" / "data" / "coco128_yolo.yaml"
        s.calib, s.val = load_dataset(coco, "train"), load_dataset(coco, "val")
    s.bf16 = model.optimize_for_inference(dtype=torch.bfloat16) if args.bf16 else None
    if args.compile:
        from yolokit.models.fastpath import optimize

        s.compiled = torch.compile(optimize(model, fuse=False).model, options={"freezing": True})
    return s


def _contenders(s: _Setup, args, size: int, tmp: Path) -> tuple[dict, dict]:
    """``(name -> forward, name -> None for those checked by AP50 rather than box agreement)`` at ``size``."""
    contenders = {"eager": lambda x: _no_grad(s.model, x), "fast path (optimize_for_inference)": s.fast}
    if s.fused is not None:
        contenders["fused torch module (backend='torch')"] = s.fused
    accuracy = {}
    if s.ort:
        _onnx_contenders(s, args, size, tmp, contenders, accuracy)
    if s.bf16 is not None:
        contenders["fast path bf16"] = s.bf16
        accuracy["fast path bf16"] = None
    if s.compiled is not None:
        import torch

        def comp(x, c=s.compiled):
            with torch.inference_mode():
                return c(x.contiguous(memory_format=torch.channels_last))
        t0 = time.perf_counter()
        comp(torch.rand(args.batch, 3, size, size))
        s.notes.append(f"torch.compile warm-up at {size}: {time.perf_counter() - t0:.1f} s.")
        contenders["torch.compile (inductor, freezing)"] = comp
    if s.net is not None:
        contenders[s.cv_name] = lambda x: _opencv_forward(s.net, x)
    return contenders, accuracy


def _onnx_contenders(s: _Setup, args, size: int, tmp: Path, contenders: dict, accuracy: dict) -> None:
    """ONNX Runtime fp32, OpenVINO (when installed) and, at ``--int8-sizes``, ONNX Runtime int8."""
    from yolokit.apps.export import quantize_int8
    from yolokit.models.onnx import export_onnx
    from yolokit.models.onnx import OnnxModel

    fp32_path = export_onnx(s.model, tmp / f"fp32-{size}.onnx", size)
    contenders[s.peer] = OnnxModel(fp32_path, threads=s.threads)
    openvino = _openvino(fp32_path, s.threads)
    if openvino is not None:
        contenders[openvino.name] = openvino
    elif size == args.sizes[0]:
        s.notes.append("no OpenVINO contender: openvino not installed (`pip install openvino`).")
    if size in (args.int8_sizes or []):
        t0 = time.perf_counter()
        q = quantize_int8(s.model, fp32_path, tmp / f"int8-{size}.onnx",
                          (s.calib[i].image for i in range(min(args.calib_images, len(s.calib)))), size,
                          method="percentile")
        s.notes.append(f"int8 at {size}: calibrated on {args.calib_images} coco128 train images in "
                       f"{time.perf_counter() - t0:.0f} s.")
        contenders["ONNX Runtime int8 (static, QDQ)"] = OnnxModel(q, threads=s.threads)
        accuracy["ONNX Runtime int8 (static, QDQ)"] = None


def _agreement(s: _Setup, args, size: int, contenders: dict, accuracy: dict) -> dict:
    """Box agreement with eager torch on the real photos, each contender through the same pre/post-processing
    (fp32 contenders); fills ``accuracy`` with (fp32 AP50, AP50) for the others."""
    from yolokit.apps.export import ap50

    def dets(fn):
        p = s.predictor(size)
        batch = p.preprocess(s.photos)
        return [p.postprocess(fn(batch.x[i:i + 1]).float(), _slice(batch, i))[0] for i in range(len(s.photos))]

    if s.random:  # near-tie scores: raw outputs against eager instead of detections (OpenCV's row order differs)
        x = s.predictor(size).preprocess(s.photos).x
        ref = contenders["eager"](x)
        return {name: ("raw", (fn(x).float() - ref).abs().max().item()) for name, fn in contenders.items()
                if name not in accuracy and name != s.cv_name}
    ref = dets(contenders["eager"])
    agree = {name: _compare(ref, dets(fn)) for name, fn in contenders.items() if name not in accuracy}
    if accuracy and s.val is not None and args.ap_images:
        base = ap50(contenders[s.peer] if s.ort else s.fast, s.val, size, limit=args.ap_images)  # fp32 reference
        for name in accuracy:
            accuracy[name] = (base, ap50(contenders[name], s.val, size, limit=args.ap_images))
    return agree


def _rows(size: int, contenders: dict, times: dict, agree: dict, accuracy: dict, peer: str) -> list[list]:
    rows = []
    for name in contenders:
        if name in agree and agree[name][0] == "raw":
            check = f"raw output max abs diff {agree[name][1]:.1e} (random weights)"
        elif name in agree:
            ok, min_iou, max_diff = agree[name]
            check = f"{'yes' if ok else 'NO'} (IoU {min_iou:.3f}, score diff {max_diff:.4f})"
        elif accuracy.get(name):
            base, got = accuracy[name]
            check = f"AP50 {got:.2f} vs {base:.2f} fp32 ({got - base:+.2f})"
        else:
            check = "-"
        rows.append([size, name, statistics.median(times[name]), min(times[name]), _ratio(times, name, peer), check])
    return rows


def _report(s: _Setup, args, rows: list, load_before) -> None:
    from yolokit.report import markdown_table, write_section

    peer = s.cv_name if args.model and s.net is not None else s.peer
    header = ["model"] * bool(args.model) + ["size", "contender", "median ms", "min ms",
                                             f"x {peer} (per-round median)", "agreement"]
    flops = s.model.flops() / 1e9
    what = (f"{', '.join(args.model)} (random weights, where the notes say so, time the same as trained ones)"
            if args.model else f"`{s.cfg.name}` ({flops:.2f} BFLOPs at {s.model.input_size[0]}, Darknet convention)")
    body = (f"{what}, batch {args.batch}, {s.threads} threads, {args.repeat} interleaved rounds per size, "
            f"OMP_WAIT_POLICY="
            f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}.\n\n{markdown_table(header, rows)}\n\n"
            "Agreement: fp32 contenders against eager torch on dog/person/horses.jpg through the one Predictor "
            "(same count and classes, IoU >= 0.99, scores within 0.01); int8/bf16 by AP50 (all-point, IoU 0.5) on "
            f"the first {args.ap_images} coco128 val2017 images against ONNX Runtime fp32 at the same size. "
            + ("Random-weight models: every score is near 0.3, so their detections are ties cut by the 300-box cap; "
               "the agreement column gives the raw output's max abs difference against eager on the same photos "
               "instead (OpenCV's raw parity with these cfgs is tests/models/test_zoo.py). " if any(
                   "random weights" in str(r[-1]) for r in rows) else "")
            + " ".join(s.notes)
            + f"\n\nLoad average (1/5/15 min) {'/'.join(f'{v:.1f}' for v in load_before)} before, "
            f"{'/'.join(f'{v:.1f}' for v in os.getloadavg())} after (2 cores shared with other jobs).")
    print(body)
    if args.write:
        write_section(args.write, args.section or ("infer-models" if args.model else "infer"), body)


def _no_grad(model, x):
    import torch

    with torch.no_grad():
        return model(x)


def _slice(batch, i):
    """Image ``i`` of a preprocessed batch as its own batch (same letterbox record)."""
    from dataclasses import replace

    views = [replace(v, x=v.x[i:i + 1], scales=v.scales[i:i + 1], pads=v.pads[i:i + 1]) for v in batch.views]
    return replace(batch, views=views, shapes=batch.shapes[i:i + 1])


# ---------------------------------------------------------------------------------------------- --defaults

POLICIES = (("default (spin)", None, None), ("PASSIVE", "PASSIVE", None), ("1 thread", None, 1))


def _busy():
    """A CPU-bound background process (another user's job) for ``--defaults`` under load."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _defaults(args):
    import json
    import subprocess
    import sys
    import tempfile

    if args.rows_json:
        rows = _defaults_child(args)
        with open(args.rows_json, "w") as f:
            json.dump(rows, f)
        return 0
    from yolokit.report import markdown_table, write_section

    size = args.sizes[0] if len(args.sizes) == 1 else 416
    rows, loads = [], []
    for busy in (0, args.load_procs):
        for label, policy, threads in POLICIES:
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            if policy:
                env["OMP_WAIT_POLICY"] = policy
            procs = [_busy() for _ in range(busy)]
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    out = os.path.join(tmp, "rows.json")
                    # torch imported before the CLI's main: it then leaves OMP_WAIT_POLICY as given here
                    # (unset = the OpenMP runtime's default), see yolokit.cli.default_omp_wait_policy.
                    cmd = [sys.executable, "-c", "import sys, torch; from yolokit.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", "bench", "infer", "--sizes", str(size), "--repeat",
                           str(args.repeat), "--rows-json", out]
                    cmd += ["--threads", str(threads)] if threads else []
                    cmd += ["--shared", args.shared] if args.shared else []
                    cmd += ["--no-onnx"] if args.no_onnx else []
                    loads.append(os.getloadavg()[0])
                    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
                    with open(out) as f:
                        child = json.load(f)
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
            for name, median, ratio in child:
                rows.append([f"{busy} busy" if busy else "no extra load", label, name, median, ratio])
            print(f"{label}, {busy} busy: done", flush=True)
    header = ["background", "OMP setting", "contender (detect per frame)", "median ms", "x OpenCV DNN (per-round)"]
    body = (f"yolov3-tiny detect per frame at {size} (letterbox + forward + NMS on dog.jpg; OpenCV: blob + forward + "
            f"the same NMS), {args.repeat} interleaved rounds, each setting in its own process; 'busy' = "
            f"{args.load_procs} extra `while True: pass` processes during the run.\n\n"
            f"{markdown_table(header, rows)}\n\n1-min load average at the start of each run: "
            f"{', '.join(f'{v:.1f}' for v in loads)} (2 cores, shared with other jobs).")
    print(body)
    if args.write:
        write_section(args.write, args.section or "infer-defaults", body)
    return 0


def _defaults_child(args):
    """Rows ``[contender, median ms, x OpenCV]`` for detect's per-frame work at one size in this process."""
    import tempfile

    import torch

    from yolokit.models import load
    from yolokit.models.predict import Predictor
    from yolokit.models.postprocess import postprocess

    shared = _shared(args.shared)
    cfg = args.cfg or shared / "yolov3_tiny_darknet" / "yolov3-tiny.cfg"
    weights = args.weights or shared / "yolov3_tiny_darknet" / "yolov3-tiny.weights"
    size, threads = args.sizes[0], torch.get_num_threads()
    model = load(cfg, weights)
    photo = _images(shared)[0]
    fns = {"fast path": Predictor(model.optimize_for_inference(), size)}
    tmp = tempfile.TemporaryDirectory()
    if not args.no_onnx:
        from yolokit.models.onnx import export_onnx
        from yolokit.models.onnx import OnnxModel

        fns["ONNX Runtime fp32"] = Predictor(OnnxModel(export_onnx(model, Path(tmp.name) / "m.onnx", size),
                                                       threads=threads), size)
    net, cv_name = _opencv_net(cfg, weights, threads)
    if net is not None:
        import cv2

        def opencv(images):
            blob = torch.from_numpy(cv2.dnn.blobFromImage(images[0], 1 / 255.0, (size, size), swapRB=False))
            return postprocess(_opencv_forward(net, blob), 0.25, 0.45)
        fns["OpenCV DNN"] = opencv
    from benchmarks.common import interleaved

    times = interleaved({name: (lambda fn=fn: fn([photo])) for name, fn in fns.items()}, args.repeat, warmup=2)
    tmp.cleanup()
    return [[name, statistics.median(times[name]), _ratio(times, name, "OpenCV DNN")] for name in fns]
