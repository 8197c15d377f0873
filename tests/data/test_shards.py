"""WebDataset-style shards: written from a real dataset, streamed back identical, and dealt to DDP ranks and
DataLoader workers so that every sample is seen exactly once per epoch."""

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from yolokit.cli import main
from yolokit.data import load_dataset
from yolokit.data.images import read_image
from yolokit.data.shards import write_shards
from yolokit.data.stream import ShardStream, build_shard_loader

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


@pytest.fixture(scope="module")
def raccoon_shards(tmp_path_factory):
    from tests.conftest import GET_DATA, SHARED

    if not SHARED.is_dir():
        pytest.skip(GET_DATA.format(path=SHARED))
    out = tmp_path_factory.mktemp("shards")
    # 160 train images: 30 per shard -> 6 shards (5 x 30 + 10); 100 per shard -> 2 shards
    write_shards(CONFIGS / "raccoon.yaml", out / "s30", ["train"], shard_size=30)
    write_shards(CONFIGS / "raccoon.yaml", out / "s100", ["train"], shard_size=100)
    return out


def test_shards_are_webdataset_tars_and_stream_back_the_dataset(raccoon_shards):
    folder = raccoon_shards / "s30" / "train"
    tars = sorted(folder.glob("*.tar"))
    assert len(tars) == 6
    with tarfile.open(tars[0]) as tf:
        names = tf.getnames()
    assert len(names) == 60 and names[0].split(".")[0] == names[1].split(".")[0]  # key.jpg + key.json pairs
    assert (raccoon_shards / "s30" / "data.yaml").read_text().splitlines()[-1] == \
        "train: train/train-{000000..000005}.tar"  # the data YAML `yolokit train --data` takes
    ds = load_dataset(CONFIGS / "raccoon.yaml", "train")
    samples = list(ShardStream(folder))
    assert len(samples) == len(ds) == 160
    by_id = {r.image_id: r for r in ds.records}
    for s in samples[:: 40]:
        r = by_id[s.image_id]
        np.testing.assert_array_equal(s.image, read_image(r.path))  # the same pixels as the folder
        np.testing.assert_allclose(s.boxes, r.boxes.astype(np.float32))
        np.testing.assert_array_equal(s.labels, r.labels)
    assert sum(len(s.boxes) for s in samples) == ds.num_boxes


def test_collated_batches_from_shards(raccoon_shards):
    loader = build_shard_loader(ShardStream(raccoon_shards / "s30" / "train", 64), batch_size=16, workers=0)
    images, targets, metas = next(iter(loader))
    assert images.shape == (16, 3, 64, 64) and images.dtype == torch.float32
    assert targets.shape[1] == 6 and (targets[:, 2:] >= 0).all() and (targets[:, 2:] <= 64).all()


@pytest.mark.parametrize("shards", ["s30", "s100"])
def test_workers_see_every_sample_once_per_epoch(raccoon_shards, shards):
    stream = ShardStream(raccoon_shards / shards / "train", decode=False, shuffle=True, seed=3)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
    epochs = []
    for epoch in range(2):
        stream.set_epoch(epoch)
        epochs.append([m["image_id"] for m in loader])
    for ids in epochs:
        assert len(ids) == 160 and len(set(ids)) == 160
    assert set(epochs[0]) == set(epochs[1])


def _rank(rank, world, init, manifest, out):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    stream = ShardStream(manifest, decode=False)  # rank and world size from torch.distributed
    ids = [m["image_id"] for m in torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)]
    gathered = [None] * world
    dist.all_gather_object(gathered, ids)
    if rank == 0:
        Path(out).write_text(repr(gathered))
    dist.destroy_process_group()


@pytest.mark.parametrize("shards", ["s30"])
def test_two_gloo_ranks_union_is_the_dataset(raccoon_shards, tmp_path, shards):
    import torch.multiprocessing as mp

    out = tmp_path / "ids.txt"
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.start_processes(_rank, args=(2, init, str(raccoon_shards / shards / "train"), str(out)), nprocs=2,
                       join=True, start_method="fork")  # fork: no second torch import per rank
    per_rank = eval(out.read_text())  # noqa: S307 (our own repr of two lists of str)
    assert all(per_rank)  # both ranks got work
    everything = per_rank[0] + per_rank[1]
    assert len(everything) == len(set(everything)) == 160  # disjoint, and together the whole split
    ds = load_dataset(CONFIGS / "raccoon.yaml", "train", check_images=False)
    assert set(everything) == {r.image_id for r in ds.records}


def test_convert_cli_writes_shards(shared, tmp_path, capsys):
    assert main(["convert", str(CONFIGS / "voc2012_rodm.yaml"), "--to", "shards", "--shard-size", "40",
                 "--out", str(tmp_path)]) == 0
    assert "val: 100 samples in 3 shards" in capsys.readouterr().out
    assert len(list(ShardStream(tmp_path / "val", decode=False))) == 100
