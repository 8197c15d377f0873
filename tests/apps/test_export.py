import cv2
import numpy as np
import pytest
import torch

from yolokit.apps.export import export_onnx, run_onnx
from yolokit.data.transforms import letterbox
from yolokit.postprocess import postprocess

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
