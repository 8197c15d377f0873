"""The public model API: yolokit.load, train/eval outputs, predict's pixel mapping, class-count surgery,
optimize_for_inference."""

import copy

import cv2
import numpy as np
import pytest
import torch

import yolokit
from yolokit.errors import ConfigError
from yolokit.models import load, save_checkpoint, with_num_classes
from yolokit.ops.boxes import box_iou


@pytest.fixture(scope="module")
def dog(shared) -> np.ndarray:
    return cv2.imread(str(shared / "yolo_fastest_darknet" / "data" / "dog.jpg"))[:, :, ::-1].copy()


def test_top_level_load_is_models_load():
    assert yolokit.load is load
    model = yolokit.load("yolov3-tiny")                       # configs/models name, random weights
    assert not model.training and model.num_classes == 80 and model.class_names is None


def test_eval_output_is_the_documented_decoding_of_train_output(tiny):
    x = torch.rand(1, 3, 320, 416)                            # any multiple of the stride, not square
    model = copy.deepcopy(tiny)                               # train mode must not touch the shared fixture
    with torch.no_grad():
        pred = model(x)
        model.train()
        for m in model.modules():                             # batch statistics would change the features
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()
        raws = model(x)
    decoded = []
    for raw, spec in zip(raws, tiny.heads):
        b, a, h, w, _ = raw.shape
        cols = torch.arange(w).view(1, 1, 1, w)
        rows = torch.arange(h).view(1, 1, h, 1)
        anchors = torch.tensor(spec.anchors)
        cx = (cols + torch.sigmoid(raw[..., 0])) * (416 / w)
        cy = (rows + torch.sigmoid(raw[..., 1])) * (320 / h)
        bw = torch.exp(raw[..., 2]) * anchors[:, 0].view(1, a, 1, 1)
        bh = torch.exp(raw[..., 3]) * anchors[:, 1].view(1, a, 1, 1)
        rest = torch.sigmoid(raw[..., 4:])
        decoded.append(torch.cat([torch.stack([cx, cy, bw, bh], -1), rest], -1).reshape(b, -1, raw.shape[-1]))
    torch.testing.assert_close(pred, torch.cat(decoded, 1), rtol=1e-5, atol=1e-4)


def test_predict_letterbox_maps_back_to_original_pixels(tiny, dog):
    plain = tiny.predict([dog], letterbox=False)[0]
    boxed = tiny.predict([dog], letterbox=True)[0]
    assert boxed.shape[1] == 6 and len(boxed) >= 1 and len(plain) >= 1  # the dog photo has a dog and a bicycle
    assert (boxed[:, 4] > 0).all()
    # The same objects, found through a different input geometry, land on the same original pixels.
    for det in plain[plain[:, 4] > 0.5]:
        same = boxed[boxed[:, 5] == det[5]]
        assert len(same) and box_iou(det[None, :4], same[:, :4]).max() > 0.8
    h, w = dog.shape[:2]
    assert boxed[:, [0, 2]].max() <= w and boxed[:, [1, 3]].max() <= h and boxed[:, :4].min() >= 0


def test_with_num_classes_reinitialises_only_the_layers_before_heads(tiny):
    one = with_num_classes(tiny, 1, ["raccoon"])
    assert one.num_classes == 1 and one.class_names == ["raccoon"] and all(h.num_classes == 1 for h in one.heads)
    before = {spec.layer - 1 for spec in tiny.heads}
    old, new = tiny.state_dict(), one.state_dict()
    for key, value in new.items():
        layer = int(key.split(".")[1])
        if layer in before:
            assert value.shape != old[key].shape or key.endswith("num_batches_tracked")
        else:
            assert torch.equal(value, old[key]), key
    assert one(torch.rand(1, 3, 416, 416)).shape == (1, 2535, 6)
    assert "classes=1" in one.cfg_text and "filters=18" in one.cfg_text
    assert one.heads[0].anchors == tiny.heads[0].anchors


def test_checkpoint_keeps_class_surgery(tiny, tmp_path):
    one = with_num_classes(tiny, 1, ["raccoon"])
    save_checkpoint(one, tmp_path / "raccoon.pt", epoch=3)
    again = load(tmp_path / "raccoon.pt")
    x = torch.rand(1, 3, 416, 416)
    torch.testing.assert_close(again(x), one(x))
    assert again.class_names == ["raccoon"] and torch.load(tmp_path / "raccoon.pt", weights_only=True)["epoch"] == 3
    with pytest.raises(ConfigError, match="already holds its weights"):
        load(tmp_path / "raccoon.pt", weights="x.weights")
    with pytest.raises(ConfigError, match="2 class names"):
        load(tmp_path / "raccoon.pt", names=["a", "b"])


def test_optimize_for_inference_is_equivalent(tiny, dog):
    fast = tiny.optimize_for_inference()
    x = torch.rand(1, 3, 416, 416)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), tiny(x), rtol=1e-4, atol=1e-3)
    a, b = tiny.predict([dog]), fast.predict([dog])
    assert torch.equal(a[0][:, 5], b[0][:, 5])
    torch.testing.assert_close(a[0][:, :5], b[0][:, :5], rtol=1e-4, atol=1e-2)
    assert any(p.requires_grad for p in tiny.parameters())   # the original is untouched


def test_model_runs_on_device(tiny, device):
    model = with_num_classes(tiny, 2).to(device)
    out = model(torch.rand(1, 3, 64, 64, device=device))
    assert out.device.type == device and out.shape == (1, 3 * (2 * 2 + 4 * 4), 7)


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="CPU without oneDNN bf16")
def test_optimize_bf16_keeps_the_detections_close(tiny, dog):
    fast = tiny.optimize_for_inference(dtype=torch.bfloat16)
    a, b = tiny.predict([dog])[0], fast.predict([dog])[0]
    assert len(a) == len(b) and b.dtype == torch.float32
    iou = box_iou(a[:, :4], b[:, :4])
    j = iou.argmax(1)
    assert torch.equal(a[:, 5], b[j, 5]) and iou.max(1).values.min() > 0.98
    assert (a[:, 4] - b[j, 4]).abs().max() < 0.05          # bf16 moves scores by ~0.01-0.03: opt-in only
