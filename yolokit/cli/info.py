"""Print a model's layers (Darknet-style table), parameter count and FLOPs.

FLOPs follow Darknet's convention: 2 x multiply-accumulates of the convolutional, connected and local layers
(so yolov3-tiny reads 5.56 BFLOPs at 416x416, as Darknet prints). The model is built on torch's meta device:
nothing is allocated, so even YOLOv1's 270M parameters print instantly.

Examples:
    yolokit info yolov3-tiny
    yolokit info yolov2 --imgsz 608
    yolokit info path/to/model.cfg
    yolokit info --zoo ../shared/data/darknet_cfgs     # every cfg of a folder: loads?, BFLOPs, params, why not
"""

from __future__ import annotations

HELP = "layers, parameters and FLOPs of a model (cfg, checkpoint or configs/models name)"


def add_arguments(parser):
    parser.add_argument("model", nargs="?", help="a .cfg file, a yolokit checkpoint, or a name in configs/models")
    parser.add_argument("--model", dest="model_option", metavar="MODEL",
                        help="the same as MODEL, spelled as the other commands spell it")
    parser.add_argument("--imgsz", default=None, help="input size: N or HxW (default: the cfg's [net] size)")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the totals")
    parser.add_argument("--zoo", metavar="DIR", help="survey every *.cfg of DIR: whether it loads, its BFLOPs at "
                                                      "its own size and parameters, or the reason it does not")


def parse_imgsz(value: str | None) -> tuple[int, int] | None:
    from yolokit.errors import ConfigError

    if value is None:
        return None
    try:
        parts = [int(v) for v in str(value).lower().split("x")]
    except ValueError:
        raise ConfigError(f"--imgsz {value}: expected N or HxW") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise ConfigError(f"--imgsz {value}: expected N or HxW with positive sizes")
    return parts[0], parts[1]


def summary(model_arg: str, imgsz: tuple[int, int] | None = None):
    """``(model on the meta device, source)`` for a cfg path, checkpoint or model name."""
    from pathlib import Path

    import torch

    from yolokit.errors import ConfigError
    from yolokit.models import DarknetModel, is_checkpoint, config_path, load_checkpoint
    from yolokit.models.cfg import read_cfg, set_net_size

    path = Path(model_arg)
    if path.is_file() and is_checkpoint(path):
        state = load_checkpoint(path)  # one line for a foreign, empty, truncated or pickled file
        text = state.get("cfg")
        if not isinstance(text, str):
            raise ConfigError(f"{path}: a {(state.get('tv_arch') or {}).get('backbone', 'torchvision')} backbone "
                              "checkpoint has no Darknet cfg; info describes cfg models")
    elif path.is_file() and path.suffix.lower() == ".weights":
        raise ConfigError(f"{path}: a Darknet .weights file holds numbers, not the architecture; give its .cfg")
    else:
        if not path.is_file():
            path = config_path(model_arg)
        text = read_cfg(path)[0]  # a binary or unreadable file is one line naming it
    if imgsz is not None:
        text = set_net_size(text, *imgsz, source=str(path))
    with torch.device("meta"):
        return DarknetModel(text, str(path)), str(path)


def run_zoo(folder: str) -> int:
    from pathlib import Path

    from yolokit.errors import ConfigError
    from yolokit.models.zoo import survey

    if not Path(folder).is_dir():
        raise ConfigError(f"--zoo {folder}: not a folder")
    rows = survey(folder)
    if not rows:
        raise ConfigError(f"--zoo {folder}: no *.cfg files")
    width = max(len(r.name) for r in rows)
    print(f"{'cfg':<{width}}  {'loads':<5} {'kind':<8} {'heads':<16} {'size':>9} {'BFLOPs':>8} {'params':>12}  reason")
    for r in rows:
        size = f"{r.input_hw[0]}x{r.input_hw[1]}" if r.loads else ""
        flops = f"{r.bflops:8.2f}" if r.loads else ""
        params = f"{r.params:12,}" if r.loads else ""
        print(f"{r.name:<{width}}  {'yes' if r.loads else 'no':<5} {r.kind:<8} {r.heads:<16} {size:>9} {flops:>8} "
              f"{params:>12}  {r.reason}")
    det = sum(r.kind == "detector" for r in rows)
    back = sum(r.kind == "backbone" for r in rows)
    print(f"{len(rows)} cfgs: {det + back} load ({det} detectors, {back} backbones), {len(rows) - det - back} do not")
    return 0


def run(args) -> int:
    from yolokit.errors import ConfigError

    if args.zoo:
        return run_zoo(args.zoo)
    if args.model and args.model_option and args.model != args.model_option:
        raise ConfigError(f"model given twice: {args.model} and --model {args.model_option}")
    name = args.model or args.model_option
    if not name:
        raise ConfigError("give a model: yolokit info MODEL (a .cfg, a checkpoint or a name in configs/models)")
    model, source = summary(name, parse_imgsz(args.imgsz))
    h, w = model.input_size
    params = sum(p.numel() for p in model.parameters())
    if not args.quiet:
        print(f"{source}: {len(model.layers)} layers, input {h}x{w}x{model.infos[0].in_shape[0]}")
        print(f"{'layer':>5}  {'type':<13} {'detail':<30} {'input':>14}    {'output':>14}  {'BFLOPs':>7}")
        for info in model.infos:
            ci, hi, wi = info.in_shape
            co, ho, wo = info.out_shape
            flops = f"{info.flops / 1e9:7.3f}" if info.flops else ""
            print(f"{info.index:5d}  {info.kind:<13} {info.detail.strip():<30} {hi:4d}x{wi:4d}x{ci:4d} -> "
                  f"{ho:4d}x{wo:4d}x{co:4d}  {flops}")
        for spec in model.heads:
            anchors = " ".join(f"{aw:g}x{ah:g}" for aw, ah in spec.anchors)
            print(f"head: layer {spec.layer} [{spec.kind}] grid {spec.grid[0]}x{spec.grid[1]} "
                  f"stride {spec.stride[0]:g} classes {spec.num_classes} boxes/cell {spec.num_boxes}"
                  + (f" anchors(px) {anchors}" if anchors else ""))
    print(f"params: {params:,}  BFLOPs: {model.flops() / 1e9:.3f} at {h}x{w}")
    return 0
