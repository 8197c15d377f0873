"""torchvision backbones under a YOLOv3-tiny-style neck and two ``[yolo]`` heads (strides 16 and 32).

The lectures' transfer-learning recipe: take a network pretrained on ImageNet (ResNet, MobileNet), freeze the
feature extractor and train a new head, then fine-tune everything at a lower learning rate. Here:

    model = build_tv_detector("resnet18", num_classes=1, pretrained="DEFAULT")   # ImageNet weights
    yolokit train --model tv:resnet18 --weights DEFAULT --freeze 5 --freeze-epochs 10 ...

The detector follows the model contract of :mod:`yolokit.models`: input RGB in [0, 1] (ImageNet mean/std
normalisation happens inside), train mode returns raw ``(B, A, H, W, 5+C)`` per head, eval mode decoded
``(B, N, 5+C)``; ``heads`` lists :class:`~yolokit.models.heads.HeadSpec`. ``layers`` holds the backbone
stages first (so ``--freeze N`` freezes the first N stages), then the neck and heads.
Neck (as yolov3-tiny): C5 -> 1x1 256 -> 3x3 512 -> 1x1 prediction (stride 32); the 256 map -> 1x1 128 -> x2
upsample -> concat C4 -> 3x3 256 -> 1x1 prediction (stride 16). Anchors: yolov3-tiny's six COCO anchors.
"""

from __future__ import annotations

import torch
from torch import nn

from yolokit.errors import ConfigError, WeightsError
from yolokit.models.base import Detector
from yolokit.models.fastpath import Optimizable

TINY_ANCHORS = [(10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319)]
BACKBONES = ("resnet18", "resnet34", "resnet50", "mobilenet_v3_large", "mobilenet_v3_small")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _Normalize(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std


def _conv(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, 1, k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.1, inplace=True))


class _Pred(nn.Module):
    """The 1x1 prediction conv; named ``conv`` like a Darknet ``[convolutional]`` so transfer helpers find it."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.conv(x)


def _stages(name: str, pretrained):
    """Backbone stages (nn.Modules applied in sequence) and the indices of the stride-16 and stride-32 stages."""
    import torchvision

    weights = None
    if pretrained:
        try:
            weights = torchvision.models.get_model_weights(name)[pretrained] if pretrained != "DEFAULT" \
                else torchvision.models.get_model_weights(name).DEFAULT
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"tv:{name}: unknown torchvision weights {pretrained!r} ({exc})") from None
    try:
        net = torchvision.models.get_model(name, weights=weights)
    except (OSError, RuntimeError) as exc:  # no internet and not in the torch hub cache
        raise WeightsError(f"tv:{name}: cannot get torchvision weights {pretrained!r} ({exc}); put them in the "
                           f"torch hub cache ($TORCH_HOME) or train without --weights") from None
    if name.startswith("resnet"):
        stem = nn.Sequential(_Normalize(), net.conv1, net.bn1, net.relu, net.maxpool)
        return [stem, net.layer1, net.layer2, net.layer3, net.layer4], 3, 4
    feats = net.features
    # The last block of each resolution: stride 16 ends before the first stride-2 block of the last stage.
    down = [i for i, m in enumerate(feats) if _is_stride2(m)]
    c4_end = down[-1]  # blocks [.., c4_end) run at stride 16
    stages = [nn.Sequential(_Normalize(), *feats[:c4_end]), nn.Sequential(*feats[c4_end:])]
    return stages, 0, 1


def _is_stride2(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) and m.stride == (2, 2) for m in module.modules())


class TvYolo(Optimizable, Detector):
    """A torchvision backbone + YOLOv3-tiny neck + two ``[yolo]`` heads; see the module docstring."""

    def __init__(self, name: str, num_classes: int, pretrained=None, anchors=TINY_ANCHORS):
        super().__init__()
        from yolokit.models.heads import HeadSpec, YoloHead

        if name not in BACKBONES:
            raise ConfigError(f"tv:{name}: unknown backbone (known: {', '.join(BACKBONES)})")
        stages, self.c4_index, self.c5_index = _stages(name, pretrained)
        c4_ch, c5_ch = self._channels(stages)
        na = 3
        out = na * (5 + num_classes)
        neck5 = nn.Sequential(_conv(c5_ch, 256, 1))
        branch5 = _conv(256, 512, 3)
        pred5 = _Pred(512, out)
        head5 = YoloHead(list(anchors[3:]), num_classes)
        up = nn.Sequential(_conv(256, 128, 1), nn.Upsample(scale_factor=2, mode="nearest"))
        branch4 = _conv(128 + c4_ch, 256, 3)
        pred4 = _Pred(256, out)
        head4 = YoloHead(list(anchors[:3]), num_classes)
        self.layers = nn.ModuleList([*stages, neck5, branch5, pred5, head5, up, branch4, pred4, head4])
        n = len(stages)
        self.heads = [
            HeadSpec("yolo", n + 3, num_classes, list(anchors[3:]), (32.0, 32.0), (0, 0), 1.0, na, {}),
            HeadSpec("yolo", n + 7, num_classes, list(anchors[:3]), (16.0, 16.0), (0, 0), 1.0, na, {}),
        ]
        self.backbone_name = name
        self.num_stages = n
        self.class_names: list[str] | None = None
        self.cfg_text = None  # not a Darknet model: checkpoints record ``tv_arch`` instead
        self.tv_arch = {"backbone": name, "num_classes": num_classes}
        self.input_size = (416, 416)  # the default network size (any multiple of 32 works)
        self.settings: dict = {}

    @staticmethod
    @torch.no_grad()
    def _channels(stages) -> tuple[int, int]:
        x = torch.zeros(1, 3, 64, 64)
        outs = []
        was = [s.training for s in stages]
        for s in stages:
            s.eval()
            x = s(x)
            outs.append(x.shape[1])
        for s, w in zip(stages, was):
            s.train(w)
        return outs[-2], outs[-1]

    def forward(self, x):
        hw = (x.shape[2], x.shape[3])
        feats = []
        for stage in self.layers[: self.num_stages]:
            x = stage(x)
            feats.append(x)
        c4, c5 = feats[-2], feats[-1]
        n = self.num_stages
        neck5, branch5, pred5, head5, up, branch4, pred4, head4 = self.layers[n:]
        p5 = neck5(c5)
        out5 = head5(pred5(branch5(p5)), hw)
        out4 = head4(pred4(branch4(torch.cat((up(p5), c4), 1))), hw)
        return [out5, out4] if self.training else torch.cat((out5, out4), 1)


def build_tv_detector(name: str, num_classes: int, pretrained=None) -> TvYolo:
    """``pretrained``: None (random init, no download) or a torchvision weights name (``"DEFAULT"``,
    ``"IMAGENET1K_V1"`` ...)."""
    from yolokit.models.heads import prior_bias_init

    model = TvYolo(name, num_classes, pretrained)
    prior_bias_init(model)
    return model
