"""DIoU-NMS (``[yolo] nms_kind=diounms``, ``beta_nms``): equal to Darknet's loop (tests/reference.py) and reached by
the predictor of a cfg that asks for it."""

import torch

from yolokit.models.postprocess import postprocess
from yolokit.ops.nms import diou_nms

from tests.reference import diou_nms_darknet


def _clustered_boxes(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(6, 2, generator=g) * 200
    c = centres[torch.randint(0, 6, (n,), generator=g)] + torch.randn(n, 2, generator=g) * 12
    wh = 20 + torch.rand(n, 2, generator=g) * 40
    boxes = torch.cat((c - wh / 2, c + wh / 2), 1)
    scores = torch.rand(n, generator=g)
    return boxes, scores


def test_diou_nms_equals_darknets_loop():
    for seed in range(6):
        boxes, scores = _clustered_boxes(120, seed)
        for thr, beta in ((0.45, 0.6), (0.3, 1.0), (0.6, 0.6)):
            mine = diou_nms(boxes, scores, torch.zeros(120, dtype=torch.long), thr, beta).tolist()
            assert mine == diou_nms_darknet(boxes.tolist(), scores.tolist(), thr, beta)


def test_diou_keeps_more_than_iou_nms_for_offset_boxes_and_groups_apart():
    boxes = torch.tensor([[0.0, 0, 10, 10], [4, 0, 14, 10], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    # IoU(0, 1) = 0.43 but their centres are 4 apart in a 14x10 enclosing box: DIoU 0.43 - (16/296)^0.6 < 0.4
    assert diou_nms(boxes, scores, torch.tensor([0, 0, 0]), 0.4, 0.6).tolist() == [0, 1]
    assert diou_nms(boxes, scores, torch.tensor([0, 0, 1]), 0.4, 0.6).tolist() == [0, 1, 2]


def test_postprocess_takes_nms_beta_and_cfg_reaches_it():
    pred = torch.tensor([[[5.0, 5, 10, 10, 0.9, 1.0], [9, 5, 10, 10, 0.8, 1.0]]])   # cxcywh, obj, 1 class
    assert len(postprocess(pred, 0.25, 0.4)[0]) == 1                     # IoU 0.43 > 0.4: suppressed
    assert len(postprocess(pred, 0.25, 0.4, nms_beta=0.6)[0]) == 2       # DIoU: kept
    from yolokit.models.darknet import DarknetModel

    cfg = ("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=18\nsize=1\nactivation=linear\n"
           "[yolo]\nmask=0,1,2\nanchors=4,4, 8,8, 16,16\nclasses=1\nnms_kind=diounms\nbeta_nms=0.7\n")
    assert DarknetModel(cfg).nms_beta == 0.7
    assert DarknetModel(cfg.replace("diounms", "greedynms")).nms_beta is None
