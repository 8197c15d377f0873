"""The whole Darknet zoo (../shared/data/darknet_cfgs, the 94 cfgs of Darknet's cfg/ folder).

* every cfg loads or refuses in one line for a stated reason; classifiers build as backbones;
* random-weight parity with OpenCV 4.x's Darknet importer on the 44 detection cfgs it runs (xnor excluded):
  yolokit writes the .weights, both read them, the raw head outputs are compared, and a float64 run of yolokit
  tells float noise from a semantic difference;
* resource guards: absurd cfg sizes refuse before anything is allocated.

Cheap on purpose: 64x64 inputs (every cfg's largest stride is <= 64), one image, weights in a temp folder.
"""

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from yolokit.errors import ConfigError
from yolokit.models import save_weights, zoo
from yolokit.models.cfg import read_cfg
from yolokit.models.darknet import DarknetModel

from tests.models.test_parity import as_opencv_rows

cv2 = pytest.importorskip("cv2")

#: The detection cfgs OpenCV 4.14 reads and runs (xnor ones excluded): issue 21's target list.
OPENCV_DETECTORS = (
    "cd53paspp-gamma", "csresnext50-panet-spp-original-optimal", "csresnext50-panet-spp", "enet-coco",
    "resnet152_trident", "tiny-yolo-voc", "tiny-yolo", "yolo-voc.2.0", "yolo-voc", "yolo.2.0", "yolo",
    "yolov2-tiny-voc", "yolov2-tiny", "yolov2", "yolov3-openimages", "yolov3-spp", "yolov3-tiny-prn", "yolov3-tiny",
    "yolov3-tiny_3l", "yolov3-tiny_obj", "yolov3-voc", "yolov3-voc.yolov3-giou-40", "yolov3", "yolov3.coco-giou-12",
    "yolov3_5l", "yolov4-csp-s-mish", "yolov4-csp-swish", "yolov4-csp-x-mish", "yolov4-csp-x-swish-frozen",
    "yolov4-csp-x-swish", "yolov4-csp", "yolov4-custom", "yolov4-p5-frozen", "yolov4-p5", "yolov4-p6",
    "yolov4-tiny-3l", "yolov4-tiny-custom", "yolov4-tiny", "yolov4", "yolov4_new", "yolov4x-mish", "yolov7-tiny",
    "yolov7", "yolov7x",
)
#: What stays out, and the words of its one-line reason.
REFUSED = {
    "crnn.train": "recurrent", "gru": "recurrent", "lstm.train": "recurrent", "rnn": "recurrent",
    "rnn.train": "recurrent", "yolov3-tiny_occlusion_track": "recurrent", "darknet53_448_xnor": "xnor=1",
    "tiny-yolo_xnor": "xnor=1", "yolov1_xyolo.test": "xnor=1", "yolov3-tiny_xnor": "xnor=1",
    "yolo9000": "tree", "yolov4-tiny_contrastive": "[contrastive]",
    "cspx-p7-mish_hp": "anchors",  # a missing comma in the upstream file ("61,45    61,45"); OpenCV refuses it too
}


@pytest.fixture(scope="module")
def zoo_dir(shared) -> Path:
    return Path(shared) / "darknet_cfgs"


def test_every_cfg_loads_or_says_why_in_one_line(zoo_dir):
    rows = {r.name[:-4]: r for r in zoo.survey(zoo_dir)}
    assert len(rows) == 94
    refused = {n: r.reason for n, r in rows.items() if not r.loads}
    assert set(refused) == set(REFUSED)
    for name, reason in refused.items():
        assert REFUSED[name] in reason and "\n" not in reason and reason.startswith(f"{name}.cfg:")
    detectors = {n for n, r in rows.items() if r.kind == "detector"}
    assert set(OPENCV_DETECTORS) <= detectors
    assert {"yolov1_yolo", "yolov1_tiny-yolo", "yolov1_yolo-small", "Gaussian_yolov3_BDD",
            "yolov4-sam-mish-csp-reorg-bfm", "cspx-p7-mish"} <= detectors          # beyond what OpenCV runs
    backbones = {n for n, r in rows.items() if r.kind == "backbone"}
    assert {"darknet53", "resnet152", "efficientnet_b0", "densenet201", "vgg-16", "csdarknet53-omega"} <= backbones
    assert len(detectors) == 55 and len(backbones) == 26
    assert abs(rows["yolov4"].bflops - 128.5) < 0.5 and abs(rows["yolov3-tiny"].bflops - 5.56) < 0.01


