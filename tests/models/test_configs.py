"""The shipped architectures (configs/models): published FLOPs, structure from the papers, `yolokit info`."""

import pytest
import torch

from yolokit.cli.info import summary
from yolokit.models import build_model, config_path


def meta_model(name: str, imgsz=None):
    return summary(name, imgsz)[0]


@pytest.mark.parametrize("name, imgsz, bflops", [
    ("yolov3-tiny", None, 5.56),      # Darknet project page, 416x416
    ("yolov3", None, 65.86),          # YOLOv3 paper / Darknet, 416x416
    ("yolov2", (608, 608), 62.94),    # Darknet project page, YOLOv2 608x608
    ("yolov2-tiny", None, 5.41),      # Darknet project page, Tiny YOLO (COCO)
])
def test_published_flops(name, imgsz, bflops):
    assert round(meta_model(name, imgsz).flops() / 1e9, 2) == bflops


def test_yolov1_is_the_paper_network():
    m = meta_model("yolov1")
    kinds = [i.kind for i in m.infos]
    assert kinds.count("convolutional") == 24 and kinds.count("connected") == 2
    assert m.input_size == (448, 448)
    fc = [i for i in m.infos if i.kind == "connected"]
    assert [i.out_shape[0] for i in fc] == [4096, 7 * 7 * 30]
    (head,) = m.heads
    assert (head.kind, head.grid, head.num_boxes, head.num_classes) == ("detection", (7, 7), 2, 20)
    assert max(i.out_shape[0] for i in m.infos if i.kind == "convolutional") == 1024


def test_yolov2_has_passthrough_and_five_anchors():
    m = meta_model("yolov2")
    reorg = next(i for i in m.infos if i.kind == "reorg")
    assert reorg.in_shape == (64, 26, 26) and reorg.out_shape == (256, 13, 13)
    assert [i.kind for i in m.infos[:23]].count("convolutional") == 18      # Darknet-19 minus its classifier
    (head,) = m.heads
    assert head.kind == "region" and head.num_boxes == 5 and head.stride == (32, 32)


def test_yolov3_is_darknet53_with_three_scales():
    m = meta_model("yolov3")
    assert len(m.infos) == 107
    assert [i.kind for i in m.infos[:75]].count("shortcut") == 23        # 1+2+8+8+4 residual blocks
    assert [h.grid for h in m.heads] == [(13, 13), (26, 26), (52, 52)]
    assert all(h.num_boxes == 3 for h in m.heads)


def test_yolo_lite_is_a_small_cpu_model():
    m = meta_model("yolo-lite")
    assert not any("bn" in i.detail for i in m.infos)                    # no batch norm
    assert 0.4e9 < m.flops() < 0.6e9 and m.flops() < meta_model("yolov3-tiny").flops() / 10


@pytest.mark.parametrize("name", ["yolov3-tiny", "yolov2-tiny", "yolo-lite"])
def test_small_configs_run_in_both_modes(name):
    torch.manual_seed(0)
    model = build_model(config_path(name).read_text(), source=name)
    h, w = model.input_size
    x = torch.rand(2, 3, h, w)
    with torch.no_grad():
        pred = model.eval()(x)
        raw = model.train()(x)
    n = sum(s.num_boxes * s.grid[0] * s.grid[1] for s in model.heads)
    assert pred.shape == (2, n, 5 + model.num_classes)
    assert [tuple(r.shape) for r in raw] == [(2, s.num_boxes, *s.grid, 5 + s.num_classes) for s in model.heads]


def test_info_cli(capsys):
    from yolokit.cli import main

    assert main(["info", "yolov3-tiny"]) == 0
    out = capsys.readouterr().out
    assert "params: 8,852,366" in out and "BFLOPs: 5.565 at 416x416" in out and "yolo " in out
    assert main(["info", "yolov3-tiny", "--imgsz", "320", "-q"]) == 0
    assert "at 320x320" in capsys.readouterr().out
    assert main(["info", "no-such-model"]) == 2
