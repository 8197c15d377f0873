"""Train or fine-tune a YOLO model.

  yolokit train --model yolov3-tiny.cfg --weights yolov3-tiny.weights --data configs/data/raccoon.yaml \\
      --epochs 30 --imgsz 416 --batch 16 --device cpu --out runs/raccoon
  yolokit train --resume runs/raccoon/last.pt            # continue exactly where it stopped
  torchrun --nproc_per_node=2 tools/train.py ...         # DDP (gloo on CPU, NCCL on CUDA)

--model takes a Darknet .cfg (with optional --weights), a name from configs/models, a yolokit checkpoint
(.pt), or tv:resnet18 / tv:resnet50 / tv:mobilenet_v3_large (torchvision backbone under a YOLOv3-tiny-style
neck and head; --weights DEFAULT loads torchvision's ImageNet weights when they are available offline).
Outputs in --out: last.pt, best.pt (by val AP50), results.csv, tb/ (TensorBoard).
"""

from __future__ import annotations

HELP = "train / fine-tune a model (Darknet cfg+weights or checkpoint) on a dataset YAML"


def add_arguments(p) -> None:
    g = p.add_argument_group("what to train")
    g.add_argument("--model", help="Darknet .cfg, model name, yolokit checkpoint, or tv:<backbone>")
    g.add_argument("--weights", help="Darknet .weights for --model (tv: models: 'DEFAULT' for ImageNet)")
    g.add_argument("--data", help="dataset YAML (configs/data/*.yaml)")
    g.add_argument("--resume", metavar="LAST_PT", help="continue a run from its last.pt (other options are "
                                                       "taken from the checkpoint)")
    g.add_argument("--out", default="runs/train", help="output folder (default: %(default)s)")
    g = p.add_argument_group("schedule")
    g.add_argument("--epochs", type=int, default=30)
    g.add_argument("--imgsz", type=int, default=416, help="square network input, a multiple of 32")
    g.add_argument("--batch", type=int, default=16, help="images per step and per process")
    g.add_argument("--nbs", type=int, default=64, help="nominal batch: gradients are accumulated to it")
    g.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--weight-decay", type=float, default=5e-4)
    g.add_argument("--schedule", choices=("cosine", "step", "constant"), default="cosine")
    g.add_argument("--burn-in", type=int, default=100, help="warm-up optimizer updates (Darknet burn_in)")
    g.add_argument("--patience", type=int, default=0, help="early stop after N epochs without val gain")
    g.add_argument("--stop-at-map", type=float, default=0.0, help="stop once val AP50 reaches this")
    g.add_argument("--freeze", type=int, default=0, help="freeze the first N layers")
    g.add_argument("--freeze-epochs", type=int, default=0,
                   help="unfreeze the --freeze layers after N epochs (0: frozen throughout)")
    g.add_argument("--unfreeze-lr", type=float, default=0.1,
                   help="after unfreezing, train everything at this fraction of the learning rate")
    g.add_argument("--no-keep-head", dest="keep_head", action="store_false",
                   help="new classes: do not copy the pretrained box/objectness rows of the head")
    g.add_argument("--max-updates", type=int, default=0, help="stop after N optimizer updates")
    g.add_argument("--clip-grad", type=float, default=0.0, help="clip the gradient norm (0: off, as Darknet)")
    g = p.add_argument_group("loss and data")
    g.add_argument("--box-loss", choices=("mse", "giou", "ciou"), default="mse")
    g.add_argument("--loss", nargs="+", metavar="KEY=VALUE", default=[],
                   help="loss weights, e.g. lambda_obj=2 lambda_noobj=0.5 (v1: lambda_coord, lambda_noobj)")
    g.add_argument("--no-augment", dest="augment", action="store_false")
    g.add_argument("--mosaic", type=float, default=0.5, help="probability of a 4-image mosaic")
    g.add_argument("--mixup", type=float, default=0.0, help="probability of mixup")
    g.add_argument("--multiscale", type=int, nargs=2, metavar=("MIN", "MAX"),
                   help="one random size per batch in [MIN, MAX], multiples of 32 (YOLOv2)")
    g.add_argument("--limit-train", type=int, default=0, help="use only the first N training images")
    g.add_argument("--limit-val", type=int, default=0)
    g.add_argument("--train-split", default="train")
    g.add_argument("--val-split", default="val")
    g.add_argument("--val-before", action="store_true", help="also evaluate the starting weights")
    g.add_argument("--val-every", type=int, default=1, help="validate every N epochs (and at the end)")
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or N")
    g.add_argument("--workers", type=int, default=0)
    g.add_argument("--no-ema", dest="ema", action="store_false")
    g.add_argument("--bn-momentum", type=float, default=0.03,
                   help="BatchNorm momentum while training (Darknet uses 0.01; 0 keeps the model's)")
    g.add_argument("--no-amp", dest="amp", action="store_false")
    g.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm under DDP")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--no-progress", dest="progress", action="store_false")


def run(args) -> int:
    from yolokit.engine import TrainConfig, load_checkpoint, train
    from yolokit.errors import ConfigError

    if args.resume:
        saved = load_checkpoint(args.resume).get("train_args") or {}
        if not saved:
            raise ConfigError(f"{args.resume}: checkpoint has no training arguments to resume from")
        saved["resume"] = args.resume
        saved["max_updates"] = 0  # a test/benchmark cap of the first run does not carry over
        cfg = TrainConfig.from_dict(saved)
    else:
        if not args.model or not args.data:
            raise ConfigError("yolokit train needs --model and --data (or --resume LAST_PT)")
        keys = ("model", "weights", "data", "out", "epochs", "imgsz", "batch", "nbs", "optimizer", "lr",
                "momentum", "weight_decay", "schedule", "burn_in", "patience", "stop_at_map", "freeze",
                "freeze_epochs", "unfreeze_lr", "keep_head", "max_updates", "box_loss", "augment", "mosaic",
                "mixup", "multiscale", "limit_train", "limit_val", "train_split", "val_split", "val_before",
                "device", "workers", "ema", "amp", "sync_bn", "seed", "progress", "clip_grad", "val_every",
                "bn_momentum")
        cfg = TrainConfig(**{k: getattr(args, k) for k in keys}, loss_weights=_pairs(args.loss))
        if cfg.multiscale:
            cfg.multiscale = tuple(cfg.multiscale)
        if cfg.imgsz % 32:
            raise ConfigError(f"--imgsz {cfg.imgsz}: must be a multiple of 32")
    result = train(cfg)
    if result["best_epoch"] > 0:
        print(f"best val AP50 {result['best_map50']:.4f} at epoch {result['best_epoch']}; "
              f"weights in {result['out']}/best.pt")
    return 0


def _pairs(items: list[str]) -> dict:
    from yolokit.errors import ConfigError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--loss {item!r}: expected KEY=NUMBER, e.g. lambda_obj=2")
    return out
