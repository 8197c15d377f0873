"""Streaming shards for training: the once-per-epoch split across ranks and workers (hand-checked cases and
every small combination), webdataset interoperability both ways, HTTP streaming from a local server, and
TrainStream batches (workers, two gloo ranks, epochs that replay exactly)."""

import functools
import http.server
import subprocess
import tarfile
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from yolokit.data import load_dataset
from yolokit.data.images import read_image
from yolokit.data.shards import (ShardSet, epoch_order, open_shards, pieces, rank_span, read_pieces, sample_of,
                                 worker_spans, write_shards)
from yolokit.data.stream import ShardSplit, ShardStream, TrainStream, load_split, open_split

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    from tests.conftest import GET_DATA, SHARED

    if not SHARED.is_dir():
        pytest.skip(GET_DATA.format(path=SHARED))
    out = tmp_path_factory.mktemp("shards")
    write_shards(CONFIGS / "raccoon.yaml", out, shard_size=30)  # train: 160 = 5 x 30 + 10; val: 40 = 30 + 10
    return out


# ------------------------------------------------------------------------------------------- the split
def test_rank_span_hand_cases():
    # 160 samples, 2 ranks, batch 16: 80 each, 5 batches, nothing dropped
    assert [rank_span(160, r, 2, 16) for r in range(2)] == [(0, 80, 5), (80, 80, 5)]
    # 161 samples: rank 1 holds 81 = 5 full batches + 1; ceil(80 / 16) = 5 batches on every rank -> it drops 1
    assert [rank_span(161, r, 2, 16) for r in range(2)] == [(0, 80, 5), (80, 80, 5)]
    # 163 samples, batch 16, 2 ranks: 81 and 82, 6 batches each, both keep a partial last batch
    assert [rank_span(163, r, 2, 16) for r in range(2)] == [(0, 81, 6), (81, 82, 6)]
    # worker parts are runs of whole batches: 6 batches over 4 workers -> 1, 2, 1, 2
    assert worker_spans(rank_span(163, 1, 2, 16), 4, 16) == [(81, 97), (97, 129), (129, 145), (145, 163)]
    # samples [25, 65) of shards of 30, 30, 30 in order 2, 0, 1: the end of shard 2, all of 0, the start of 1
    assert pieces([30, 30, 30], [2, 0, 1], 25, 65) == [(2, 25, 5), (0, 0, 30), (1, 0, 5)]


