import cv2
import numpy as np
import pytest
import torch

from yolokit.models.onnx import export_onnx, run_onnx
from yolokit.ops.letterbox import letterbox
from yolokit.models.postprocess import postprocess

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def inputs(photos):
    """Three real photos letterboxed to 320, as the exported graph expects: (3,3,320,320) RGB [0,1]."""
    ims = [letterbox(cv2.imread(str(photos / n))[..., ::-1], 320)[0] for n in ("dog.jpg", "horses.jpg", "person.jpg")]
    return torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).float().div(255)


@pytest.fixture(scope="module")
def reference(tiny, inputs):
    with torch.no_grad():
        return tiny.eval()(inputs)


def test_onnx_matches_torch_for_any_batch_size(tiny, inputs, reference, tmp_path):
    path = export_onnx(tiny, tmp_path / "tiny.onnx", imgsz=320)
    for b in (1, 3):                               # exported with batch 2: the batch axis is dynamic
        got = run_onnx(path, inputs[:b])
        assert got.shape == tuple(reference[:b].shape)
        np.testing.assert_allclose(got[..., :4], reference[:b, :, :4].numpy(), atol=2e-2, rtol=1e-4)  # pixels
        np.testing.assert_allclose(got[..., 4:], reference[:b, :, 4:].numpy(), atol=1e-4)            # probs
    assert not tiny.training


def test_onnx_with_nms_matches_the_post_processor(tiny, inputs, reference, tmp_path):
    path = export_onnx(tiny, tmp_path / "tiny-nms.onnx", imgsz=320, nms=True, conf=0.25, iou=0.45)
    got = run_onnx(path, inputs)                   # (K,7): batch index, x1 y1 x2 y2, score, class
    expected = postprocess(reference, 0.25, 0.45)
    assert got.shape[1] == 7 and set(np.unique(got[:, 0]).tolist()) <= {0.0, 1.0, 2.0}
    for i, exp in enumerate(expected):
        mine = got[got[:, 0] == i, 1:]
        mine = mine[np.argsort(-mine[:, 4], kind="stable")]
        assert len(mine) == len(exp) > 0
        np.testing.assert_allclose(mine[:, :5], exp[:, :5].numpy(), atol=2e-2, rtol=1e-4)
        assert (mine[:, 5] == exp[:, 5].numpy()).all()


def test_export_cli(tiny_dir, tmp_path, capsys):
    from yolokit.cli import main

    out = tmp_path / "m.onnx"
    code = main(["export", "--model", str(tiny_dir / "yolov3-tiny.cfg"), "--weights",
                 str(tiny_dir / "yolov3-tiny.weights"), "--format", "onnx", "--imgsz", "160", "--out", str(out)])
    assert code == 0 and out.is_file()
    text = capsys.readouterr().out
    diff = float(text.split("max |onnx - torch| = ")[1].split()[0])
    assert diff < 2e-2


