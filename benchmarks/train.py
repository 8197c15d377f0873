"""Training benchmarks, each writing its own section of BENCHMARKS.md:

* ``--task finetune`` -- fine-tune yolov3-tiny from its COCO Darknet weights on raccoon (the README's fixed
  160 train / 40 val split, configs/data/raccoon.yaml); wall clock of the whole run and val AP50 before/after.
* ``--task overfit`` -- a YOLOv1-style model (configs/train/yolov1-overfit.cfg) and YOLOv3-tiny, both from
  scratch, trained on a handful of real images until AP50 on those same images reaches the target: proves
  the losses and the target encoding (a wrong encoding cannot be overfit).
* ``--task throughput`` -- training images/s (forward, loss, backward, SGD step) at 416 x 416, batch 16, on the
  same real coco128 batches: yolokit in fp32 NCHW (the old path) and as ``yolokit train`` runs by default (bf16
  autocast where the CPU has it, channels_last, fused SGD), and PyTorch-YOLOv3 (``pytorchyolo``, same cfg) in
  the same run when it is installed; the fraction of the CPU's fp32 peak.

``yolokit bench finetune`` (benchmarks/finetune.py) runs the default recipe across seeds.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from benchmarks.common import ROOT, SHARED_DATA as SHARED

HELP = "training: fine-tune wall clock + AP50 (raccoon), overfit checks, train img/s vs pytorchyolo (coco128)"


def add_arguments(parser):
    parser.add_argument("--task", choices=("finetune", "overfit", "throughput"), required=True)
    parser.add_argument("--out", default="runs/bench_train", help="training outputs go under this folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="finetune: epochs (default 6); overfit: "
                                                                 "the most epochs per model (default 300)")
    parser.add_argument("--imgsz", type=int, default=None)
    parser.add_argument("--batch", type=int, default=16, help="throughput: batch size")
    parser.add_argument("--images", type=int, default=8, help="overfit: how many training images")
    parser.add_argument("--target", type=float, default=0.9, help="overfit: AP50 to reach")
    parser.add_argument("--steps", type=int, default=6, help="throughput: timed training steps")
    parser.add_argument("--limit", type=int, default=0, help="use only N images per split (smoke test)")


def run(args) -> int:
    body = {"finetune": _finetune, "overfit": _overfit, "throughput": _throughput}[args.task](args)
    print(body)
    if args.write:
        from yolokit.report import write_section

        write_section(args.write, f"train-{args.task}", body)
    return 0


def _command(cfg) -> str:
    """The ``yolokit train`` command equivalent to a TrainConfig (non-default options only)."""
    from dataclasses import fields

    from yolokit.engine import TrainConfig

    defaults = TrainConfig(model="", data="")
    parts = ["yolokit", "train"]
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if f.name in ("progress", "tensorboard") or v == getattr(defaults, f.name) and f.name not in ("model", "data"):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(v, bool):
            parts.append(flag if v else "--no-" + f.name.replace("_", "-"))
        elif f.name == "loss_weights":
            parts += ["--loss", *(f"{k}={w}" for k, w in v.items())]
        elif isinstance(v, (tuple, list)):
            parts += [flag, *map(str, v)]
        else:
            parts += [flag, str(v)]
    # shown relative to the repository root, where the bench runs
    return " ".join(shlex.quote(p) for p in parts).replace(str(ROOT) + "/", "").replace(str(ROOT.parent) + "/", "../")


def _finetune(args) -> str:
    from yolokit.report import markdown_table
    from yolokit.engine import TrainConfig, train

    # the preset configs/train/raccoon-finetune.yaml, with absolute paths so the bench runs from anywhere
    d = SHARED / "yolov3_tiny_darknet"
    overrides = {"model": str(d / "yolov3-tiny.cfg"), "weights": str(d / "yolov3-tiny.weights"),
                 "data": str(ROOT / "configs" / "data" / "raccoon.yaml"), "out": str(Path(args.out) / "raccoon"),
                 "device": args.device, "progress": False, "limit_train": args.limit, "limit_val": args.limit}
    for key in ("epochs", "imgsz"):
        if getattr(args, key):
            overrides[key] = getattr(args, key)
    cfg = TrainConfig.from_yaml(ROOT / "configs" / "train" / "raccoon-finetune.yaml", **overrides)
    t0 = time.perf_counter()
    result = train(cfg)
    wall = time.perf_counter() - t0
    rows = [[r["epoch"], r.get("map50", float("nan")), r.get("map50_07", float("nan")),
             r.get("loss", ""), r.get("img_per_s", "")] for r in result["history"]]
    train_rows = [r for r in result["history"] if r["epoch"] > 0]
    img_s = sum(r["images"] for r in train_rows) / max(sum(r["train_s"] for r in train_rows), 1e-9)
    before = result["history"][0]["map50"]
    return "\n".join([
        "Fine-tuning yolov3-tiny (COCO Darknet weights) on raccoon, the README's fixed split: 160 train / 40 val "
        "images (configs/data/raccoon.yaml). New 1-class head: box and objectness rows copied from the COCO "
        "head, class rows zero; first 10 layers frozen (their BatchNorm statistics too); SGD, burn-in 10 "
        "updates then cosine; yolokit.data augmentation (crop, affine, flip, colour; no mosaic in so short a "
        "run). AP50 = VOC all-point AP at IoU 0.5 on the 40 val images (EMA weights), mapped back to original pixels.",
        "",
        f"Equivalent command: `{_command(cfg)}` (the preset `configs/train/raccoon-finetune.yaml`)",
        "",
        markdown_table(["epoch", "val AP50", "val AP50 (VOC07 11-pt)", "train loss", "train img/s"], rows),
        "",
        f"**val AP50 {before:.3f} before training -> {result['best_map50']:.3f} (best, epoch "
        f"{result['best_epoch']})**; wall clock of the whole run (loading, training, validation each epoch, "
        f"checkpoints): **{wall / 60:.1f} min** (target: <= 30 min); training throughput {img_s:.2f} img/s at "
        f"{cfg.imgsz}. The CPU was shared with other jobs during the run, so the wall clock is an upper bound.",
    ])


def _overfit(args) -> str:
    from yolokit.report import markdown_table
    from yolokit.engine import TrainConfig, train

    n = args.images
    models = [("YOLOv1-style, `configs/train/yolov1-overfit.cfg` (7x7x(2*5+1), sqrt w/h, FC head)",
               ROOT / "configs" / "train" / "yolov1-overfit.cfg", 224),
              ("YOLOv3-tiny, `configs/models/yolov3-tiny.cfg` (2 [yolo] heads, 6 anchors)",
               ROOT / "configs" / "models" / "yolov3-tiny.cfg", args.imgsz or 256)]
    rows, commands = [], []
    for label, cfg_path, imgsz in models:
        cfg = TrainConfig(model=str(cfg_path), data=str(ROOT / "configs" / "data" / "raccoon.yaml"),
                          out=str(Path(args.out) / f"overfit_{cfg_path.stem}"), epochs=args.epochs or 300,
                          imgsz=imgsz, batch=n, nbs=n, optimizer="adamw", lr=1e-3, weight_decay=0.0,
                          schedule="constant", burn_in=10, augment=False, ema=False, bn_momentum=0.1,
                          limit_train=n, val_split="train", limit_val=n, stop_at_map=args.target,
                          val_every=5, device=args.device, progress=False)
        t0 = time.perf_counter()
        result = train(cfg)
        wall = time.perf_counter() - t0
        hist = [r for r in result["history"] if "map50" in r]
        reached = next((r["epoch"] for r in hist if r["map50"] >= args.target), None)
        rows.append([label, imgsz, result["best_map50"], reached if reached is not None else "not reached",
                     hist[-1]["epoch"], f"{wall / 60:.1f} min"])
        commands.append(f"`{_command(cfg)}`")
    return "\n".join([
        f"Overfitting a handful of real images from scratch (random init, no pretrained weights): the first {n} "
        f"images of raccoon's train split, trained and evaluated on those same {n} images (no augmentation, "
        f"AdamW 1e-3, all {n} images in one batch so that BatchNorm's batch statistics are the population's; "
        f"validation every 5 epochs, stopping at the target). Reaching AP50 >= {args.target} there shows the "
        "loss and the target encoding "
        "are consistent with the decoder: a wrong cell offset, anchor assignment or sqrt convention would stop "
        "the detections from landing on the boxes.",
        "",
        markdown_table(["model", "imgsz", "best AP50 (train images)", f"first epoch with AP50 >= {args.target}",
                        "optimizer updates (= epochs)", "wall clock"], rows),
        "",
        "Equivalent commands:",
        "",
        *[f"- {c}" for c in commands],
    ])


def _conv_flops(model, imgsz: int) -> float:
    """Forward FLOPs (2 x multiply-accumulates of every convolution) of one ``imgsz`` image."""
    import torch

    total = [0.0]

    def hook(m, _inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        total[0] += 2.0 * k * out.numel()

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, imgsz, imgsz))
    for h in hooks:
        h.remove()
    return total[0]


def _cpu_peak_gflops(threads: int) -> tuple[float, str]:
    """fp32 peak of ``threads`` cores: AVX-512 with two FMA pipes = 64 FLOP per cycle per core (Zen 4/5, Intel
    server cores), at the clock /proc/cpuinfo reports; AVX2 machines: 32. bf16 dot products double it."""
    import torch

    mhz = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                mhz = max(mhz, float(line.split(":")[1]))
    except OSError:
        pass
    per_cycle = 64 if "AVX512" in torch.backends.cpu.get_cpu_capability() else 32
    ghz = mhz / 1000 or 2.5
    return threads * ghz * per_cycle, f"{threads} core(s) x {ghz:.2f} GHz x {per_cycle} fp32 FLOP/cycle"


def _pytorchyolo_step(cfg_path: str, imgsz: int):
    """PyTorch-YOLOv3's (pytorchyolo, eriklindernoren) Darknet model, loss and SGD step, or None when it is not
    installed. Its training-only dependency imgaug is stubbed: model and loss do not use it."""
    import sys
    import types

    import torch

    try:
        import pytorchyolo  # noqa: F401
    except ImportError:
        return None
    for name in ("imgaug", "imgaug.augmenters", "imgaug.augmentables", "imgaug.augmentables.bbs"):
        sys.modules.setdefault(name, types.ModuleType(name))
    bbs = sys.modules["imgaug.augmentables.bbs"]
    bbs.BoundingBox = bbs.BoundingBoxesOnImage = object
    from pytorchyolo.models import Darknet
    from pytorchyolo.utils.loss import compute_loss

    model = Darknet(cfg_path).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step(images, targets):
        # its targets: [batch_index, class, cx, cy, w, h] normalised to the input
        t = targets.clone()
        xy1, xy2 = targets[:, 2:4], targets[:, 4:6]
        t[:, 2:4], t[:, 4:6] = (xy1 + xy2) / 2 / imgsz, (xy2 - xy1) / imgsz
        loss, _ = compute_loss(model(images), t, model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _yolokit_step(cfg, class_names, imgsz: int, fast: bool, amp: bool = True):
    """yolokit's training step (forward, loss, backward, fused SGD) in fp32 NCHW or, ``fast``, as ``yolokit
    train`` runs it by default: bf16 autocast where the CPU has it (``amp``), channels_last."""
    import torch

    from yolokit.engine.optim import build_optimizer
    from yolokit.engine.precision import autocast_dtype
    from yolokit.loss import build_loss
    from yolokit.models.transfer import build_train_model, set_train_mode

    torch.manual_seed(0)
    model = build_train_model(cfg.model, cfg.weights, class_names)
    dtype = autocast_dtype(torch.device("cpu"), amp) if fast else None
    fmt = torch.channels_last if fast else torch.contiguous_format
    model.to(memory_format=fmt)
    criterion = build_loss(model.heads, img_size=(imgsz, imgsz), box_loss="mse")
    optimizer = build_optimizer(model, cfg)
    set_train_mode(model)

    def step(images, targets):
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            outputs = model(images.contiguous(memory_format=fmt))
        loss, _ = criterion([o.float() for o in outputs], targets, img_size=(imgsz, imgsz))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, dtype


BLOCK = 3  # throughput: timed consecutive steps per contender and round


def _throughput(args) -> str:
    import statistics

    import torch

    from yolokit.data import TrainDataset, build_loader, load_dataset
    from yolokit.engine import TrainConfig
    from yolokit.report import markdown_table

    imgsz = args.imgsz or 416
    data = str(ROOT / "configs" / "data" / "coco128_yolo.yaml")
    cfg_path = str(SHARED / "yolov3_tiny_darknet" / "yolov3-tiny.cfg")
    cfg = TrainConfig(model=cfg_path, data=data, imgsz=imgsz, batch=args.batch, device="cpu", lr=1e-4,
                      momentum=0.9, weight_decay=5e-4)
    ds = load_dataset(data, "train")
    loader = build_loader(TrainDataset(ds, imgsz, augment=True), args.batch, imgsz, train=True, workers=0,
                          drop_last=True)
    it = iter(loader)
    batches = [next(it)[:2] for _ in range(2)]  # the same real batches for every contender (data time excluded)
    fp32, _ = _yolokit_step(cfg, ds.class_names, imgsz, fast=False)
    fast, dtype = _yolokit_step(cfg, ds.class_names, imgsz, fast=True)
    contenders = {"yolokit, fp32 NCHW (before)": fp32,
                  f"yolokit default ({'bf16 autocast, ' if dtype else 'fp32, '}channels_last, fused SGD, FTZ)": fast}
    if dtype is not None:  # what the default gives on a CPU without native bf16
        contenders["yolokit default without bf16 (fp32, channels_last, fused SGD, FTZ)"] = \
            _yolokit_step(cfg, ds.class_names, imgsz, fast=True, amp=False)[0]
    peer = _pytorchyolo_step(cfg_path, imgsz)
    if peer is not None:
        contenders["pytorchyolo 1.8 (PyTorch-YOLOv3), fp32"] = peer
    names = list(contenders)
    for name in names:  # warm-up: allocations, oneDNN kernel selection
        contenders[name](*batches[0])
    times = {name: [] for name in names}
    # rounds of BLOCK consecutive steps per contender (a training run takes its steps back to back: one step of
    # each in turn would make every step start on another model's caches and allocations; measured on an idle
    # machine: the default contender at 26.5 img/s that way, 29.5 in blocks), the order rotating every round, so
    # that a busy spell of other jobs hits every contender alike; the first step of a block is not timed
    for r in range(-(-args.steps // BLOCK)):
        for name in names[r % len(names):] + names[:r % len(names)]:
            torch.set_flush_denormal(name.startswith("yolokit default"))  # as `yolokit train` runs on a CPU
            for k in range(BLOCK + 1):
                images, targets = batches[k % len(batches)]
                t0 = time.perf_counter()
                contenders[name](images, targets)
                if k:
                    times[name].append(time.perf_counter() - t0)
    torch.set_flush_denormal(False)
    flops = 3 * _conv_flops(_model_for_flops(cfg_path), imgsz)
    threads = torch.get_num_threads()
    peak, peak_text = _cpu_peak_gflops(threads)
    rate = {name: args.batch / statistics.median(times[name]) for name in names}
    peer_name = names[-1] if peer is not None else None
    rows = []
    for name in names:
        gflops = rate[name] * flops / 1e9
        rows.append([name, f"{rate[name]:.2f}", f"{gflops / peak:.0%}",
                     f"{rate[name] / rate[peer_name]:.2f}x" if peer_name else "n/a"])
    if peer is None:
        note = "pytorchyolo is not installed (`pip install --no-deps pytorchyolo`), so no same-run comparison."
    else:
        note = (f"pytorchyolo runs the same cfg ({Path(cfg_path).name}, 80 classes) with its own loss on the same "
                "batches, fp32 (it has no CPU mixed precision).")
    return "\n".join([
        f"Training throughput, yolov3-tiny at {imgsz}x{imgsz}, batch {args.batch}, {threads} thread(s): images/s of "
        "the training step (forward, loss, backward, SGD step) on the same 2 real coco128 batches (yolokit.data "
        f"augmentation) for every contender, median of {-(-args.steps // BLOCK) * BLOCK} timed steps: rounds of "
        f"{BLOCK} consecutive steps (after one untimed step) per contender, as a training run takes them, the "
        "order rotating every round, so that other jobs on the machine slow every contender alike.",
        "",
        markdown_table(["contender", "img/s", "of fp32 peak", "vs pytorchyolo"], rows),
        "",
        f"Work per image: {flops / 1e9:.1f} GFLOP (3 x the {flops / 3e9:.2f} GFLOP of the convolutions' forward "
        f"pass); fp32 peak {peak:.0f} GFLOP/s ({peak_text}); bf16 dot products have twice that peak. {note}",
    ])


def _model_for_flops(cfg_path: str):
    from yolokit.models import load

    return load(cfg_path)