@pytest.mark.parametrize("batch", [1, 3, 16])
def test_every_sample_once_for_every_small_split(batch):
    """Every (counts, world, workers) up to a few: each sample read once, the same batch count on every rank,
    only a rank's last batch partial, and nothing left out except the documented leftover."""
    for counts in ([30, 30, 30, 30, 30, 10], [5], [1, 1, 1], [7, 2, 9, 4], [16, 16]):
        total = sum(counts)
        for world in (1, 2, 3):
            for workers in (1, 2, 3):
                seen = Counter()
                batch_counts = set()
                order = epoch_order(len(counts), 0, 1, True)
                for rank in range(world):
                    span = rank_span(total, rank, world, batch)
                    batch_counts.add(span.batches)
                    sizes = []
                    for a, b in worker_spans(span, workers, batch):
                        sizes += [min(batch, b - x) for x in range(a, b, batch)]
                        for p in pieces(counts, order, a, b):
                            start = sum(counts[s] for s in order[:order.index(p.shard)])
                            seen.update(range(start + p.skip, start + p.skip + p.take))
                    assert len(sizes) == span.batches
                    assert all(s == batch for s in sizes[:-1])  # only the last batch of a rank is partial
                assert len(batch_counts) == 1
                assert max(seen.values(), default=1) == 1
                left_out = total - len(seen)
                assert left_out == 0 or ((total // world) % batch == 0 and left_out == total % world)


# ------------------------------------------------------------------------------------------- webdataset
def test_webdataset_reads_yolokit_shards(shards):
    import webdataset as wds

    urls = [str(p) for p in sorted((shards / "train").glob("*.tar"))]
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode("rgb8"))
    ds = load_dataset(CONFIGS / "raccoon.yaml", "train")
    assert len(samples) == len(ds) == 160
    by_id = {r.image_id: r for r in ds.records}
    for s in samples[::40]:
        r = by_id[s["json"]["image_id"]]
        np.testing.assert_array_equal(s["jpg"], read_image(r.path))  # PIL decode, RGB: the dataset's pixels
        np.testing.assert_allclose(s["json"]["boxes"], r.boxes)


def test_yolokit_reads_webdataset_and_gnu_tar_shards(shards, tmp_path):
    """Shards written by webdataset's ShardWriter and by GNU tar (key.jpg + key.json files) stream back the same
    samples (key, image bytes, boxes) as yolokit's own."""
    import webdataset as wds

    ours = list(read_pieces(open_shards(shards / "val"), [(0, 0, 30), (1, 0, 10)]))
    with wds.ShardWriter(str(tmp_path / "wds-%06d.tar"), maxcount=25) as sink:
        for key, files in ours:
            sink.write({"__key__": key, **files})
    loose = tmp_path / "loose"
    loose.mkdir()
    for key, files in ours[:12]:
        for ext, data in files.items():
            (loose / f"{key}.{ext}").write_bytes(data)
    names = sorted(p.name for p in loose.iterdir())
    subprocess.run(["tar", "-cf", str(tmp_path / "gnu-000000.tar"), "-C", str(loose), *names], check=True)
    wds_set = open_shards(str(tmp_path / "wds-{000000..000001}.tar"))  # no shards.json: counted by reading
    assert wds_set.counts == [25, 15] and wds_set.class_names is None
    got = list(read_pieces(wds_set, pieces(wds_set.counts, [0, 1], 0, 40)))
    assert [k for k, _ in got] == [k for k, _ in ours]
    assert all(a == b for (_, a), (_, b) in zip(got, ours))
    gnu = open_shards(str(tmp_path / "gnu-000000.tar"))
    assert [(k, f) for k, f in read_pieces(gnu, [(0, 0, 12)])] == ours[:12]
    s = sample_of(*got[3])
    assert s.image.dtype == np.uint8 and s.image.shape[2] == 3 and s.boxes.shape[1] == 4


# ------------------------------------------------------------------------------------------- HTTP
@pytest.fixture()
def http_root(shards):
    """A local HTTP server on 127.0.0.1 serving the shards folder (a thread of this process)."""
    handler = functools.partial(_QuietHandler, directory=str(shards))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    paths: list = []

    def log_message(self, *args):
        _QuietHandler.paths.append(self.path)


def test_http_shards_stream_like_local_ones(shards, http_root, tmp_path, monkeypatch):
    url, _ = http_root
    monkeypatch.chdir(tmp_path)  # nothing may be written here (or anywhere): a stream, not a download
    _QuietHandler.paths.clear()
    remote = open_shards(f"{url}/train/train-{{000000..000005}}.tar")
    assert remote.counts == [30, 30, 30, 30, 30, 10] and remote.class_names == ["raccoon"]  # remote shards.json
    local = open_shards(shards / "train")
    plan = pieces(local.counts, [3, 0, 5], 20, 65)
    assert list(read_pieces(remote, plan)) == list(read_pieces(local, plan))
    assert "/train/shards.json" in _QuietHandler.paths and "/train/train-000003.tar" in _QuietHandler.paths
    assert list(tmp_path.iterdir()) == []
    # a training epoch over HTTP: every sample once, the same batches as from the files
    a = [b[2] for b in TrainStream(remote, 64, 16, workers=2, rank=0, world=1).loader(0)]
    b = [b[2] for b in TrainStream(local, 64, 16, workers=2, rank=0, world=1).loader(0)]
    assert [m["index"] for x in a for m in x] == [m["index"] for x in b for m in x]
    assert len({m["image_id"] for x in a for m in x}) == 160


def test_unreadable_shards_are_one_line_naming_the_url(shards, http_root, tmp_path, monkeypatch):
    """A shard that cannot be read -- no server, a 404, a truncated tar, no curl -- is a DataError naming the URL
    and why, never a traceback from inside webdataset."""
    from yolokit.data.shards import iter_shard
    from yolokit.errors import DataError

    url, _ = http_root
    (tmp_path / "cut.tar").write_bytes((shards / "train" / "train-000000.tar").read_bytes()[:5000])
    cases = [("http://127.0.0.1:9/train-000000.tar", "curl exit 7: nothing answers"),
             (f"{url}/train/nope.tar", "curl exit 22: the server answered with an HTTP error"),
             (str(tmp_path / "cut.tar"), "a damaged or truncated tar: unexpected end of data)"),
             (str(tmp_path / "missing.tar"), "no such file")]
    for shard, why in cases:
        with pytest.raises(DataError) as err:
            list(iter_shard(shard))
        assert str(err.value).startswith(f"{shard}: cannot read this shard") and why in str(err.value), err.value
    monkeypatch.setenv("PATH", str(tmp_path))  # no curl
    with pytest.raises(DataError, match="curl is not installed"):
        list(iter_shard(f"{url}/train/train-000000.tar"))


# ------------------------------------------------------------------------------------------- batches
def _keys(loader):
    return [m["index"] for _, _, metas in loader for m in metas]


def test_train_stream_epochs_cover_the_set_and_replay_exactly(shards):
    from yolokit.data.augment import AugmentConfig

    ss = open_shards(shards / "train")
    stream = TrainStream(ss, 64, 16, augment=AugmentConfig(), workers=2, rank=0, world=1)
    loader = stream.loader(1)
    assert len(loader) == 10
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(16, 3, 64, 64)] * 10
    keys = [m["index"] for b in batches for m in b[2]]
    assert sorted(keys) == [f"{i:08d}" for i in range(160)]  # keys: the samples' indices in the split
    # epoch 1 again from a fresh stream (a resumed run): the same samples, order and augmented pixels
    again = list(TrainStream(ss, 64, 16, augment=AugmentConfig(), workers=2, rank=0, world=1).loader(1))
    for x, y in zip(batches, again):
        torch.testing.assert_close(x[0], y[0], rtol=0, atol=0)
        torch.testing.assert_close(x[1], y[1], rtol=0, atol=0)
    assert _keys(stream.loader(2)) != keys  # another epoch, another order
    # workers change who reads what, not what an epoch holds
    assert sorted(_keys(TrainStream(ss, 64, 16, workers=0, rank=0, world=1).loader(1))) == sorted(keys)


