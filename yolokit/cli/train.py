"""Train or fine-tune a YOLO model.

  yolokit train --model yolov3-tiny.cfg --weights yolov3-tiny.weights --data configs/data/raccoon.yaml \\
      --epochs 30 --imgsz 416 --batch 16 --device cpu --out runs/raccoon
  yolokit train --resume runs/raccoon/last.pt            # continue exactly where it stopped
  yolokit train --model yolov3-tiny.cfg --weights yolov3-tiny.weights --data my.yaml   # the default recipe:
      # epochs, nominal batch, warm-up and EMA from the dataset size; lr, momentum, decay, schedule from the
      # cfg's [net]; the first lines say which value came from where
  yolokit train --config configs/train/raccoon-finetune.yaml   # a preset; flags given beside it win
  torchrun --nproc_per_node=2 tools/train.py ...         # DDP (gloo on CPU, NCCL on CUDA)

--model takes a Darknet .cfg (with optional --weights), a name from configs/models, a yolokit checkpoint
(.pt), or tv:resnet18 / tv:resnet50 / tv:mobilenet_v3_large (torchvision backbone under a YOLOv3-tiny-style
neck and head; --weights DEFAULT loads torchvision's ImageNet weights when they are available offline).
Outputs in --out: last.pt, best.pt (by val AP50), results.csv, tb/ (TensorBoard).
"""

from __future__ import annotations

HELP = "train / fine-tune a model (Darknet cfg+weights or checkpoint) on a dataset YAML"


def _adder():
    """``add(group, *flags, **kw)``: an option that defaults to "not given", so that a preset (--config) or a
    resumed run's saved options are only overridden by what the user typed; the effective defaults live in
    TrainConfig alone (and are shown), or come from the recipe (yolokit.engine.recipe)."""
    import argparse

    from yolokit.settings import TrainConfig
    from yolokit.engine.recipe import RECIPE_FIELDS

    defaults = TrainConfig(model="", data="")

    def add(group, *flags, **kw):
        dest = kw.get("dest") or flags[0].lstrip("-").replace("-", "_")
        default = getattr(defaults, dest, None)
        if default not in (None, "", {}) and kw.get("action") not in ("store_true", "store_false") \
                and "(default" not in kw.get("help", ""):
            kw["help"] = (kw.get("help", "") + f" (default: {default})").strip()
        elif dest in RECIPE_FIELDS and "(default" not in kw.get("help", ""):
            kw["help"] = (kw.get("help", "") + " (default: the recipe's, from the dataset size and the cfg; "
                          "printed as 'recipe: ...' at the start)").strip()
        group.add_argument(*flags, default=argparse.SUPPRESS, **kw)

    return add


def add_arguments(p) -> None:
    add = _adder()
    g = p.add_argument_group("what to train")
    add(g, "--model", help="Darknet .cfg, model name, yolokit checkpoint, or tv:<backbone>")
    add(g, "--weights", help="Darknet .weights for --model (tv: models: 'DEFAULT' for ImageNet)")
    add(g, "--data", help="dataset YAML (configs/data/*.yaml), or a shard data YAML (format: shards, as "
                          "convert --to shards writes) streamed from files or http:// URLs")
    add(g, "--download", action="store_true", help="fetch --data first if its files are missing (yolokit data get)")
    add(g, "--config", metavar="YAML", help="training preset (configs/train/*.yaml); flags given here win")
    add(g, "--resume", metavar="LAST_PT", help="continue a run from its last.pt with its saved options (flags "
                                               "given here win, e.g. --epochs to extend it)")
    add(g, "--out", help="output folder (default: runs/train; a folder holding another run -> the next free "
                         "name, runs/train2, ...)")
    add(g, "--exist-ok", action="store_true", help="write into --out even when it holds another run")
    g = p.add_argument_group("schedule")
    add(g, "--epochs", type=int)
    add(g, "--imgsz", type=int, help="square network input, a multiple of 32")
    add(g, "--batch", type=int, help="images per step and per process")
    add(g, "--nbs", type=int, help="nominal batch: gradients are accumulated to it")
    add(g, "--optimizer", choices=("sgd", "adamw"))
    add(g, "--lr", type=float)
    add(g, "--momentum", type=float)
    add(g, "--weight-decay", type=float)
    add(g, "--schedule", choices=("cosine", "step", "constant"))
    add(g, "--burn-in", type=int, help="warm-up optimizer updates (Darknet burn_in)")
    add(g, "--warmup-epochs", type=float, help="the recipe's warm-up in epochs when --burn-in is not given "
                                               "(at least 10 updates, at most a quarter of the run)")
    add(g, "--patience", type=int, help="early stop after N epochs without val gain")
    add(g, "--stop-at-map", type=float, help="stop once val AP50 reaches this")
    add(g, "--freeze", type=int, help="freeze the first N layers")
    add(g, "--freeze-epochs", type=int, help="unfreeze the --freeze layers after N epochs (0: never)")
    add(g, "--unfreeze-lr", type=float, help="after unfreezing, train at this fraction of the learning rate")
    add(g, "--no-keep-head", dest="keep_head", action="store_false",
        help="new classes: do not copy the pretrained box/objectness rows of the head")
    add(g, "--max-updates", type=int, help="stop after N optimizer updates")
    add(g, "--clip-grad", type=float, help="clip the gradient norm (0: off, as Darknet)")
    _data_and_runtime_arguments(p, add)


