"""Cut a Darknet partial weights file, as ``darknet partial CFG WEIGHTS OUT N`` does: the header (with ``seen``
reset to 0) and the weights of the cfg's first N layers, e.g. the ``yolov3-tiny.conv.15`` / ``yolov4-tiny.conv.29``
backbones Darknet trains new detectors from. Load one with ``--weights OUT`` (a file named ``*.conv.N`` fills the
first N layers; the others keep their initialisation).

Examples:
    yolokit partial yolov3-tiny.cfg yolov3-tiny.weights yolov3-tiny.conv.15 15
    yolokit partial yolov4-tiny.cfg yolov4-tiny.weights yolov4-tiny.conv.29 29
"""

from __future__ import annotations

HELP = "write the first N layers of a .weights file (darknet partial), e.g. yolov4-tiny.conv.29"


def add_arguments(parser):
    parser.add_argument("cfg", help="the Darknet .cfg of the weights")
    parser.add_argument("weights", help="the .weights file to cut (a full file, or a longer partial one)")
    parser.add_argument("out", help="output file; name it NAME.conv.N so that --weights knows it holds N layers")
    parser.add_argument("layers", type=int, help="N: how many layers (from the first) to keep")


def run(args) -> int:
    from pathlib import Path

    import torch

    from yolokit.errors import ConfigError
    from yolokit.models.cfg import read_cfg
    from yolokit.models.darknet import DarknetModel
    from yolokit.models.weights import load_weights, partial_layers, save_weights

    text = read_cfg(args.cfg)[0]
    model = DarknetModel(text, str(args.cfg), require_head=False)
    n = args.layers
    if not 0 < n <= len(model.layers):
        raise ConfigError(f"{args.cfg}: N={n} must be in 1..{len(model.layers)} (the cfg's layers)")
    named = partial_layers(args.out)
    if named is not None and named != n:
        raise ConfigError(f"{args.out}: the name says {named} layers but N={n}")
    with torch.no_grad():
        load_weights(model, args.weights, upto=n, exact=False)
    save_weights(model, args.out, upto=n, seen=0)
    size = Path(args.out).stat().st_size
    print(f"{args.out}: layers 0..{n - 1} of {args.weights} ({size:,} bytes, seen=0)")
    return 0
