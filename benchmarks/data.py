"""Data-loader throughput: images/s of decode + augment + collate at 416 with 2 workers, on raccoon and
coco128, next to the yolov3-tiny training step it has to feed (forward + loss + backward + SGD step on
the same batch size, measured in the same run) -- the loader must be faster so training never waits.

Loader rate: batches after the first (worker start-up and the albumentations import excluded), over
``--epochs`` passes of the split. Rows: the full train pipeline (mosaic 0.5, crop, affine, flip, colour
jitter), the letterbox-only eval pipeline, the same letterbox pipeline streamed from WebDataset-style tar
shards (``yolokit convert --to shards``, written to a temporary folder before timing), and the train
pipeline in the main process (0 workers).
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.common import ROOT

HELP = "data-loader images/s (decode+augment+collate, 2 workers, 416) vs the yolov3-tiny train step"

DATASETS = {"raccoon": ("configs/data/raccoon.yaml", "train"), "coco128": ("configs/data/coco128.yaml", "train")}


def add_arguments(parser):
    parser.add_argument("--data", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--imgsz", type=int, default=416)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2, help="passes over the split per loader measurement")
    parser.add_argument("--model", default="configs/models/yolov3-tiny.cfg", help="model whose train step is the peer")
    parser.add_argument("--device", default="cpu", help="device of the train step")
    parser.add_argument("--steps", type=int, default=3, help="timed train steps")
    parser.add_argument("--shard-size", type=int, default=32, help="samples per tar shard of the shards row")


def loader_rate(dataset, imgsz: int, workers: int, batch: int, epochs: int, augment) -> tuple[float, int]:
    """Images per second over every batch but the first of each epoch; returns ``(rate, images timed)``."""
    from yolokit.data.loader import TrainDataset, build_loader

    td = TrainDataset(dataset, imgsz, augment=augment)
    loader = build_loader(td, batch_size=batch, size=imgsz, workers=workers, shuffle=True, seed=0)
    images, seconds = 0, 0.0
    for _ in range(epochs):
        it = iter(loader)
        next(it)  # start-up: worker spawn, imports, first decode
        t0 = time.perf_counter()
        for imgs, targets, _ in it:
            images += imgs.shape[0]
        seconds += time.perf_counter() - t0
    return images / seconds, images


def shard_rate(cfg: Path, split: str, imgsz: int, workers: int, batch: int, epochs: int,
               shard_size: int) -> tuple[float, int]:
    """Images per second of the letterbox pipeline streamed from tar shards of ``split`` (written first,
    untimed), batches after the first of each epoch as :func:`loader_rate`."""
    import tempfile

    from yolokit.data.shards import write_shards
    from yolokit.data.stream import ShardStream, build_shard_loader

    with tempfile.TemporaryDirectory() as tmp:
        write_shards(cfg, tmp, [split], shard_size)
        loader = build_shard_loader(ShardStream(Path(tmp) / split, imgsz), batch_size=batch, workers=workers)
        images, seconds = 0, 0.0
        for _ in range(epochs):
            it = iter(loader)
            next(it)
            t0 = time.perf_counter()
            for imgs, _, _ in it:
                images += imgs.shape[0]
            seconds += time.perf_counter() - t0
    return images / seconds, images


def train_step_rate(model_cfg: str, batch_imgs, targets, device: str, steps: int) -> float | None:
    """Images per second of one optimiser step of ``model_cfg`` on a real batch (None: no model code)."""
    import torch

    try:
        import yolokit
        from yolokit.loss import build_loss

        model = yolokit.load(model_cfg)
    except (ImportError, AttributeError, FileNotFoundError) as exc:
        print(f"train step not measured: {exc}")
        return None
    model.to(device).train()
    loss_fn = build_loss(model.heads)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    x, t = batch_imgs.to(device), targets.to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss, _ = loss_fn(model(x), t)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    from benchmarks.common import timeit

    return x.shape[0] / timeit(step, warmup=1, repeat=steps)


def run(args) -> int:
    from yolokit.report import markdown_table, write_section
    from yolokit.data import load_dataset
    from yolokit.data.augment import AugmentConfig
    from yolokit.data.loader import TrainDataset, collate

    rows, peer_batch = [], None
    for name in args.data:
        cfg, split = DATASETS[name]
        ds = load_dataset(ROOT / cfg, split)
        for label, aug, workers in (("train aug", AugmentConfig(), args.workers),
                                    ("letterbox only", None, args.workers),
                                    ("letterbox only, tar shards", "shards", args.workers),
                                    ("train aug", AugmentConfig(), 0)):
            if aug == "shards":
                rate, n = shard_rate(ROOT / cfg, split, args.imgsz, workers, args.batch, args.epochs, args.shard_size)
            else:
                rate, n = loader_rate(ds, args.imgsz, workers, args.batch, args.epochs, aug)
            rows.append([name, label, workers, n, rate])
            print(f"{name:8s} {label:26s} workers={workers} {n:4d} images  {rate:7.1f} img/s", flush=True)
        if peer_batch is None:
            td = TrainDataset(ds, args.imgsz, augment=AugmentConfig())
            peer_batch = collate([td[i] for i in range(min(args.batch, len(td)))])
    step = None
    if peer_batch is not None:
        step = train_step_rate(str(ROOT / args.model), peer_batch[0], peer_batch[1], args.device, args.steps)
    import os

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    body = [f"Loader at {args.imgsz}x{args.imgsz}, batch {args.batch}, {args.epochs} passes over each train split "
            "(first batch of each pass excluded: worker start-up). Tar shards: "
            f"{args.shard_size} samples per shard, same images and letterbox as the folder row, read as streams "
            "(one sequential read per shard). On a local disk with a warm page cache this row measures what streaming "
            "from tars costs, not a speed-up: shards are for network and object storage, where one large read "
            "beats many small ones, and for dealing work to DDP ranks. "
            f"Datasets under YOLOKIT_DATA_ROOT={os.environ.get('YOLOKIT_DATA_ROOT') or '(unset: datasets/)'}. "
            f"1-minute load average at the end: {load:.1f} on {os.cpu_count()} CPUs (above the CPU count, "
            "other work shared the machine and worker scaling is understated).", ""]
    header = ["data", "pipeline", "workers", "images timed", "images/s"]
    if step is not None:
        header.append(f"x {Path(args.model).stem} train step")
        for r in rows:
            r.append(r[4] / step)
    body.append(markdown_table(header, rows))
    if step is not None:
        print(f"{Path(args.model).stem} train step on {args.device}: {step:.1f} img/s (batch {args.batch})")
        body += ["", f"Peer: one {Path(args.model).stem} training step (forward, loss, backward, SGD) on "
                     f"{args.device}, batch {args.batch} at {args.imgsz}: **{step:.2f} images/s**. A ratio above 1 "
                     "means the loader outruns training."]
    else:
        body += ["", "Peer: the model code was not available; loader figures alone."]
    if args.write:
        write_section(args.write, "data", "\n".join(body))
        print(f"wrote the data section of {args.write}")
    return 0
