"""Transfer learning: the model a training run starts from (:func:`build_train_model`), freezing its first
layers (:func:`freeze_layers`, :func:`set_train_mode`), re-using a pretrained detector's head for new classes,
and a prior initialisation for fresh heads.

``with_num_classes`` (yolokit.models) re-sizes the convolution that feeds each ``[yolo]``/``[region]`` head and
initialises it afresh. Two things make the new head train faster:

* :func:`keep_head_rows` -- the box (tx, ty, tw, th) and objectness rows of that convolution do not
  depend on the classes, so they are copied from the pretrained model, anchor by anchor. The fine-tuned model
  starts out finding "objects" where the pretrained one did and only has to learn which are the new class.
  A dataset class the pretrained model knows by name (:func:`class_map`: VOC's 20 classes are all among
  COCO's 80) keeps its class row too, so it is detected before the first update; the other class rows start
  at zero (probability 0.5).
* :func:`~yolokit.models.heads.prior_bias_init` -- for a head trained from scratch: objectness bias = logit(p) with a small prior p,
  so that the thousands of background predictions do not swamp the loss in the first updates (the "prior"
  initialisation of the focal-loss paper, Lin et al. 2017, sec. 4.1).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from yolokit.errors import ConfigError
from yolokit.models.heads import head_convs, prior_bias_init


#: one object, two spellings: Darknet's coco.names and VOC say the first, COCO's JSON the second
CLASS_SYNONYMS = {"airplane": "aeroplane", "motorcycle": "motorbike", "couch": "sofa", "tv": "tvmonitor"}


def class_key(name: str) -> str:
    """The name a class is matched by: lower case, letters and digits only, COCO's JSON spelling mapped to
    Darknet's (``"Dining Table"`` and ``"diningtable"``, ``"tv"`` and ``"tvmonitor"`` match)."""
    key = re.sub(r"[^0-9a-z]", "", str(name).lower())
    return CLASS_SYNONYMS.get(key, key)


def class_map(pretrained_names, names) -> dict[int, int]:
    """``{dataset class index: pretrained class index}`` for the dataset classes the pretrained model knows
    by name (:func:`class_key`); empty when either list is missing."""
    if not pretrained_names or not names:
        return {}
    known = {}
    for j, name in enumerate(pretrained_names):
        known.setdefault(class_key(name), j)
    return {i: known[class_key(n)] for i, n in enumerate(names) if class_key(n) in known}


def build_train_model(model: str, weights: str | None, class_names: list[str], keep_head: bool = True,
                      fetch_pretrained: bool = True, log=None) -> nn.Module:
    """The model to train: from a cfg (+ Darknet weights), a yolokit checkpoint or a torchvision backbone
    (``tv:resnet18`` ...), with its heads re-sized to the dataset's classes when they differ (the layers
    feeding the heads are then re-initialised, keeping the box/objectness rows and the rows of the classes
    the pretrained model knows by name when ``keep_head``, :func:`keep_head_rows`; every other layer keeps
    its weights; ``log``, a callable, gets one line saying what was kept). ``fetch_pretrained=False``: no
    torchvision download (a resumed run)."""
    from yolokit.models import load, with_num_classes

    if _tv_checkpoint(model) is not None:
        net = load(model)
        if net.num_classes != len(class_names):
            raise ConfigError(f"{model}: a {net.num_classes}-class torchvision-backbone checkpoint; the "
                              f"dataset has {len(class_names)} classes")
    elif str(model).startswith("tv:"):
        net = load(model, weights if fetch_pretrained else None, num_classes=len(class_names))
    else:
        net = load(model, weights)
        pretrained = weights is not None or not str(model).endswith(".cfg")
        old_names = getattr(net, "class_names", None)
        reordered = pretrained and old_names is not None and [class_key(n) for n in old_names] != \
            [class_key(n) for n in class_names]  # same count, other classes or another order
        if net.num_classes != len(class_names) or reordered:
            mapping = class_map(old_names, class_names)
            new = with_num_classes(net, len(class_names), class_names)
            if pretrained and keep_head and keep_head_rows(net, new, mapping):
                if log is not None:
                    log(transfer_line(mapping, len(class_names), net.class_names, class_names))
            else:
                prior_bias_init(new)
            net = new
        elif not pretrained:
            prior_bias_init(net)
    net.class_names = list(class_names)
    return net


