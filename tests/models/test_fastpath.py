"""The inference-optimised model (``optimize_for_inference``): same outputs as eager torch at every input shape,
through both backends (the fused torch module, and ONNX Runtime on the model's own graph).

Speed is measured by ``yolokit bench infer`` (BENCHMARKS.md "infer"), never here.
"""

import pytest
import torch

from yolokit.models.fastpath import FusedConv, _onednn_available

pytestmark = pytest.mark.skipif(not _onednn_available(), reason="the fused path needs oneDNN (CPU torch build)")


@pytest.fixture(scope="module", params=["torch", "onnxruntime"])
def fast(tiny, request):
    if request.param == "onnxruntime":
        pytest.importorskip("onnxruntime")
    return tiny.optimize_for_inference(backend=request.param)


def _eager(model, x):
    with torch.no_grad():
        return model.eval()(x)


@pytest.mark.parametrize("batch,size", [(1, 224), (3, 320), (2, 480), (1, 640)])
def test_fused_model_equals_eager_at_other_sizes_and_batches(tiny, fast, batch, size):
    # The cfg's size is 416: every one of these needs its own weight packing.
    torch.manual_seed(size)
    x = torch.rand(batch, 3, size, size)
    ref, got = _eager(tiny, x), fast(x)
    assert got.shape == ref.shape == (batch, 3 * (size // 32) ** 2 * 5, 85)
    torch.testing.assert_close(got[..., 4:], ref[..., 4:], atol=1e-3, rtol=0)   # probabilities
    torch.testing.assert_close(got[..., :4], ref[..., :4], atol=0.05, rtol=1e-4)  # pixels


def test_weights_are_packed_once_per_input_shape_and_the_cache_is_bounded(tiny):
    fast = tiny.optimize_for_inference(backend="torch")
    conv = next(m for m in fast.modules() if isinstance(m, FusedConv))
    assert conv.cache_size == 4 and list(conv._packed) == [(1, 3, 416, 416)]       # packed for the cfg's shape up front
    x320 = torch.rand(1, 3, 320, 320)
    fast(x320)
    packed = conv._packed[(1, 3, 320, 320)]
    fast(x320)
    assert conv._packed[(1, 3, 320, 320)] is packed                     # reused, not re-packed
    for size in (224, 256, 288, 352):
        fast(torch.rand(1, 3, size, size))
    assert len(conv._packed) == conv.cache_size                          # least recently used dropped
    assert (1, 3, 320, 320) not in conv._packed and (1, 3, 352, 352) in conv._packed
    torch.testing.assert_close(fast(x320)[..., 4:], _eager(tiny, x320)[..., 4:], atol=1e-3, rtol=0)


def test_cache_size_is_an_option(tiny):
    from yolokit.models.fastpath import optimize

    one = optimize(tiny, cache_size=1, backend="torch")
    conv = next(m for m in one.modules() if isinstance(m, FusedConv))
    for size in (224, 320):
        x = torch.rand(2, 3, size, size)
        torch.testing.assert_close(one(x)[..., 4:], _eager(tiny, x)[..., 4:], atol=1e-3, rtol=0)
    assert list(conv._packed) == [(2, 3, 320, 320)]


def test_auto_backend_is_onnx_runtime_on_cpu_when_installed_and_caches_one_session_per_shape(tiny):
    pytest.importorskip("onnxruntime")
    from yolokit.models.onnx import OrtFastPath

    fast = tiny.optimize_for_inference()                      # backend="auto"
    assert isinstance(fast, OrtFastPath) and list(fast._sessions) == [(416, 416)]
    assert fast.input_size == tiny.input_size and fast.heads == tiny.heads and fast.class_names == tiny.class_names
    one = fast.session((320, 320))
    fast(torch.rand(2, 3, 320, 320))                          # dynamic batch: the same session
    assert fast.session((320, 320)) is one and len(fast._sessions) == 2
    for size in (224, 256, 288):
        fast(torch.rand(1, 3, size, size))
    assert len(fast._sessions) == fast.cache_size and (416, 416) not in fast._sessions
    # torch-module options, bf16 or another device choose the torch module
    assert not isinstance(tiny.optimize_for_inference(fuse=True), OrtFastPath)
    assert not isinstance(tiny.optimize_for_inference(backend="torch"), OrtFastPath)
