"""Losses: zero/minimal at the encoded targets, larger away from them, trainable, empty targets."""

import pytest
import torch
from torch import nn

from yolokit.loss import YoloLoss, YoloV1Loss, build_loss, encode_anchor_targets, encode_grid

TINY_HEADS = [
    {"kind": "yolo", "anchors": [[81, 82], [135, 169], [344, 319]], "stride": 32, "num_classes": 3},
    {"kind": "yolo", "anchors": [[10, 14], [23, 27], [37, 58]], "stride": 16, "num_classes": 3},
]
TARGETS = torch.tensor([[0, 1, 40.0, 30.0, 90.0, 110.0],
                        [0, 2, 10.0, 100.0, 30.0, 120.0],
                        [1, 0, 5.0, 5.0, 150.0, 140.0]])


def _raw_from_encoded(encoded, big=30.0):
    """Raw outputs whose decoding equals the encoded targets: logit of the offsets, +-big objectness/classes."""
    raw = []
    for t in encoded:
        r = torch.empty_like(t)
        r[..., :2] = torch.logit(t[..., :2].clamp(1e-6, 1 - 1e-6))
        r[..., 2:4] = t[..., 2:4]
        r[..., 4:] = torch.where(t[..., 4:] > 0, big, -big)
        raw.append(r)
    return raw


@pytest.mark.parametrize("box_loss", ["mse", "giou", "ciou"])
def test_yolo_loss_minimal_at_encoded_targets(box_loss, device):
    loss = YoloLoss(TINY_HEADS, box_loss=box_loss)
    shapes = [(2, 3, 5, 5, 8), (2, 3, 10, 10, 8)]  # 160x160 input
    targets = TARGETS.to(device)
    encoded = encode_anchor_targets(shapes, loss, targets)
    assert sum(int(e[..., 4].sum()) for e in encoded) == len(TARGETS)
    raw = _raw_from_encoded(encoded)
    total, parts = loss(raw, targets)
    assert total.item() < 1e-4, parts
    torch.manual_seed(0)
    for _ in range(3):  # any perturbation costs more
        noisy = [r + 0.3 * torch.randn_like(r) for r in raw]
        assert loss(noisy, targets)[0].item() > total.item() + 1e-3


def test_yolo_v1_loss_zero_at_encoded_targets(device):
    targets = TARGETS.to(device)
    loss = YoloV1Loss(num_boxes=1, num_classes=3, img_size=(160, 160))
    encoded = encode_grid(targets, 2, 7, 1, 3, (160, 160))
    total, parts = loss([encoded.clone()], targets)
    assert total.item() < 1e-10, parts
    noisy = encoded + 0.05 * torch.randn_like(encoded)
    assert loss([noisy], targets)[0].item() > 1e-4


def test_yolo_v1_responsible_predictor_is_highest_iou():
    loss = YoloV1Loss(num_boxes=2, num_classes=3, img_size=(160, 160))
    targets = TARGETS[:1]
    enc = encode_grid(targets, 1, 7, 2, 3, (160, 160))
    pred = enc.clone()
    cell = enc[0, ..., 4].nonzero()[0]
    j, i = cell.tolist()
    pred[0, j, i, 0:5] = torch.tensor([0.0, 0.0, 0.05, 0.05, 0.0])  # predictor 0: far off, conf 0
    # predictor 1 equals the truth with conf 1 -> it is responsible, predictor 0 is "noobj" with conf 0
    total, parts = loss([pred], targets)
    assert total.item() < 1e-10, parts
    # swapping the confidences makes predictor 1 (still responsible) wrong and predictor 0 a false positive
    pred[0, j, i, 4], pred[0, j, i, 9] = 1.0, 0.0
    _, parts = loss([pred], targets)
    # hand-computed: obj (0 - IoU 1)^2 = 1; noobj 0.5 * 1^2 = 0.5 (one image in the batch)
    assert parts["obj"].item() == pytest.approx(1.0, rel=1e-5)
    assert parts["noobj"].item() == pytest.approx(0.5, rel=1e-5)


