"""Streams over shards: a ``format: shards`` data YAML, :class:`TrainStream` (training batches for the
trainer, split across DDP ranks and DataLoader workers), :class:`ShardSplit` (a small split read from
shards into memory, for validation) and :class:`ShardStream` (any split's samples, streamed).

A shard data YAML names each split's shards (``yolokit convert --to shards`` writes one as ``OUT/data.yaml``)::

    format: shards
    names: [raccoon]                              # optional: else the shards' shards.json
    train: train/train-{000000..000099}.tar       # a brace pattern, a list of them, or http(s):// URLs;
                                                  # file names relative to this YAML
    val: val/val-{000000..000001}.tar             # shards too (read into memory once), or a folder split:
    # val: {data: ../raccoon.yaml, split: val}

**What an epoch is.** Every sample of the train shards once (:mod:`yolokit.data.shards`: the epoch's shard
order, shuffled from the seed and the epoch, is cut into one contiguous span per rank and per worker).
Each rank runs ``ceil((N // world) / batch)`` batches; its last batch may be partial and is kept. Only when
``N // world`` is a whole number of batches do the ranks that hold one extra sample drop it (at most
``world - 1`` samples an epoch). Batches are formed inside the workers from whole runs of the rank's span, so
no worker emits a partial batch before the end. Inside a worker, samples pass a seeded shuffle buffer
(``buffer`` encoded samples) before decoding. Everything depends only on (seed, epoch, rank, world, workers,
batch), so ``--resume`` from epoch k replays epoch k+1 exactly as an uninterrupted run reads it.

**Augmentation** is :class:`~yolokit.data.loader.TrainDataset`'s, on a window of the last ``window`` decoded
samples of the worker's stream: a stream has no random access, so mosaic and mixup partners are drawn
from that window instead of the whole set (what WebDataset pipelines do with their shuffle buffer).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from yolokit.data.dataset import DetectionDataset
from yolokit.data.shards import (Piece, ShardSet, dist_world, epoch_order, open_shards, pieces, rank_span,
                                 read_pieces, sample_of, worker_spans)

FORMAT = "shards"


# ----------------------------------------------------------------------------------------------- the YAML
def read_stream_spec(spec) -> tuple[dict, Path] | None:
    """``(mapping, folder)`` of a ``format: shards`` data YAML (path or dict), or None for any other
    description (those are :func:`yolokit.data.load_dataset`'s)."""
    if isinstance(spec, dict):
        data, base = spec, Path.cwd()
    else:
        path = Path(str(spec))
        if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
            return None
        from yolokit.errors import YolokitError
        from yolokit.fileio import read_yaml

        try:
            data = read_yaml(path, "dataset description")  # bounded, aliases bounded
        except YolokitError:
            return None  # load_dataset reports it
        base = path.resolve().parent
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data, base


def is_stream_spec(spec) -> bool:
    return read_stream_spec(spec) is not None


def _split_value(spec, split: str):
    from yolokit.errors import ConfigError

    data, base = read_stream_spec(spec)
    if split not in data:
        splits = sorted(k for k in data if k not in ("format", "names", "description"))
        raise ConfigError(f"{spec}: no split '{split}' (it names {', '.join(splits) or 'none'})")
    return data, base, data[split]


def open_split(spec, split: str) -> ShardSet:
    """The :class:`ShardSet` of ``split`` in a shard data YAML (class names: the YAML's ``names``, else the
    shards' manifest)."""
    from yolokit.errors import ConfigError

    data, base, value = _split_value(spec, split)
    if isinstance(value, dict):
        raise ConfigError(f"{spec}: split '{split}' is a folder dataset ({value}); training streams shards")
    shards = open_shards(value, base)
    names = data.get("names") or shards.class_names
    if not names:
        raise ConfigError(f"{spec}: no class names: add 'names: [...]' (the shards have no shards.json beside them)")
    return ShardSet(shards.urls, shards.counts, [str(n) for n in names])


def load_split(spec, split: str, limit: int = 0):
    """``split`` of a shard data YAML as a dataset for evaluation: a folder split (``{data, split}``) through
    :func:`yolokit.data.load_dataset`, or shards read into memory (:class:`ShardSplit`). ``limit``: the first
    images only (0: all)."""
    from yolokit.data import load_dataset

    data, base, value = _split_value(spec, split)
    if isinstance(value, dict):
        from yolokit.errors import ConfigError

        if set(value) - {"data", "split"} or "data" not in value:
            raise ConfigError(f"{spec}: split '{split}': a folder split is {{data: DATA.yaml, split: NAME}}, "
                              f"got {value}")
        path = Path(value["data"])
        ds = load_dataset(path if path.is_absolute() else base / path, value.get("split", split), decode=True)
        if limit and limit < len(ds):
            ds.records = ds.records[:limit]
        return ds
    return ShardSplit(open_split(spec, split).limit(limit), split=split, source=str(spec))


class ShardSplit(DetectionDataset):
    """A split read from shards into memory (the encoded image bytes; decoded on ``[i]``): a
    :class:`~yolokit.data.dataset.DetectionDataset` for :func:`yolokit.eval.evaluate_model` (records,
    ``[i]`` -> Sample, ``class_names``). Meant for validation sets; stream large splits instead."""

    def __init__(self, shards: ShardSet, split: str = "val", source: str = "<shards>"):
        from yolokit.data.sample import ProblemReport, Record

        records, self._bytes = [], []
        plan = pieces(shards.counts, list(range(len(shards.urls))), 0, shards.samples)
        for key, files in read_pieces(shards, plan):
            meta = sample_of(key, files, decode=False)
            records.append(Record(path=Path(meta["file"]), image_id=meta["image_id"],
                                  size=tuple(meta["size"]), boxes=meta["boxes"], labels=meta["labels"],
                                  difficult=meta["difficult"], iscrowd=meta["iscrowd"]))
            self._bytes.append((key, files))
        super().__init__(records, list(shards.class_names or []), ProblemReport(), fmt=FORMAT, split=split,
                         source=source)

    def __getitem__(self, i: int):
        return sample_of(*self._bytes[i])


# ----------------------------------------------------------------------------------------------- batches
class _Window:
    """The last ``capacity`` decoded samples of a stream, as the dataset a TrainDataset augments from."""

    def __init__(self, capacity: int, class_names):
        self.capacity, self.class_names = capacity, class_names
        self.samples, self.records, self.seen = [], [], 0

    def push(self, sample) -> int:
        """Add ``sample`` (over the oldest once full); returns its index."""
        record = SimpleNamespace(image_id=sample.image_id, path=sample.path, size=sample.orig_size,
                                 iscrowd=sample.iscrowd, difficult=sample.difficult)
        i = self.seen % self.capacity
        if i == len(self.samples):
            self.samples.append(sample)
            self.records.append(record)
        else:
            self.samples[i], self.records[i] = sample, record
        self.seen += 1
        return i

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.samples[i]


def _identity(batch):
    return batch


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


class TrainStream(torch.utils.data.IterableDataset):
    """Training batches ``(images, targets, metas)`` (:func:`yolokit.data.loader.collate`) streamed from a
    :class:`ShardSet`: this rank's share of every epoch (see the module docstring), ``batches`` of them.

    ``augment``: an :class:`~yolokit.data.augment.AugmentConfig` or None (letterbox only). ``multiscale``:
    None or a ``(min, max)`` range stepped by 32, one size per batch drawn from (seed, epoch, rank, batch).
    ``rank``/``world`` default to ``torch.distributed``'s (create the stream after ``init_process_group``)."""

    def __init__(self, shards: ShardSet, size: int = 416, batch: int = 16, *, augment=None, multiscale=None,
                 seed: int = 0, shuffle: bool = True, workers: int = 2, rank: int | None = None,
                 world: int | None = None, buffer: int = 256, window: int = 64,
                 drop_crowd: bool = True, drop_difficult: bool = True):
        self.shards, self.size, self.batch = shards, int(size), int(batch)
        self.augment, self.seed, self.shuffle, self.workers = augment, int(seed), shuffle, int(workers)
        self.sizes = [self.size] if multiscale is None else list(range(int(multiscale[0]), int(multiscale[1]) + 1, 32))
        if rank is None or world is None:
            rank, world = dist_world()
        self.rank, self.world = rank, world
        self.buffer, self.window = max(1, buffer), max(4, window)
        self.drop_crowd, self.drop_difficult = drop_crowd, drop_difficult
        self.epoch = 0

    @property
    def class_names(self):
        return self.shards.class_names

    def __len__(self) -> int:
        return self.shards.samples  # the whole split (the trainer's reports); this rank's batches: .batches

    @property
    def span(self):
        return rank_span(self.shards.samples, self.rank, self.world, self.batch)

    @property
    def batches(self) -> int:
        """Batches this rank runs per epoch (the same on every rank)."""
        return self.span.batches

    def summary(self) -> str:
        dropped = self.shards.samples - sum(rank_span(self.shards.samples, r, self.world, self.batch).take
                                            for r in range(self.world))
        return (f"{self.shards.samples} images streamed from {len(self.shards.urls)} shard(s), {self.batches} "
                f"batches of {self.batch} per process per epoch"
                + (f" ({dropped} sample(s) an epoch left over to keep the ranks in step)" if dropped else ""))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def loader(self, epoch: int):
        """This epoch's batches (``len`` = :attr:`batches`)."""
        self.set_epoch(epoch)
        return _EpochLoader(self)

    # -------------------------------------------------------------------------------------- one worker
    def _worker_part(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        span = self.span
        a, b = worker_spans(span, workers, self.batch)[worker]
        first_batch = (a - span.start) // self.batch
        return worker, pieces(self.shards.counts, epoch_order(len(self.shards.urls), self.seed, self.epoch,
                                                              self.shuffle), a, b), first_batch

    def _shuffled(self, plan, rng: np.random.Generator):
        """The plan's samples (encoded) through a shuffle buffer of ``self.buffer``."""
        buf = []
        for item in read_pieces(self.shards, plan):
            if len(buf) < self.buffer:
                buf.append(item)
                continue
            j = int(rng.integers(len(buf)))
            buf[j], item = item, buf[j]
            yield item
        rng.shuffle(buf)
        yield from buf

    def __iter__(self):
        from yolokit.data.loader import TrainDataset, collate

        worker, plan, batch_index = self._worker_part()
        window = _Window(self.window, self.class_names)
        td = TrainDataset(window, self.size, augment=self.augment or False, drop_crowd=self.drop_crowd,
                          drop_difficult=self.drop_difficult)
        td.reseed(_seed(self.seed, self.epoch, self.rank, worker, 1))
        rng = np.random.default_rng(_seed(self.seed, self.epoch, self.rank, worker, 2))
        items, size = [], None
        for key, files in self._shuffled(plan, rng):
            if size is None:
                size = self.sizes[_seed(self.seed, self.epoch, self.rank, batch_index, 3) % len(self.sizes)]
            image, boxes, labels, meta = td[(window.push(sample_of(key, files)), size)]
            meta["index"] = key
            items.append((image, boxes, labels, meta))
            if len(items) == self.batch:
                yield collate(items)
                items, size, batch_index = [], None, batch_index + 1
        if items:
            yield collate(items)


class _EpochLoader:
    """A DataLoader over a :class:`TrainStream`'s batches, with the right ``len``."""

    def __init__(self, stream: TrainStream):
        self.stream = stream

    def __len__(self) -> int:
        return self.stream.batches

    def __iter__(self):
        s = self.stream
        workers = min(s.workers, s.batches)  # a worker without a batch would only start up for nothing
        return iter(torch.utils.data.DataLoader(s, batch_size=None, num_workers=workers, collate_fn=_identity,
                                                pin_memory=torch.cuda.is_available()))


def stream_data(spec, train_split: str = "train", val_split: str = "val", *, size: int = 416, batch: int = 16,
                augment=None, multiscale=None, seed: int = 0, workers: int = 2, limit_train: int = 0,
                limit_val: int = 0, rank: int | None = None, world: int | None = None):
    """The trainer's data from a shard data YAML: ``(TrainStream, validation dataset)``."""
    train = TrainStream(open_split(spec, train_split).limit(limit_train), size, batch, augment=augment,
                        multiscale=multiscale, seed=seed, workers=workers, rank=rank, world=world)
    return train, load_split(spec, val_split, limit_val)


# ----------------------------------------------------------------------------------------------- samples
class ShardStream(torch.utils.data.IterableDataset):
    """An ``IterableDataset`` of the samples of one split's shards (every sample once per epoch, split across
    ranks and DataLoader workers as :mod:`yolokit.data.shards` says). ``source``: anything :func:`open_shards` takes.

    ``size``: letterbox to ``size`` and yield :func:`yolokit.data.loader.collate` items ``(image, boxes,
    labels, meta)`` -- the eval pipeline of :class:`~yolokit.data.loader.TrainDataset`, crowd and difficult
    boxes left out of the targets as there; ``size=None`` yields :class:`~yolokit.data.sample.Sample`;
    ``decode=False`` yields only the metadata dicts (auditing, counting). ``rank``/``world_size`` default
    to ``torch.distributed``'s when it is initialised (create the stream after ``init_process_group``). Call
    :meth:`set_epoch` before each epoch when ``shuffle`` (the shard order is drawn from ``seed + epoch``;
    samples keep their order inside a shard). Training batches: :class:`TrainStream`.
    """

    def __init__(self, source, size: int | None = None, *, shuffle: bool = False, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None, decode: bool = True,
                 drop_crowd: bool = True, drop_difficult: bool = True):
        self.shards = source if isinstance(source, ShardSet) else open_shards(source)
        self.size, self.shuffle, self.seed, self.decode = size, shuffle, seed, decode
        if rank is None or world_size is None:
            rank, world_size = dist_world()  # read here, in the main process: workers are not in the group
        self.rank, self.world_size = rank, world_size
        self.drop_crowd, self.drop_difficult = drop_crowd, drop_difficult
        self.epoch = 0

    @property
    def class_names(self) -> list[str] | None:
        return self.shards.class_names

    def __len__(self) -> int:
        return self.shards.samples  # the whole split; a consumer sees its share of it

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def plan(self, worker: int = 0, workers: int = 1) -> list[Piece]:
        """The shard reads of one worker of this rank in this epoch."""
        span = rank_span(self.shards.samples, self.rank, self.world_size)
        a, b = worker_spans(span, workers)[worker]
        order = epoch_order(len(self.shards.urls), self.seed, self.epoch, self.shuffle)
        return pieces(self.shards.counts, order, a, b)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        plan = self.plan(info.id, info.num_workers) if info else self.plan()
        for key, files in read_pieces(self.shards, plan):
            yield self._item(key, files)

    def _item(self, key: str, files: dict):
        s = sample_of(key, files, self.decode)
        if not self.decode or self.size is None:
            return s
        from yolokit.ops.letterbox import letterbox, letterbox_boxes

        keep = np.ones(len(s.labels), bool)
        if self.drop_crowd:
            keep &= ~s.iscrowd
        if self.drop_difficult:
            keep &= ~s.difficult
        img, scale, pad = letterbox(s.image, self.size)
        out_meta = {"index": key, "image_id": s.image_id, "path": str(s.path), "orig_size": s.orig_size,
                    "size": self.size, "scale": scale, "pad": pad}
        return img, letterbox_boxes(s.boxes[keep], scale, pad), s.labels[keep], out_meta


def build_shard_loader(stream: ShardStream, batch_size: int = 16, workers: int = 2):
    """A ``DataLoader`` of :func:`~yolokit.data.loader.collate` batches streamed from ``stream`` (with a
    ``size``). Each worker reads its own part (see :mod:`yolokit.data.shards`); each worker's last batch may be
    partial (training batches without that: :class:`TrainStream`)."""
    from torch.utils.data import DataLoader

    from yolokit.data.loader import collate

    return DataLoader(stream, batch_size=batch_size, num_workers=workers, collate_fn=collate,
                      pin_memory=torch.cuda.is_available())