def test_export_cli_with_nms_in_a_fresh_process(tiny_dir, photos, tmp_path):
    # A fresh interpreter: nothing has called a torchvision op before the tracer does.
    import subprocess
    import sys

    out = tmp_path / "nms.onnx"
    done = subprocess.run([sys.executable, "-m", "yolokit", "export", "--model", str(tiny_dir / "yolov3-tiny.cfg"),
                           "--weights", str(tiny_dir / "yolov3-tiny.weights"), "--nms", "--imgsz", "320",
                           "--check-image", str(photos / "dog.jpg"), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("onnxruntime check"))
    onnx_n, torch_n = (int(w) for w in line.replace(",", "").split() if w.isdigit())
    assert onnx_n == torch_n >= 6                    # dog, bicycle, car/truck on the photo and its mirror


# ------------------------------------------------------------------------------------------ int8 + accuracy guard

COCO128 = __import__("pathlib").Path(__file__).resolve().parents[2] / "configs" / "data" / "coco128_yolo.yaml"


def test_int8_export_is_calibrated_guarded_and_runs(tiny_dir, photos, tmp_path, capsys):
    """Real calibration (coco128 train) and guard (coco128 val, held out): the int8 file keeps AP50 and finds
    the dog photo's objects through yolokit.load + the one Predictor."""
    import yolokit
    from yolokit.cli import main

    out = tmp_path / "tiny-int8.onnx"
    code = main(["export", "--model", str(tiny_dir / "yolov3-tiny.cfg"), "--weights",
                 str(tiny_dir / "yolov3-tiny.weights"), "--imgsz", "320", "--int8", "--calib", str(COCO128),
                 "--calib-images", "8", "--guard-images", "32", "--max-ap-drop", "3", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "within the 3.00-point limit" in capsys.readouterr().out
    model = yolokit.load(out)
    report = model.meta["int8"]
    assert report["passed"] and report["calib_split"] == "train" and report["guard_split"] == "val"
    assert report["ap50_fp32"] > 20 and report["ap50_fp32"] - report["ap50_int8"] <= 3
    assert report["keep_float"] == [0, 1, 2, 3, 15, 22]           # the stem and the convs feeding the two heads
    import onnx

    graph = onnx.load(str(out)).graph
    convs = {n.name: n for n in graph.node if n.op_type == "Conv"}
    quantized_inputs = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    head_conv = convs["/model/layers.15/conv/Conv"]
    trunk_conv = convs["/model/layers.13/conv/Conv"]
    assert trunk_conv.input[1] in quantized_inputs                  # int8 weight, dequantized into the conv
    assert head_conv.input[1] not in quantized_inputs               # float weight
    assert convs["/model/layers.2/conv/Conv"].input[1] not in quantized_inputs   # the stem stays float
    dog = cv2.imread(str(photos / "dog.jpg"))[..., ::-1].copy()
    classes = {model.class_names[int(c)] for c in model.predict([dog])[0][:, 5]}
    assert {"dog", "bicycle"} <= classes


@pytest.fixture
def fake_int8(monkeypatch):
    """The int8 pipeline with quantization replaced by a copy and AP50 by fixed figures (fp32 30, int8 25)."""
    import shutil

    import yolokit.apps.export as ex

    monkeypatch.setattr(ex, "quantize_int8", lambda model, src, out, images, imgsz, **kw: shutil.copy(src, out))
    monkeypatch.setattr(ex, "ap50", lambda model, ds, imgsz, limit=None: 30.0 if "fp32" in str(model.path) else 25.0)
    return ex


def test_int8_guard_refuses_a_model_that_loses_too_much(tiny, fake_int8, tmp_path):
    from yolokit.errors import ConfigError

    out = tmp_path / "bad-int8.onnx"
    with pytest.raises(ConfigError, match=r"refused: AP50 fp32 30.00, int8 25.00: drop \+5.00 points, OVER"):
        fake_int8.export_int8(tiny, out, 160, COCO128, calib_images=2, guard_images=2, max_drop=1.0)
    assert not out.exists()
    warnings = []
    report = fake_int8.export_int8(tiny, out, 160, COCO128, calib_images=2, guard_images=2, max_drop=1.0,
                                   force=True, log=warnings.append)
    assert out.exists() and not report["passed"] and warnings[-1].startswith("WARNING: AP50 fp32 30.00")
    import yolokit

    assert yolokit.load(out).meta["int8"]["ap50_int8"] == 25.0
    report = fake_int8.export_int8(tiny, out, 160, COCO128, calib_images=2, guard_images=2, max_drop=5.0,
                                   log=warnings.append)
    assert report["passed"] and "within the 5.00-point limit" in warnings[-1]


def test_int8_guard_needs_held_out_images(tiny, tmp_path):
    from yolokit.apps.export import accuracy_guard, export_int8
    from yolokit.errors import ConfigError

    with pytest.raises(ConfigError, match="images the calibration did not see"):
        export_int8(tiny, tmp_path / "x.onnx", 160, COCO128, guard_split="train")
    assert accuracy_guard(30.0, 29.0, 1.0)[0] and not accuracy_guard(30.0, 28.99, 1.0)[0]