def test_v1_lambda_coord_weights_box_error():
    loss = YoloV1Loss(num_boxes=1, num_classes=3, img_size=(160, 160))
    enc = encode_grid(TARGETS[:1], 1, 7, 1, 3, (160, 160))
    j, i = enc[0, ..., 4].nonzero()[0].tolist()
    pred = enc.clone()
    pred[0, j, i, 0] += 0.1  # x off by 0.1 cell: box term 5 * 0.01
    _, parts = loss([pred], TARGETS[:1])
    assert parts["box"].item() == pytest.approx(5 * 0.01, rel=1e-5)


class _TinyNet(nn.Module):
    """Three convs to two heads: enough capacity to fit one batch."""

    def __init__(self, outs):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.LeakyReLU(0.1), nn.Conv2d(16, 32, 3, 2, 1),
                                  nn.LeakyReLU(0.1), nn.Conv2d(32, 32, 3, 2, 1), nn.LeakyReLU(0.1))
        self.p16 = nn.Sequential(nn.Conv2d(32, 32, 3, 2, 1), nn.LeakyReLU(0.1), nn.Conv2d(32, outs, 1))
        self.p32 = nn.Sequential(nn.Conv2d(32, 32, 3, 4, 1), nn.LeakyReLU(0.1), nn.Conv2d(32, outs, 1))

    def forward(self, x):
        f = self.body(x)
        return [self.p32(f), self.p16(f)]


@pytest.mark.parametrize("box_loss", ["mse", "ciou"])
def test_yolo_loss_decreases_on_one_batch(box_loss):
    torch.manual_seed(0)
    net = _TinyNet(3 * 8)
    loss = YoloLoss(TINY_HEADS, box_loss=box_loss)
    x = torch.rand(2, 3, 160, 160)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    history = []
    for _ in range(60):
        outs = [o.view(2, 3, 8, *o.shape[-2:]).permute(0, 1, 3, 4, 2) for o in net(x)]
        total, _ = loss(outs, TARGETS)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(total.item())
    assert history[-1] < 0.2 * history[0]


def test_yolo_v1_loss_decreases_on_one_batch():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, 4, 1), nn.LeakyReLU(0.1), nn.Conv2d(16, 32, 3, 4, 1),
                        nn.LeakyReLU(0.1), nn.AdaptiveAvgPool2d(7), nn.Conv2d(32, 2 * 5 + 3, 1))
    loss = YoloV1Loss(num_boxes=2, num_classes=3, img_size=(160, 160))
    x = torch.rand(2, 3, 160, 160)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    history = []
    for _ in range(60):
        total, _ = loss([net(x).permute(0, 2, 3, 1)], TARGETS)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(total.item())
    assert history[-1] < 0.3 * history[0]


def test_empty_targets_give_only_negative_objectness(device):
    torch.manual_seed(0)
    raw = [torch.randn(2, 3, 5, 5, 8, device=device, requires_grad=True),
           torch.randn(2, 3, 10, 10, 8, device=device, requires_grad=True)]
    total, parts = YoloLoss(TINY_HEADS)(raw, torch.zeros((0, 6), device=device))
    assert torch.isfinite(total) and parts["box"] == 0 and parts["cls"] == 0 and parts["obj"] == 0
    assert parts["noobj"] > 0
    total.backward()
    assert all(torch.isfinite(r.grad).all() for r in raw)
    v1 = torch.randn(2, 7, 7, 13, device=device, requires_grad=True)
    total, parts = YoloV1Loss(2, 3, (160, 160))([v1], torch.zeros((0, 6), device=device))
    assert torch.isfinite(total) and parts["box"] == 0 and parts["noobj"] > 0
    total.backward()


