import cv2
import numpy as np
import pytest
import torch
from torch import nn

from yolokit.models.predict import Predictor, mirror_rows
from yolokit.models.heads import HeadSpec
from yolokit.ops.boxes import box_iou


class OneBox(nn.Module):
    """A stand-in model that always predicts one box, given in network pixels, for class 1 of 3."""

    def __init__(self, cx, cy, w, h):
        super().__init__()
        self.row = torch.tensor([[cx, cy, w, h, 0.9, 0.1, 0.8, 0.1]])

    def forward(self, x):
        return self.row.expand(x.shape[0], 1, 8).clone()


def test_boxes_are_mapped_back_through_the_letterbox():
    # A 200x100 image letterboxed to 416: scale 2.08, resized to 416x208, pad_y = (416-208)/2 = 104.
    # Network box cx=208 cy=208 w=104 h=52 -> x1 = 156/2.08 = 75, y1 = (182-104)/2.08 = 37.5,
    # x2 = 260/2.08 = 125, y2 = (234-104)/2.08 = 62.5; score 0.9 * 0.8 = 0.72, class 1.
    pred = Predictor(OneBox(208, 208, 104, 52), imgsz=416)
    (det,) = pred([np.zeros((100, 200, 3), np.uint8)])
    torch.testing.assert_close(det, torch.tensor([[75.0, 37.5, 125.0, 62.5, 0.72, 1.0]]))


def test_boxes_are_clipped_to_the_original_image():
    pred = Predictor(OneBox(20, 208, 100, 52), imgsz=416)    # sticks out on the left
    (det,) = pred([np.zeros((100, 200, 3), np.uint8)])
    assert det[0, 0].item() == 0.0


def test_mirror_rows_hand_computed():
    # One [yolo] head, 2 anchors, stride 32 at size 64 -> a 2x2 grid: rows (a, r, c) = a*4 + r*2 + c.
    # Mirroring swaps the columns: 0<->1, 2<->3 for each anchor. A [detection] head (2x2 cells, 1 box)
    # follows with an offset of 8.
    heads = [HeadSpec("yolo", 0, 1, [(10, 10), (20, 20)], (32.0, 32.0), (2, 2), num_boxes=2),
             HeadSpec("detection", 1, 1, [], (32.0, 32.0), (2, 2), num_boxes=1)]
    perm = mirror_rows(heads, 64)
    assert perm.tolist() == [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10]
    assert torch.equal(perm[perm], torch.arange(12))               # an involution


def test_tta_is_mirror_symmetric(tiny, photos):
    # dog.jpg is 768x576: letterboxed to 416 it fills the width (no x padding), so mirroring the
    # network input is mirroring the image. Flip-averaged TTA sees {image, mirror}, whichever of the
    # two it is given, so its detections on the mirrored photo are its detections on the photo, mirrored.
    image = cv2.imread(str(photos / "dog.jpg"))
    width = image.shape[1]
    tta = Predictor(tiny, bgr=True, imgsz=416, tta=True)
    a = tta([image])[0]
    b = tta([np.ascontiguousarray(image[:, ::-1])])[0]
    b = torch.cat((width - b[:, 2:3], b[:, 1:2], width - b[:, 0:1], b[:, 3:]), 1)
    assert len(a) == len(b) >= 3
    assert torch.equal(a[:, 5], b[:, 5])
    torch.testing.assert_close(a[:, :4], b[:, :4], atol=1.0, rtol=0)
    torch.testing.assert_close(a[:, 4], b[:, 4], atol=0.02, rtol=0)


def test_tta_flip_averages_rows_it_does_not_add_candidates(tiny, photos):
    image = cv2.imread(str(photos / "horses.jpg"))
    plain = Predictor(tiny, bgr=True, imgsz=320)
    tta = Predictor(tiny, bgr=True, imgsz=320, tta=True)
    with torch.inference_mode():
        rows_plain = plain.infer(plain.preprocess([image]))
        rows_tta = tta.infer(tta.preprocess([image]))
    assert rows_tta.shape == rows_plain.shape                      # same N: averaged, not concatenated
    names = tiny.class_names
    found = tta([image])[0]
    assert (found[:, 5] == names.index("horse")).sum() >= 3


