"""Schedules, EMA, checkpoints, freezing, head transfer and torchvision backbones (no training loop)."""

import math

import pytest
import torch
from torch import nn

from yolokit.engine import BurnInSchedule, ModelEMA
from yolokit.models import load_checkpoint, save_checkpoint
from yolokit.settings import TrainConfig
from yolokit.engine.optim import build_optimizer
from yolokit.models.transfer import freeze_layers
from yolokit.errors import ConfigError, WeightsError
from tests.conftest import ROOT


def _opt(lr=0.1):
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)


def test_burn_in_is_darknet_power_4_then_cosine():
    opt = _opt(0.1)
    sched = BurnInSchedule(opt, total_steps=100, kind="cosine", burn_in=10, final=0.0)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    # update it (0-based) during burn-in: lr * ((it + 1) / burn_in) ** 4 * cosine(it)
    assert lrs[0] == pytest.approx(0.1 * (1 / 10) ** 4)
    assert lrs[4] == pytest.approx(0.1 * (5 / 10) ** 4 * 0.5 * (1 + math.cos(math.pi * 4 / 100)))
    assert lrs[50] == pytest.approx(0.1 * 0.5)  # half way down the cosine
    assert lrs[-1] < 0.001 and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_step_schedule_and_state_dict():
    opt = _opt(1.0)
    sched = BurnInSchedule(opt, total_steps=10, kind="step", steps=(0.5, 0.8), scale=0.1)
    seen = []
    for _ in range(10):
        seen.append(round(opt.param_groups[0]["lr"], 6))
        sched.step()
    assert seen == [1.0] * 5 + [0.1] * 3 + [0.01] * 2
    opt2 = _opt(1.0)
    sched2 = BurnInSchedule(opt2, total_steps=10, kind="step", steps=(0.5, 0.8), scale=0.1)
    sched2.load_state_dict({"it": 6})
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        BurnInSchedule(_opt(), 10, kind="poly")


def test_ema_tracks_weights_with_ramped_decay():
    model = nn.Linear(2, 1)
    ema = ModelEMA(model, decay=0.9, tau=1.0)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(1.0)
    start = ema.module.weight.clone()
    ema.update(model)
    d = 0.9 * (1 - math.exp(-1))
    torch.testing.assert_close(ema.module.weight, start * d + (1 - d))
    for _ in range(200):
        ema.update(model)
    torch.testing.assert_close(ema.module.weight, torch.ones_like(start), atol=1e-6, rtol=0)
    state = ema.state_dict()
    other = ModelEMA(nn.Linear(2, 1))
    other.load_state_dict(state)
    assert other.updates == 201
    torch.testing.assert_close(other.module.bias, ema.module.bias)


def test_checkpoint_is_atomic_and_weights_only(tmp_path):
    from yolokit.models import build_model, config_path

    net = build_model(config_path("yolo-lite").read_text())
    path = tmp_path / "last.pt"
    assert save_checkpoint(net, path, epoch=1) == path
    assert load_checkpoint(path)["epoch"] == 1
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind

    class Bomb:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_checkpoint(net, path, x=Bomb())
    assert load_checkpoint(path)["epoch"] == 1  # the previous checkpoint survived the failed write
    assert list(tmp_path.iterdir()) == [path]
    # a pickled object that is not plain data is refused by weights_only loading
    torch.save({"model": {}, "cfg": nn.Linear(1, 1)}, tmp_path / "code.pt")
    with pytest.raises(WeightsError):
        load_checkpoint(tmp_path / "code.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="bad.pt"):
        load_checkpoint(tmp_path / "bad.pt")


def test_optimizer_groups_decay_only_weights():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))
    cfg = TrainConfig(model="x", data="y", weight_decay=1e-3)
    opt = build_optimizer(model, cfg)
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    assert decayed == {id(model[0].weight), id(model[2].weight)}
    assert opt.param_groups[1]["weight_decay"] == 0 and len(opt.param_groups[1]["params"]) == 4
    assert isinstance(build_optimizer(model, TrainConfig(model="x", data="y", optimizer="adamw")),
                      torch.optim.AdamW)
    with pytest.raises(ConfigError):
        build_optimizer(model, TrainConfig(model="x", data="y", optimizer="lion"))


def test_config_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="lr0"):
        TrainConfig.from_dict({"model": "m", "data": "d", "lr0": 0.01})


def test_freeze_first_layers(shared):
    from yolokit.models import load

    model = load(shared / "yolov3_tiny_darknet" / "yolov3-tiny.cfg")
    frozen = freeze_layers(model, 4)
    assert frozen and all(name.split(".")[1] in {"0", "1", "2", "3"} for name in frozen)
    assert not any(p.requires_grad for p in model.layers[2].parameters())
    assert all(p.requires_grad for p in model.layers[4].parameters())


def test_head_transfer_keeps_box_and_objectness(shared):
    from yolokit.models.transfer import keep_head_rows
    from yolokit.models import load, with_num_classes

    d = shared / "yolov3_tiny_darknet"
    coco = load(d / "yolov3-tiny.cfg", d / "yolov3-tiny.weights")
    one = with_num_classes(coco, 1)
    assert keep_head_rows(coco, one) == 2
    for spec in coco.heads:
        w_old = coco.layers[spec.layer - 1].conv.weight.view(3, 85, -1)
        w_new = one.layers[spec.layer - 1].conv.weight.view(3, 6, -1)
        torch.testing.assert_close(w_new[:, :5], w_old[:, :5])
        assert w_new[:, 5:].abs().sum() == 0
    # the box/objectness outputs of the two models agree on a real image
    x = torch.rand(1, 3, 128, 128)
    a, b = coco.eval()(x), one.eval()(x)
    torch.testing.assert_close(b[..., :5], a[..., :5])


