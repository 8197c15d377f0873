"""Darknet ``.weights`` files: read them into a :class:`~yolokit.models.darknet.DarknetModel`, write them back.

``.weights`` format (Darknet ``load_weights``/``save_weights``): int32 ``major, minor, revision``, then ``seen``
(images seen in training) as int64 when ``major*10 + minor >= 2`` (and both < 1000) else int32, then float32
values layer by layer in cfg order:

* ``[convolutional]``: biases[n]; with batch_normalize: scales[n], rolling_mean[n], rolling_variance[n];
  then weights[n * c/groups * size * size].
* ``[connected]``: biases[out], weights[out * in]; with batch_normalize: scales, rolling_mean, rolling_variance.
* ``[local]``: biases[out_h*out_w*n], weights[out_h*out_w * n * c*size*size].

* ``[batchnorm]``: biases[c], scales[c], rolling_mean[c], rolling_variance[c].
* ``[convolutional] share_index=K``: nothing (the layer uses layer K's arrays).

Nothing else carries weights. The reader must consume the file exactly; the writer reproduces the header it read,
so load -> save gives a byte-identical file.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from yolokit.errors import WeightsError
from yolokit.fileio import write_atomic
from yolokit.models import layers as L

if TYPE_CHECKING:
    from yolokit.models.darknet import DarknetModel


def _weight_tensors(model: DarknetModel, upto: int | None = None):
    """Yield ``(layer index, kind, line, [tensors in file order])`` for every layer that has weights."""
    for info, layer in zip(model.infos[:upto], model.layers[:upto]):
        if info.kind == "convolutional":
            if isinstance(layer, L.SharedConv):  # share_index: the weights are layer K's (Darknet skips it too)
                continue
            conv = layer.conv
            if "bn" in layer._modules:
                bn = layer.bn
                ts = [bn.bias, bn.weight, bn.running_mean, bn.running_var, conv.weight]
            else:
                ts = [conv.bias, conv.weight]
        elif info.kind == "connected":
            if layer.bn is not None:
                ts = [layer.bn.bias, layer.linear.weight, layer.bn.weight, layer.bn.running_mean,
                      layer.bn.running_var]
            else:
                ts = [layer.linear.bias, layer.linear.weight]
        elif info.kind == "local":
            ts = [layer.bias, layer.weight]
        elif info.kind == "batchnorm":  # Darknet's load_batchnorm_weights: biases, scales, mean, variance
            ts = [layer.bias, layer.weight, layer.running_mean, layer.running_var]
        else:
            continue
        yield info.index, info.kind, info.line, ts


def read_header(data: bytes, path: str) -> tuple[tuple[int, int, int, int, int], int]:
    """Parse the header; returns ``((major, minor, revision, seen, seen_bytes), offset of the first float)``."""
    if len(data) < 16:
        raise WeightsError(f"{path}: {len(data)} bytes is too short for a Darknet .weights header")
    major, minor, revision = struct.unpack_from("<3i", data, 0)
    if major > 1000 or minor > 1000:
        raise WeightsError(f"{path}: header version {major}.{minor} marks transposed [connected] weights of very "
                           "old Darknet files, which yolokit does not read")
    if major * 10 + minor >= 2:
        (seen,) = struct.unpack_from("<q", data, 12)
        return (major, minor, revision, seen, 8), 20
    (seen,) = struct.unpack_from("<i", data, 12)
    return (major, minor, revision, seen, 4), 16


def partial_layers(path: str | Path) -> int | None:
    """N of a Darknet partial file named ``*.conv.N`` (``darknet partial``: the first N layers' weights, e.g.
    ``yolov4-tiny.conv.29``, ``darknet53.conv.74``), else None."""
    m = re.search(r"\.conv\.(\d+)$", Path(path).name)
    return int(m.group(1)) if m else None


def load_weights(model: DarknetModel, path: str | Path, upto: int | None = None,
                 exact: bool = True) -> DarknetModel:
    """Fill ``model`` from a Darknet ``.weights`` file, in place.

    Args:
        upto: read only the first ``upto`` layers (e.g. 75 for a ``darknet53.conv.74`` backbone file). A file
            named ``*.conv.N`` is a partial file: ``upto`` defaults to N and the other layers keep their
            initialisation (as Darknet's ``detector train cfg yolov4-tiny.conv.29`` does).
        exact: the file must end where the layers read end (False: ignore what follows, as ``darknet partial``
            reads a full file's first layers).
    Raises:
        WeightsError: the file ends inside a layer (the message names it) or has values left over.
    """
    from yolokit.fileio import read_bytes

    path = Path(path)
    if upto is None:
        upto = partial_layers(path)
        if upto is not None and not 0 < upto <= len(model.layers):
            raise WeightsError(f"{path}: a partial file of {upto} layers for a model of {len(model.layers)}")
    # a regular file (/dev/zero is one line, not 12 GB read), at most twice the model's float32 values (a
    # backbone file read with ``upto`` may hold a classifier head the model lacks)
    limit = 2 * 4 * sum(p.numel() for p in model.state_dict().values()) + (64 << 20)
    data = read_bytes(path, "Darknet .weights file", limit, WeightsError)
    header, offset = read_header(data, str(path))
    if (len(data) - offset) % 4:
        raise WeightsError(f"{path}: {len(data) - offset} bytes after the header is not a whole number of float32")
    values = np.frombuffer(data, dtype="<f4", offset=offset)
    pos = 0
    with torch.no_grad():
        for index, kind, line, tensors in _weight_tensors(model, upto):
            need = sum(t.numel() for t in tensors)
            if pos + need > values.size:
                raise WeightsError(f"{path}: file ends inside layer {index} [{kind}] (cfg line {line}): it needs "
                                   f"{need} values, {values.size - pos} remain (file has {values.size} values "
                                   "after the header); the cfg and weights do not match")
            for t in tensors:
                n = t.numel()
                t.copy_(torch.from_numpy(values[pos:pos + n].copy()).view_as(t))
                pos += n
    if pos != values.size and exact:
        what = f"the first {upto} layers" if upto is not None else "the cfg"
        raise WeightsError(f"{path}: {values.size - pos} float32 values left over after {what} consumed {pos}; "
                           "the cfg and weights do not match")
    model.weights_header = header
    return model


def save_weights(model: DarknetModel, path: str | Path, upto: int | None = None, seen: int | None = None) -> None:
    """Write ``model`` as a Darknet ``.weights`` file, with the header of the last file loaded into it (atomically:
    a crash mid-write leaves the previous file whole). ``upto``: only the first ``upto`` layers (a partial file);
    ``seen``: the header's image count (default: the loaded file's)."""
    major, minor, revision, seen0, seen_bytes = model.weights_header
    seen = seen0 if seen is None else seen
    head = struct.pack("<3i", major, minor, revision) + struct.pack("<q" if seen_bytes == 8 else "<i", seen)
    chunks = [head]
    for _, _, _, tensors in _weight_tensors(model, upto):
        for t in tensors:
            chunks.append(t.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4").tobytes())
    write_atomic(path, lambda f: f.write(b"".join(chunks)))


def count_weights(model: DarknetModel) -> int:
    """Number of float32 values a .weights file for ``model`` holds after its header."""
    return sum(t.numel() for _, _, _, ts in _weight_tensors(model) for t in ts)