def test_tta_scales_join_before_the_nms(tiny, photos):
    tta = Predictor(tiny, bgr=True, imgsz=320, tta=True, tta_scales=(1.0, 0.5), tta_flip=False)
    assert tta.sizes == [320, 160]
    image = cv2.imread(str(photos / "person.jpg"))
    with torch.inference_mode():
        rows = tta.infer(tta.preprocess([image]))
    assert rows.shape[1] == 1500 + 375                             # 320: 3*(10^2+20^2); 160: 3*(5^2+10^2)
    det = tta([image])[0]
    assert (det[:, 0] >= 0).all() and (det[:, 2] <= image.shape[1]).all()


def test_predictor_finds_opencv_reference_objects(tiny, photos):
    # OpenCV 4.14's detections for dog.jpg (REFERENCE_OPENCV_OUTPUTS.txt): dog, car, truck, bicycle.
    # OpenCV resizes without letterbox, so boxes differ a little; each must be found with IoU > 0.7.
    names = tiny.class_names
    reference = {"dog": [124.4, 218.9, 382.3, 518.5], "car": [466.5, 82.5, 686.5, 171.8],
                 "truck": [530.2, 94.1, 630.2, 161.3], "bicycle": [229.3, 196.2, 559.0, 444.9]}
    (det,) = Predictor(tiny, imgsz=416, conf=0.2, bgr=True)([cv2.imread(str(photos / "dog.jpg"))])
    for name, box in reference.items():
        mine = det[det[:, 5] == names.index(name)]
        assert len(mine), name
        assert box_iou(torch.tensor([box]), mine[:, :4]).max() > 0.7, name


def test_rgb_and_bgr_inputs_agree(tiny, photos):
    bgr = cv2.imread(str(photos / "person.jpg"))
    a = Predictor(tiny, imgsz=320, bgr=True)([bgr])[0]
    b = Predictor(tiny, imgsz=320, bgr=False)([np.ascontiguousarray(bgr[..., ::-1])])[0]
    torch.testing.assert_close(a, b)


def test_tta_predictor_takes_rgb_batches(tiny, photos):
    fn = Predictor(tiny, imgsz=320, conf=0.25, iou=0.45, tta=True)
    images = [cv2.imread(str(photos / n))[..., ::-1].copy() for n in ("dog.jpg", "horses.jpg")]
    dets = fn(images)
    assert len(dets) == 2 and all(d.shape[1] == 6 for d in dets)
    names = tiny.class_names
    assert names.index("dog") in dets[0][:, 5].tolist()
    assert names.index("horse") in dets[1][:, 5].tolist()
    for d, im in zip(dets, images):
        assert (d[:, 0] >= 0).all() and (d[:, 2] <= im.shape[1]).all() and (d[:, 3] <= im.shape[0]).all()


@pytest.mark.parametrize("batch", [1, 3])
def test_batching_does_not_change_detections(tiny, photos, batch):
    images = [cv2.imread(str(photos / n)) for n in ("dog.jpg", "horses.jpg", "person.jpg")]
    pred = Predictor(tiny, imgsz=416, bgr=True)
    one_by_one = [pred([im])[0] for im in images]
    together = [d for i in range(0, 3, batch) for d in pred(images[i:i + batch])]
    for a, b in zip(one_by_one, together):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("kwargs, flag", [({"conf": 1.5}, "--conf"), ({"iou": -0.1}, "--iou"), ({"imgsz": 300}, "--imgsz"),
                                          ({"max_det": 0}, "--max-det"), ({"tta_scales": (1.0, 0.0)}, "--tta-scales")])
def test_bad_settings_from_python_are_one_line_errors(tiny, kwargs, flag):
    from yolokit.errors import ConfigError

    with pytest.raises(ConfigError, match=flag):
        Predictor(tiny, **kwargs)


def test_settings_saved_in_the_model_are_the_defaults(tiny):
    tiny.settings = {"imgsz": 256, "conf": 0.3, "iou": 0.55, "max_det": 7}
    try:
        p = Predictor(tiny)
        assert (p.imgsz, p.conf, p.iou, p.max_det) == (256, 0.3, 0.55, 7)
        q = Predictor(tiny, imgsz=320, conf=0.1)  # arguments win
        assert (q.imgsz, q.conf, q.iou) == (320, 0.1, 0.55)
    finally:
        tiny.settings = {}
