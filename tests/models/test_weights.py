"""Darknet .weights I/O: exact consumption, errors that name the layer, byte-identical round trips."""

import struct

import pytest
import torch

from yolokit.errors import WeightsError
from yolokit.models import DarknetModel, load, save_checkpoint
from yolokit.models.weights import count_weights, load_weights, read_header, save_weights

from tests.models.conftest import FASTEST, fastest_files

SMALL = """[net]
width=32
height=32
channels=3
[convolutional]
batch_normalize=1
filters=4
size=3
stride=2
pad=1
activation=leaky
[local]
filters=2
size=3
stride=1
pad=1
activation=leaky
[connected]
output=28
activation=linear
[detection]
classes=2
side=2
num=1
sqrt=1
"""


def test_tiny_consumes_the_file_exactly(tiny, tiny_files):
    _, weights = tiny_files
    size = weights.stat().st_size
    assert 20 + 4 * count_weights(tiny) == size
    assert tiny.weights_header[:3] == (0, 2, 0) and tiny.weights_header[4] == 8


@pytest.mark.parametrize("stem", FASTEST)
def test_round_trip_is_byte_identical(shared, tmp_path, stem):
    cfg, weights = fastest_files(shared, stem)
    model = load(cfg, weights)
    out = tmp_path / "again.weights"
    save_weights(model, out)
    assert out.read_bytes() == weights.read_bytes()


def test_tiny_darknet_checkpoint_darknet_round_trip(tiny, tiny_files, tmp_path):
    _, weights = tiny_files
    save_checkpoint(tiny, tmp_path / "tiny.pt")
    ckpt = torch.load(tmp_path / "tiny.pt", weights_only=True)
    assert set(ckpt) >= {"model", "cfg", "class_names"} and ckpt["class_names"][0] == "person"
    again = load(tmp_path / "tiny.pt")
    save_weights(again, tmp_path / "tiny.weights")
    assert (tmp_path / "tiny.weights").read_bytes() == weights.read_bytes()


def test_short_file_names_the_layer_where_it_ran_out(tiny, tiny_files, tmp_path):
    _, weights = tiny_files
    data = weights.read_bytes()
    last_conv = [i for i in tiny.infos if i.kind == "convolutional"][-1]
    (tmp_path / "short.weights").write_bytes(data[:-4])
    with pytest.raises(WeightsError, match=rf"short.weights: file ends inside layer {last_conv.index} "
                                           rf"\[convolutional\] \(cfg line {last_conv.line}\)"):
        load_weights(tiny_copy(tiny), tmp_path / "short.weights")
    first_conv = tiny.infos[0]
    (tmp_path / "header_only.weights").write_bytes(data[:20 + 8])
    with pytest.raises(WeightsError, match=rf"layer {first_conv.index} \[convolutional\]"):
        load_weights(tiny_copy(tiny), tmp_path / "header_only.weights")


def test_long_file_is_an_error(tiny, tiny_files, tmp_path):
    _, weights = tiny_files
    (tmp_path / "long.weights").write_bytes(weights.read_bytes() + b"\0" * 8)
    with pytest.raises(WeightsError, match="2 float32 values left over"):
        load_weights(tiny_copy(tiny), tmp_path / "long.weights")
    (tmp_path / "odd.weights").write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(WeightsError, match="not a whole number"):
        load_weights(tiny_copy(tiny), tmp_path / "odd.weights")


def tiny_copy(tiny):
    return DarknetModel(tiny.cfg_text, tiny.source)


def test_32_bit_seen_header_and_v1_layers(tmp_path):
    torch.manual_seed(0)
    model = DarknetModel(SMALL, "small.cfg")
    n = count_weights(model)
    values = torch.randn(n).abs() + 0.1                 # positive: valid BN variances
    blob = struct.pack("<4i", 0, 1, 0, 12345) + values.numpy().astype("<f4").tobytes()
    (tmp_path / "v01.weights").write_bytes(blob)
    header, offset = read_header(blob, "v01")
    assert header == (0, 1, 0, 12345, 4) and offset == 16
    load_weights(model, tmp_path / "v01.weights")
    assert torch.equal(model.layers[0].bn.bias, values[:4])           # biases come first
    assert torch.equal(model.layers[0].bn.running_var, values[12:16])
    save_weights(model, tmp_path / "again.weights")
    assert (tmp_path / "again.weights").read_bytes() == blob
    out = model.eval()(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 4, 7)
    save_checkpoint(model, tmp_path / "small.pt")
    torch.testing.assert_close(load(tmp_path / "small.pt")(torch.ones(1, 3, 32, 32)),
                               model(torch.ones(1, 3, 32, 32)))


def test_upto_reads_a_backbone_prefix(tmp_path):
    model = DarknetModel(SMALL, "small.cfg")
    save_weights(model, tmp_path / "conv.weights", upto=1)
    other = DarknetModel(SMALL, "small.cfg")
    load_weights(other, tmp_path / "conv.weights", upto=1)
    assert torch.equal(other.layers[0].conv.weight, model.layers[0].conv.weight)
    with pytest.raises(WeightsError, match="file ends inside layer 1 \\[local\\]"):
        load_weights(other, tmp_path / "conv.weights")