def test_ignore_thresh_drops_negatives_that_overlap_a_truth():
    # Two anchors per cell, 32x32 and 36x36. The truth (32x32, centred in cell (1, 1)) goes to anchor 0;
    # anchor 1 of the same cell decodes to a 36x36 box on the same centre: IoU 1024/1296 = 0.79.
    heads = [{"kind": "yolo", "anchors": [[32, 32], [36, 36]], "stride": 32, "num_classes": 1}]
    raw = torch.zeros(1, 2, 3, 3, 6)  # logit 0 everywhere: centred boxes of anchor size, objectness 0.5
    targets = torch.tensor([[0, 0, 32.0, 32.0, 64.0, 64.0]])
    _, strict = YoloLoss(heads, ignore_thresh=1.0)([raw], targets)
    _, loose = YoloLoss(heads, ignore_thresh=0.5)([raw], targets)
    log2 = torch.log(torch.tensor(2.0)).item()
    assert strict["noobj"].item() == pytest.approx(17 * log2, rel=1e-5)  # 18 slots - 1 responsible
    assert loose["noobj"].item() == pytest.approx(16 * log2, rel=1e-5)  # ... - 1 ignored


def test_region_head_uses_softmax_cross_entropy():
    heads = [{"kind": "region", "anchors": [[40, 40], [100, 100]], "stride": 32, "num_classes": 3}]
    loss = build_loss(heads)
    raw = torch.zeros(1, 2, 5, 5, 8)
    _, parts = loss([raw], torch.tensor([[0, 2, 10.0, 10.0, 50.0, 50.0]]))
    # uniform logits over 3 classes: cross-entropy = log 3 (BCE would give 3 * log 2)
    assert parts["cls"].item() == pytest.approx(torch.log(torch.tensor(3.0)).item(), rel=1e-5)


def test_build_loss_dispatch():
    assert isinstance(build_loss(TINY_HEADS, box_loss="giou"), YoloLoss)
    v1 = build_loss([{"kind": "detection", "num_boxes": 2, "num_classes": 20}], img_size=(448, 448))
    assert isinstance(v1, YoloV1Loss) and v1.lambda_coord == 5 and v1.lambda_noobj == 0.5
    with pytest.raises(ValueError):
        build_loss([{"kind": "softmax"}])


@pytest.mark.parametrize("cfg,size", [("configs/models/yolov2-tiny.cfg", 96), ("configs/models/yolov3-tiny.cfg", 96),
                                      ("configs/models/yolo-lite.cfg", 96), ("configs/train/yolov1-overfit.cfg", 224)])
def test_shipped_cfgs_train_outputs_fit_their_loss(cfg, size):
    """Every head kind the models build ([region], [yolo], [detection]) trains through build_loss."""
    from pathlib import Path

    from yolokit.models import load

    root = Path(__file__).resolve().parents[2]
    torch.manual_seed(0)
    model = load(root / cfg).train()
    outs = model(torch.rand(2, 3, size, size))
    loss = build_loss(model.heads, img_size=(size, size))
    targets = torch.tensor([[0, 0, 10.0, 12.0, 60.0, 80.0], [1, 0, 30.0, 5.0, 90.0, 40.0]])
    total, parts = loss(outs, targets)
    assert torch.isfinite(total) and parts["box"] > 0 and parts["obj"] > 0
    total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_region_rescore_and_darknet_scales():
    # Anchor 40x40 in cell (1, 1) decodes (logits 0) to (28, 28, 68, 68); the truth (32, 32, 64, 64) overlaps it
    # with IoU 32^2 / 40^2 = 0.64, which becomes the objectness target under rescore=1, weighted by object_scale.
    heads = [{"kind": "region", "anchors": [[40, 40]], "stride": 32, "num_classes": 2,
              "options": {"rescore": "1", "object_scale": "5", "noobject_scale": "1"}}]
    raw = torch.zeros(1, 1, 3, 3, 7)
    raw[0, 0, 1, 1, 4] = 1.0
    _, parts = build_loss(heads)([raw], torch.tensor([[0, 1, 32.0, 32.0, 64.0, 64.0]]))
    t, s = 0.64, torch.sigmoid(torch.tensor(1.0)).item()
    expected = -(t * torch.log(torch.tensor(s)) + (1 - t) * torch.log(torch.tensor(1 - s))).item()
    assert parts["obj"].item() == pytest.approx(5 * expected, rel=1e-4)