@pytest.fixture(autouse=True)
def _one_opencv_thread():
    # OpenCV's own thread pool on top of torch's oversubscribes a busy 2-core CI runner (10x slower there)
    n = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(n)


def _opencv_outputs(text: str, model, x: torch.Tensor) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory() as d:
        cfg, weights = Path(d) / "m.cfg", Path(d) / "m.weights"
        cfg.write_text(text)
        save_weights(model, weights)
        net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setInput(x.numpy())
    return list(net.forward(net.getUnconnectedOutLayersNames()))


@pytest.mark.skipif(not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"),
                    reason="OpenCV without cv2.dnn.readNetFromDarknet (removed in OpenCV 5)")
@pytest.mark.parametrize("name", OPENCV_DETECTORS)
def test_random_weights_match_opencv(zoo_dir, name):
    text = zoo.set_net_size_text(read_cfg(zoo_dir / f"{name}.cfg")[0], 64, 64)
    if name == "resnet152_trident":
        # OpenCV 4.14's importer ignores `dilation` (see test_opencv_ignores_dilation; Darknet pads by
        # pad*dilation and dilates) and `share_index` (it reads weights the file does not hold: NaN outputs).
        # Compare everything else on the cfg without them; test_share_index covers the sharing.
        text = "\n".join(ln for ln in text.splitlines()
                         if not ln.strip().startswith(("dilation", "share_index"))) + "\n"
    model = zoo.random_model(text, name)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    refs = _opencv_outputs(text, model, x)
    with torch.no_grad():
        mine = as_opencv_rows(model, model(x))
        mine64 = as_opencv_rows(model, model.double()(x.double()))
    assert [r.shape for r in refs] == [m.shape for m in mine]
    for ref, a, b in zip(refs, mine, mine64):
        assert a[:, 4].std() > 1e-3, "objectness does not vary: the check would be empty"
        keep = np.ones(ref.shape, bool)
        keep[:, 5:] = ref[:, 5:] > 0  # OpenCV zeroes class scores below 0.2
        diff, noise = np.abs(ref - a)[keep].max(), np.abs(a - b).max()
        # float noise: OpenCV within 1e-3 of yolokit, or no farther from yolokit's float64 run than float32 is
        assert diff < 1e-3 or np.abs(ref - b)[keep].max() <= 2 * noise + 1e-4, (diff, noise)


def test_opencv_ignores_dilation():
    """Why the trident parity drops `dilation`: OpenCV runs a dilated 3x3 as a plain one."""
    text = "[net]\nwidth=16\nheight=16\nchannels=3\n[convolutional]\ndilation=3\nfilters=2\nsize=3\npad=1\n" \
           "activation=linear\n"
    model = zoo.randomize_(DarknetModel(text, "d", require_head=False)).eval()
    x = torch.rand(1, 3, 16, 16)
    ref = _opencv_outputs(text, model, x)[0]
    conv = model.layers[0].conv
    with torch.no_grad():
        assert conv.dilation == (3, 3) and conv.padding == (3, 3)   # Darknet: pad*dilation, same size
        plain = torch.nn.functional.conv2d(x, conv.weight, conv.bias, padding=1).numpy()
        assert np.abs(ref - plain).max() < 1e-4 and np.abs(ref - model(x).numpy()).max() > 1e-2