def _data_and_runtime_arguments(p, add) -> None:
    g = p.add_argument_group("loss and data")
    add(g, "--box-loss", choices=("mse", "giou", "ciou"))
    add(g, "--loss", dest="loss_weights", nargs="+", metavar="KEY=VALUE",
        help="loss weights, e.g. lambda_obj=2 lambda_noobj=0.5 (v1: lambda_coord, lambda_noobj)")
    add(g, "--no-augment", dest="augment", action="store_false")
    add(g, "--mosaic", type=float, help="probability of a 4-image mosaic")
    add(g, "--mixup", type=float, help="probability of mixup")
    add(g, "--multiscale", type=int, nargs=2, metavar=("MIN", "MAX"),
        help="one random size per batch in [MIN, MAX], multiples of 32 (YOLOv2)")
    add(g, "--limit-train", type=int, help="use only the first N training images")
    add(g, "--limit-val", type=int)
    add(g, "--train-split")
    add(g, "--val-split")
    add(g, "--val-before", action="store_true", help="also evaluate the starting weights")
    add(g, "--val-every", type=int, help="validate every N epochs (and at the end)")
    add(g, "--val-conf", type=float, help="the detector's score threshold while validating, in [0, 1] (saved in "
                                          "the checkpoint: yolokit eval and detect default to it)")
    add(g, "--val-iou", type=float, help="the NMS IoU while validating, in [0, 1] (saved in the checkpoint)")
    g = p.add_argument_group("runtime")
    add(g, "--device", help="auto (CUDA when available, else cpu), cpu, cuda, cuda:N or N")
    add(g, "--workers", type=int, help="DataLoader worker processes (default: up to 8 on CUDA; on the CPU 0 up to "
                                       "4 cores, where workers measured no faster)")
    add(g, "--no-ema", dest="ema", action="store_false")
    add(g, "--ema-tau", type=float, help="updates over which the EMA's decay ramps up")
    add(g, "--bn-momentum", type=float, help="BatchNorm momentum while training (Darknet: 0.01; 0 keeps it)")
    add(g, "--no-amp", dest="amp", action="store_false",
        help="train in fp32 (default: fp16 AMP on CUDA, bf16 autocast on CPUs with native bf16)")
    add(g, "--no-channels-last", dest="channels_last", action="store_false", help="NCHW tensors instead of NHWC")
    add(g, "--compile", action="store_true",
        help="torch.compile the training forward (worth it on CUDA for long runs; the first batches compile, and "
             "each new --multiscale size compiles again)")
    add(g, "--sync-bn", action="store_true", help="SyncBatchNorm under DDP (CUDA only)")
    add(g, "--seed", type=int)
    add(g, "--no-progress", dest="progress", action="store_false")


def run(args) -> int:
    from yolokit.engine import TrainConfig, train
    from yolokit.models import load_checkpoint
    from yolokit.errors import ConfigError

    given = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("command", "config")}
    download = given.pop("download", False)
    if "loss_weights" in given:
        given["loss_weights"] = _pairs(given["loss_weights"])
    if "multiscale" in given:
        given["multiscale"] = tuple(given["multiscale"])
    if "resume" in given:
        saved = load_checkpoint(given["resume"]).get("train_args") or {}
        if not saved:
            raise ConfigError(f"{given['resume']}: checkpoint has no training arguments to resume from (best.pt "
                              f"holds weights only: resume from last.pt, or fine-tune with --model)")
        saved["max_updates"] = 0  # a test/benchmark cap of the first run does not carry over
        for key in ("out", "exist_ok"):  # where to write follows the checkpoint (yolokit.engine.runs), not the
            saved.pop(key, None)  # folder it was first written to
        cfg = TrainConfig.from_dict({**saved, **given})
    elif getattr(args, "config", None):
        cfg = TrainConfig.from_yaml(args.config, **given)
    else:
        if "model" not in given or "data" not in given:
            raise ConfigError("yolokit train needs --model and --data (or --config PRESET, or --resume LAST_PT)")
        cfg = TrainConfig.from_dict(given)  # every value checked here (TrainConfig.validate): one line per error
    if download:
        from yolokit.data.download import ensure

        ensure(cfg.data)
    try:
        result = train(cfg)
    except KeyboardInterrupt:  # Ctrl-C: say what is on disk and how to continue, as the disk-full message does
        raise KeyboardInterrupt(interrupted_text(cfg)) from None
    if result["best_epoch"] > 0:
        print(f"best val AP50 {result['best_map50']:.4f} at epoch {result['best_epoch']}; "
              f"weights in {result['out']}/best.pt")
    return 0


def interrupted_text(cfg) -> str:
    """After Ctrl-C: the run's ``last.pt`` (the last finished epoch) and the ``--resume`` command that continues
    it. The folder is the one :func:`yolokit.engine.runs.choose` gave this run: the checkpoint's own for a
    resume in place, else the newest run of the ``--out`` series (this run claimed it at its start)."""
    from pathlib import Path

    from yolokit.engine import runs

    if cfg.resume and runs.is_own_last(Path(cfg.resume)) and cfg.out is None:
        folder = Path(cfg.resume).parent
    else:
        base = Path(cfg.out or runs.DEFAULT_OUT)
        folder = base if cfg.exist_ok else runs.newest_run(base)
    last = folder / "last.pt"
    if last.is_file():
        return f"{last} holds the last finished epoch; continue with: yolokit train --resume {last}"
    if cfg.resume:
        return f"no epoch finished since the resume; continue with: yolokit train --resume {cfg.resume}"
    return f"no epoch finished, so there is nothing to resume ({last} is written at the end of each epoch)"


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