NEW_HEADS = [dict(h, new_coords=True, scale_x_y=2.0) for h in TINY_HEADS]


def _probs_from_encoded(loss, encoded):
    """new_coords raw values (probabilities) whose decoding equals the encoded targets: v_xy with
    2 v - 0.5 = offset, v_wh = sqrt(exp(log(truth/anchor)) / 4), objectness/classes 1 or 0."""
    raw = []
    for t, head in zip(encoded, loss.heads):
        r = torch.empty_like(t)
        r[..., :2] = (t[..., :2] + 0.5) / 2
        r[..., 2:4] = torch.sqrt(torch.exp(t[..., 2:4]) / 4)
        r[..., 4:] = (t[..., 4:] > 0).float()
        raw.append(r)
    return raw


@pytest.mark.parametrize("box_loss", ["mse", "ciou"])
def test_new_coords_loss_minimal_at_encoded_targets(box_loss):
    """Scaled-YOLOv4 / YOLOv7 heads: values are probabilities, wh = (2v)^2 * anchor, no exp."""
    loss = YoloLoss(NEW_HEADS, box_loss=box_loss)
    assert all(h.new_coords for h in loss.heads)
    shapes = [(2, 3, 5, 5, 8), (2, 3, 10, 10, 8)]
    encoded = encode_anchor_targets(shapes, loss, TARGETS)
    raw = _probs_from_encoded(loss, encoded)
    total, parts = loss(raw, TARGETS)
    assert total.item() < 1e-3, parts
    torch.manual_seed(0)
    noisy = [(r + 0.05 * torch.randn_like(r)).clamp(0.01, 0.99) for r in raw]
    assert loss(noisy, TARGETS)[0].item() > total.item() + 1e-2


def test_cfg_training_keys_are_the_loss_defaults_and_arguments_win():
    heads = [dict(h, iou_loss="ciou", iou_normalizer="0.07", cls_normalizer="0.5", obj_normalizer="2",
                  iou_thresh="0.213", label_smooth_eps="0.1") for h in TINY_HEADS]
    loss = YoloLoss(heads)
    assert (loss.box_loss, loss.lambda_box, loss.lambda_cls, loss.lambda_obj, loss.lambda_noobj) == \
        ("ciou", 0.07, 0.5, 2.0, 2.0)
    assert loss.iou_thresh == 0.213 and loss.label_smooth == 0.1
    assert loss.sources["lambda_box"] == "cfg [yolo] iou_normalizer"
    mine = YoloLoss(heads, box_loss="giou", lambda_box=1.0)
    assert mine.box_loss == "giou" and mine.lambda_box == 1.0 and mine.sources["box_loss"] == "argument"
    plain = YoloLoss(TINY_HEADS)
    assert plain.box_loss == "mse" and plain.sources["lambda_cls"] == "default"


def test_real_new_coords_model_trains_one_step(shared):
    """yolov7-tiny from the zoo: train-mode outputs are probabilities and the loss backpropagates."""
    from yolokit.models.cfg import read_cfg
    from yolokit.models.darknet import DarknetModel, with_num_classes
    from yolokit.models.zoo import set_net_size_text

    text = set_net_size_text(read_cfg(shared / "darknet_cfgs" / "yolov7-tiny.cfg")[0], 128, 128)
    model = with_num_classes(DarknetModel(text, "yolov7-tiny"), 3).train()
    outs = model(torch.rand(2, 3, 128, 128))
    assert all(0 <= o.min() and o.max() <= 1 for o in outs)
    loss = build_loss(model.heads)
    assert loss.box_loss == "ciou" and loss.lambda_box == 0.05 and all(h.new_coords for h in loss.heads)
    total, _ = loss(outs, TARGETS[:, :] * torch.tensor([1, 1, 0.8, 0.8, 0.8, 0.8]))
    total.backward()
    assert torch.isfinite(total) and model.layers[0].conv.weight.grad.abs().sum() > 0