def test_limit_and_multiscale(shards):
    ss = open_shards(shards / "train").limit(40)
    assert ss.counts == [30, 10] and ss.samples == 40
    batches = list(TrainStream(ss, 64, 16, multiscale=(64, 128), workers=0, rank=0, world=1).loader(0))
    assert [b[0].shape[0] for b in batches] == [16, 16, 8]
    assert all(b[0].shape[2] in (64, 96, 128) for b in batches)


def test_yaml_splits_and_validation_from_shards(shards, tmp_path):
    (tmp_path / "mixed.yaml").write_text(
        f"format: shards\ntrain: {shards}/train/train-{{000000..000005}}.tar\n"
        f"val: {{data: {CONFIGS / 'raccoon.yaml'}, split: val}}\n")
    assert open_split(tmp_path / "mixed.yaml", "train").class_names == ["raccoon"]
    folder_val = load_split(tmp_path / "mixed.yaml", "val")
    shard_val = load_split(shards / "data.yaml", "val")
    assert isinstance(shard_val, ShardSplit) and len(shard_val) == len(folder_val) == 40
    assert [r.image_id for r in shard_val.records] == [r.image_id for r in folder_val.records]
    np.testing.assert_array_equal(shard_val[5].image, folder_val[5].image)
    from yolokit.errors import ConfigError

    with pytest.raises(ConfigError, match="no split 'test'"):
        load_split(shards / "data.yaml", "test")


def _rank(rank, world, init, folder, out):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    stream = TrainStream(open_shards(folder).limit(150), 64, 16, workers=2)  # rank, world from the group
    keys = [[m["index"] for m in metas] for _, _, metas in stream.loader(0)]
    gathered = [None] * world
    dist.all_gather_object(gathered, keys)
    if rank == 0:
        Path(out).write_text(repr(gathered))
    dist.destroy_process_group()


def test_two_gloo_ranks_split_batches(shards, tmp_path):
    import torch.multiprocessing as mp

    out = tmp_path / "keys.txt"
    mp.start_processes(_rank, args=(2, f"file://{tmp_path / 'rdzv'}", str(shards / "train"), str(out)),
                       nprocs=2, join=True, start_method="fork")
    per_rank = eval(out.read_text())  # noqa: S307 (our own repr)
    assert [len(b) for b in per_rank] == [5, 5]  # 75 each: 4 x 16 + 11, the same number of steps
    # workers take runs of whole batches (2 and 3); the loader alternates them; the partial batch comes last
    assert [len(x) for x in per_rank[0]] == [len(x) for x in per_rank[1]] == [16, 16, 16, 16, 11]
    everything = [k for b in per_rank for x in b for k in x]
    assert len(everything) == len(set(everything)) == 150