def transfer_line(mapping: dict[int, int], n: int, pretrained_names, names) -> str:
    """What :func:`keep_head_rows` kept, in one line."""
    line = "head: box and objectness rows from the pretrained model"
    if not mapping:
        return line + f"; the {n} class row(s) start at zero (no dataset class among the pretrained names)"
    renamed = [f"{names[i]}<-{pretrained_names[j]}" for i, j in mapping.items() if names[i] != pretrained_names[j]]
    return (line + f"; {len(mapping)} of {n} classes keep their pretrained class row"
            + (f" ({', '.join(renamed)})" if renamed else "")
            + (f", {n - len(mapping)} start at zero" if len(mapping) < n else ""))


def _tv_checkpoint(path) -> str | None:
    """The ``tv_arch`` of a torchvision-backbone checkpoint at ``path``, else None."""
    from yolokit.models.checkpoint import load_checkpoint

    p = Path(str(path))
    if p.suffix not in (".pt", ".pth") or not p.is_file():
        return None
    return load_checkpoint(p).get("tv_arch")


def freeze_layers(model: nn.Module, n: int) -> list[str]:
    """Freeze the first ``n`` layers (``model.layers[:n]``): no gradients; pass ``n`` to :func:`set_train_mode`
    to keep their BatchNorm statistics fixed. Returns the frozen parameter names."""
    if n <= 0:
        return []
    layers = getattr(model, "layers", None)
    if layers is None:
        raise ConfigError(f"--freeze {n}: this model has no 'layers' list to freeze")
    frozen = []
    for i, layer in enumerate(layers[:n]):
        for name, p in layer.named_parameters():
            p.requires_grad_(False)
            frozen.append(f"layers.{i}.{name}")
    return frozen


def unfreeze_layers(model: nn.Module) -> None:
    """Undo :func:`freeze_layers` (second stage of the transfer-learning recipe: fine-tune everything)."""
    for p in model.parameters():
        p.requires_grad_(True)


def set_train_mode(model: nn.Module, frozen: int = 0) -> None:
    """``model.train()``, except the first ``frozen`` layers (:func:`freeze_layers`), which stay in eval mode so
    their BatchNorm running statistics do not move."""
    model.train()
    inner = model.module if hasattr(model, "module") else model  # DistributedDataParallel
    for layer in list(getattr(inner, "layers", []))[:frozen]:
        layer.eval()


@torch.no_grad()
def keep_head_rows(pretrained: nn.Module, new: nn.Module, mapping: dict[int, int] | None = None) -> int:
    """Copy the class-independent rows (box + objectness) of each head's feeding convolution from
    ``pretrained`` into ``new`` (same architecture, other class count), and the class rows ``mapping``
    names (:func:`class_map`: new class -> pretrained class); zero the other class rows of ``new``.
    Returns the number of heads transferred."""
    done = 0
    for (old_spec, old_conv), (spec, conv) in zip(head_convs(pretrained), head_convs(new)):
        a = spec.num_boxes
        if old_spec.num_boxes != a or old_conv.weight.shape[1:] != conv.weight.shape[1:]:
            continue
        c_old, c_new = old_spec.num_classes, spec.num_classes
        w_old = old_conv.weight.view(a, 5 + c_old, *old_conv.weight.shape[1:])
        w_new = conv.weight.view(a, 5 + c_new, *conv.weight.shape[1:])
        rows = _rows(mapping or {}, c_new, c_old)
        w_new[:, :5] = w_old[:, :5]
        w_new[:, 5:] = 0
        w_new[:, rows[0]] = w_old[:, rows[1]]
        if conv.bias is not None and old_conv.bias is not None:
            b_old, b_new = old_conv.bias.view(a, 5 + c_old), conv.bias.view(a, 5 + c_new)
            b_new[:, :5] = b_old[:, :5]
            b_new[:, 5:] = 0
            b_new[:, rows[0]] = b_old[:, rows[1]]
        done += 1
    return done


def _rows(mapping: dict[int, int], n_new: int, n_old: int) -> tuple[list[int], list[int]]:
    """The row indices (after the 5 box/objectness rows) of the mapped classes: ``(new rows, old rows)``."""
    pairs = sorted((i, j) for i, j in mapping.items() if 0 <= i < n_new and 0 <= j < n_old)
    return [5 + i for i, _ in pairs], [5 + j for _, j in pairs]
