"""Darknet partial weights (``darknet partial``): ``yolokit partial`` cuts the first N layers, ``--weights
NAME.conv.N`` fills those layers and leaves the rest initialised. Cut from the shipped yolov3-tiny weights."""

import struct

import pytest
import torch

from yolokit.cli import main
from yolokit.errors import WeightsError
from yolokit.models import load
from yolokit.models.weights import count_weights, load_weights, partial_layers


@pytest.fixture(scope="module")
def conv15(tiny_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("partial") / "yolov3-tiny.conv.15"
    assert main(["partial", str(tiny_files[0]), str(tiny_files[1]), str(out), "15"]) == 0
    return out


def test_partial_file_is_the_header_and_the_first_layers(tiny, conv15):
    data = conv15.read_bytes()
    major, minor, revision = struct.unpack_from("<3i", data, 0)
    assert (major, minor, revision) == tiny.weights_header[:3]
    assert struct.unpack_from("<q", data, 12)[0] == 0                     # darknet partial resets `seen`
    per_layer = sum(p.numel() for i in range(15) for p in list(tiny.layers[i].parameters())
                    + list(tiny.layers[i].buffers()) if p.dtype.is_floating_point)
    assert len(data) == 20 + 4 * per_layer
    assert len(data) < 20 + 4 * count_weights(tiny)
    assert partial_layers(conv15) == 15


def test_weights_conv_n_loads_the_first_n_layers_and_keeps_the_rest(tiny, tiny_files, conv15):
    torch.manual_seed(0)
    model = load(tiny_files[0], weights=conv15)
    state, full = model.state_dict(), tiny.state_dict()
    for key, value in state.items():
        layer = int(key.split(".")[1])
        same = torch.equal(value, full[key])
        if key.endswith("num_batches_tracked"):
            continue
        assert same == (layer < 15), key                               # layers 15.. keep their initialisation
    # and the result still runs
    with torch.no_grad():
        assert model(torch.rand(1, 3, 416, 416)).shape[-1] == 85


def test_a_partial_file_without_its_name_needs_upto(tiny_files, conv15, tmp_path):
    renamed = tmp_path / "backbone.weights"
    renamed.write_bytes(conv15.read_bytes())
    model = load(tiny_files[0])
    with pytest.raises(WeightsError, match="file ends inside layer 15"):
        load_weights(model, renamed)
    load_weights(model, renamed, upto=15)