def test_class_names_match_across_spellings():
    from yolokit.models.transfer import class_map

    coco_json = ["person", "airplane", "motorcycle", "couch", "dining table", "potted plant", "tv"]
    voc = ["aeroplane", "diningtable", "motorbike", "pottedplant", "sofa", "tvmonitor", "raccoon", "Person"]
    assert class_map(coco_json, voc) == {0: 1, 1: 4, 2: 2, 3: 5, 4: 3, 5: 6, 7: 0}
    assert class_map(None, voc) == {} and class_map(coco_json, []) == {}


def test_voc_classes_start_from_coco_class_rows(shared):
    """VOC's 20 classes are among COCO's 80: a 20-class head made from the COCO model keeps their class rows,
    so it detects VOC objects before any training (AP50 about 0.50 on voc2012_rodm; with the class rows at zero,
    as for classes the pretrained model does not know, it is about 0.00)."""
    from yolokit.data import load_dataset
    from yolokit.eval import evaluate_model
    from yolokit.models import load, with_num_classes
    from yolokit.models.transfer import build_train_model, keep_head_rows

    d = shared / "yolov3_tiny_darknet"
    ds = load_dataset(ROOT / "configs" / "data" / "voc2012_rodm.yaml", "val", decode=True)
    ds.records = ds.records[:40]
    lines = []
    mapped = build_train_model(str(d / "yolov3-tiny.cfg"), str(d / "yolov3-tiny.weights"), ds.class_names,
                               log=lines.append).eval()
    assert lines == ["head: box and objectness rows from the pretrained model; 20 of 20 classes keep their "
                     "pretrained class row"]
    coco = load(d / "yolov3-tiny.cfg", d / "yolov3-tiny.weights").eval()
    zero = with_num_classes(coco, 20, ds.class_names)
    keep_head_rows(coco, zero, {})
    settings = {"imgsz": 320, "conf": 0.005, "iou": 0.45, "metrics": ["voc"]}
    ap_mapped = evaluate_model(mapped, ds, **settings)["voc"]
    ap_zero = evaluate_model(zero.eval(), ds, **settings)["voc"]
    assert ap_mapped > 0.3 > 0.05 > ap_zero, (ap_mapped, ap_zero)
    # the dog row of the 20-class head is COCO's dog row
    dog_voc, dog_coco = ds.class_names.index("dog"), coco.class_names.index("dog")
    for spec in coco.heads:
        w_old = coco.layers[spec.layer - 1].conv.weight.view(3, 85, -1)
        w_new = mapped.layers[spec.layer - 1].conv.weight.view(3, 25, -1)
        torch.testing.assert_close(w_new[:, 5 + dog_voc], w_old[:, 5 + dog_coco])


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_torchvision_backbone_detector_trains_without_weights(name):
    from yolokit.models.tv import build_tv_detector
    from yolokit.loss import build_loss

    torch.manual_seed(0)
    model = build_tv_detector(name, num_classes=2)
    model.train()
    outs = model(torch.rand(2, 3, 96, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 3, 3, 3, 7), (2, 3, 6, 6, 7)]
    loss, _ = build_loss(model.heads)(outs, torch.tensor([[0, 1, 10.0, 20.0, 60.0, 90.0]]))
    loss.backward()
    assert next(model.layers[0].parameters()).grad is not None  # gradients reach the backbone
    model.eval()
    assert tuple(model(torch.rand(1, 3, 96, 96)).shape) == (1, 3 * (9 + 36), 7)
    assert freeze_layers(model, 2)  # backbone stages come first


def test_torchvision_backbone_unknown_name():
    from yolokit.models.tv import build_tv_detector

    with pytest.raises(ConfigError, match="vgg"):
        build_tv_detector("vgg16", 1)


def test_lr_scale_for_the_fine_tune_stage_survives_state_dict():
    opt = _opt(1.0)
    sched = BurnInSchedule(opt, total_steps=10, kind="constant")
    sched.set_lr_scale(0.1)
    sched.set_lr_scale(0.1)  # idempotent: a resumed run re-applies it
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    opt2 = _opt(1.0)
    other = BurnInSchedule(opt2, total_steps=10, kind="constant")
    other.load_state_dict(sched.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.1)


def test_same_class_count_in_another_order_moves_the_class_rows(shared):
    """A dataset with the pretrained model's classes in another order (or other classes, same count) gets a head
    whose class rows follow the dataset's names, not the pretrained model's order."""
    from yolokit.models import load
    from yolokit.models.transfer import build_train_model

    d = shared / "yolov3_tiny_darknet"
    coco = load(d / "yolov3-tiny.cfg", d / "yolov3-tiny.weights")
    names = list(reversed(coco.class_names))
    lines = []
    flipped = build_train_model(str(d / "yolov3-tiny.cfg"), str(d / "yolov3-tiny.weights"), names, log=lines.append)
    assert "80 of 80 classes keep their pretrained class row" in lines[0]
    for spec in coco.heads:
        w_old = coco.layers[spec.layer - 1].conv.weight.view(3, 85, -1)
        w_new = flipped.layers[spec.layer - 1].conv.weight.view(3, 85, -1)
        torch.testing.assert_close(w_new[:, 5:], w_old[:, 5:].flip(1))
        torch.testing.assert_close(w_new[:, :5], w_old[:, :5])
    same = build_train_model(str(d / "yolov3-tiny.cfg"), str(d / "yolov3-tiny.weights"), coco.class_names,
                             log=lines.append)
    assert len(lines) == 1  # the pretrained order: the head is kept as it is
    torch.testing.assert_close(same.state_dict()["layers.15.conv.weight"], coco.state_dict()["layers.15.conv.weight"])
