"""The Darknet model zoo as a whole: which cfgs of a folder load, their size and cost, and random weights for
parity checks against another importer (OpenCV's ``cv2.dnn.readNetFromDarknet``).

``yolokit info --zoo DIR`` prints :func:`survey`; ``tests/models/test_zoo.py`` runs the parity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from yolokit.errors import ConfigError


@dataclass
class ZooRow:
    """One cfg of a zoo folder: ``kind`` is ``'detector'``, ``'backbone'`` (no detection layer) or ``'-'``."""

    name: str
    loads: bool
    kind: str
    heads: str
    bflops: float
    params: int
    input_hw: tuple[int, int]
    reason: str = ""


def set_net_size_text(text: str, height: int, width: int) -> str:
    """The cfg text with ``[net]`` ``width``/``height`` replaced in place: every other line (comments included)
    keeps its number, so errors and OpenCV read the same file."""
    lines = text.splitlines()
    in_net, done = False, set()
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("["):
            if in_net:
                break
            in_net = s.lower() in ("[net]", "[network]")
            continue
        m = re.match(r"\s*(width|height)\s*=", line)
        if in_net and m and m.group(1) not in done:  # Darknet reads the first of a repeated key
            lines[i] = f"{m.group(1)}={width if m.group(1) == 'width' else height}"
            done.add(m.group(1))
    return "\n".join(lines) + "\n"


def build(path: str | Path, imgsz: tuple[int, int] | None = None, device="meta"):
    """A :class:`~yolokit.models.DarknetModel` for any zoo cfg (a classifier builds as a backbone); on the meta
    device by default, so that nothing is allocated."""
    from yolokit.models.cfg import read_cfg
    from yolokit.models.darknet import DarknetModel

    text = read_cfg(path)[0]
    if imgsz is not None:
        text = set_net_size_text(text, *imgsz)
    with torch.device(device):
        return DarknetModel(text, str(path), require_head=False)


def random_model(text: str, source: str = "<cfg>", seed: int = 0, require_head: bool = True):
    """A :class:`~yolokit.models.DarknetModel` with :func:`randomize_` weights, in eval mode, built without
    torch's default initialisation (allocated on the meta device, then given memory): half the time for the
    100M-parameter zoo models."""
    from yolokit.models.darknet import DarknetModel

    with torch.device("meta"):
        model = DarknetModel(text, source, require_head=require_head)
    model.to_empty(device="cpu")
    from yolokit.models.builders import build_head

    for spec in model.heads:  # to_empty left the heads' anchor buffers unset: build the (tiny) heads again
        info = model.infos[spec.layer]
        model.layers[spec.layer] = build_head(model.sections[spec.layer + 1], spec.layer, info.in_shape,
                                              model.input_size)[0]
    return randomize_(model, seed).eval()


def survey(folder: str | Path) -> list[ZooRow]:
    """Every ``*.cfg`` of ``folder``: does it load, its BFLOPs (Darknet's convention) at its own size, its
    parameters, or the one-line reason it does not load."""
    rows = []
    for path in sorted(Path(folder).glob("*.cfg")):
        try:
            model = build(path)
        except ConfigError as exc:
            reason = str(exc).replace(str(path), path.name, 1)
            rows.append(ZooRow(path.name, False, "-", "", 0.0, 0, (0, 0), reason))
            continue
        heads = ",".join(sorted({h.kind for h in model.heads}))
        rows.append(ZooRow(path.name, True, "detector" if model.heads else "backbone", heads,
                           model.flops() / 1e9, sum(p.numel() for p in model.parameters()), model.input_size))
    return rows


def max_stride(model) -> int:
    """The largest input-to-feature downsampling of ``model``'s layers (the input must be a multiple of it)."""
    h = model.input_size[0]
    return max(int(round(h / i.out_shape[1])) for i in model.infos if i.out_shape[1] > 1)


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights that keep activations in a useful range through deep nets (for parity checks): conv and
    fully connected weights ~ N(0, 1/fan_in), batch-norm scales ~ U(0.5, 1), shifts and means ~ N(0, 0.1),
    variances ~ U(0.5, 1.5). Deterministic for a seed. In place; returns ``model``."""
    from yolokit.models.layers import Local

    g = torch.Generator().manual_seed(seed)

    def normal(t, std):
        t.copy_(torch.randn(t.shape, generator=g).mul_(std))

    def uniform(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=g).mul_(hi - lo).add_(lo))

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            normal(m.weight, m.weight[0].numel() ** -0.5)
            if m.bias is not None:
                normal(m.bias, 0.1)
        elif isinstance(m, Local):
            normal(m.weight, m.weight.shape[-1] ** -0.5)
            normal(m.bias, 0.1)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            uniform(m.weight, 0.5, 1.0)
            normal(m.bias, 0.1)
            normal(m.running_mean, 0.1)
            uniform(m.running_var, 0.5, 1.5)
    return model