@pytest.mark.parametrize("change, expected", [
    ("filters=1000000000", "needs"), ("width=1000000\nheight=1000000", "needs"),
    ("[upsample]\nstride=100000", "needs"), ("[connected]\noutput=1000000000", "needs"),
])
def test_absurd_sizes_refuse_before_allocating(change, expected):
    net = "[net]\nwidth=416\nheight=416\nchannels=3\n"
    if change.startswith("width"):
        text = "[net]\n" + change + "\nchannels=3\n[convolutional]\nfilters=16\nsize=3\npad=1\n"
    elif change.startswith("filters"):
        text = net + "[convolutional]\n" + change + "\nsize=3\npad=1\n"
    else:
        text = net + change + "\n"
    with pytest.raises(ConfigError) as info:
        DarknetModel(text, "big.cfg", require_head=False)
    msg = str(info.value)
    assert msg.startswith("big.cfg: this cfg") and expected in msg and " GB at " in msg and "\n" not in msg


def test_share_index_uses_the_earlier_layers_weights_and_writes_none(tmp_path):
    """TridentNet's branches: ``share_index`` convs compute with layer K's weights and batch-norm, with their own
    dilation, and add nothing to the .weights file (Darknet's load/save skip them)."""
    conv = "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
    text = "[net]\nwidth=16\nheight=16\nchannels=3\n" + conv + conv + conv.replace("pad=1", "pad=1\ndilation=2\n"
                                                                                  "share_index=-1")
    model = zoo.randomize_(DarknetModel(text, "t", require_head=False)).eval()
    own, shared = model.layers[1], model.layers[2]
    x = torch.rand(1, 4, 16, 16)
    with torch.no_grad():
        expected = own.act(own.bn(torch.nn.functional.conv2d(x, own.conv.weight, None, 1, 2, 2)))
        assert torch.allclose(shared(x), expected, atol=1e-6)
    assert len(list(model.parameters())) == 6  # two convs with BN (weight, scale, shift); none for the share
    save_weights(model, tmp_path / "t.weights")
    floats = (16 + 4 * 3 * 9) + (16 + 4 * 4 * 9)  # per conv: bias, scale, mean, variance, then the kernel
    assert (tmp_path / "t.weights").stat().st_size == 20 + 4 * floats


@pytest.mark.parametrize("name", ["yolov4-tiny", "yolov7-tiny"])
def test_new_heads_export_to_onnx_and_run_the_fast_path(zoo_dir, name, tmp_path):
    """The new models (CSP route groups, new_coords heads, DIoU-NMS cfgs) export to ONNX and run the fast path
    with eager's outputs and detections."""
    pytest.importorskip("onnxruntime")
    from yolokit.models.onnx import export_onnx, load_onnx

    text = zoo.set_net_size_text(read_cfg(zoo_dir / f"{name}.cfg")[0], 96, 96)
    model = zoo.random_model(text, name)
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    export_onnx(model, tmp_path / "m.onnx", imgsz=96)
    exported, fast = load_onnx(tmp_path / "m.onnx"), model.optimize_for_inference()
    with torch.no_grad():
        ref = model(x)
        for other in (torch.as_tensor(np.asarray(exported(x))), fast(x)):
            assert (other[..., :4] - ref[..., :4]).abs().max() < 1e-2          # pixels
            assert (other[..., 4:] - ref[..., 4:]).abs().max() < 1e-4
    image = (np.random.default_rng(0).random((96, 96, 3)) * 255).astype(np.uint8)
    dets = [m.predict([image], conf=0.3, letterbox=False)[0] for m in (model, exported, fast)]
    assert model.nms_beta == (0.6 if name == "yolov7-tiny" else None)   # yolov7-tiny.cfg: nms_kind=diounms
    for d in dets[1:]:
        assert d.shape == dets[0].shape
        # random weights give near-equal scores: compare as sets of rows
        a, b = (t[torch.argsort(t[:, 0] * 1e4 + t[:, 1])] for t in (dets[0], d))
        assert torch.allclose(a, b, atol=1e-2)
