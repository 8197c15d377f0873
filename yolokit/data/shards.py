"""WebDataset-style tar shards: :func:`write_shards` (``yolokit convert --to shards``) and :class:`ShardStream`,
which streams them and splits the shards across DDP ranks and DataLoader workers.

Format (the WebDataset convention, written with the standard library's ``tarfile``; the ``webdataset``
package is not needed to write or read it, and can read it): a shard is a plain tar whose members are
grouped by *key* (the name up to the first dot), one sample per key, in order::

    000000000009.jpg    the image file's bytes, unchanged (no re-encoding: same pixels as the folder)
    000000000009.json   {"image_id", "file", "size": [h, w], "boxes": [[x1, y1, x2, y2], ...] (xyxy
                        pixels, yolokit's convention), "labels", "difficult", "iscrowd", "class_names"?}

Keys are the sample's index in the split (zero-padded), so file names with dots or duplicates across
folders cannot collide. Next to the shards, ``shards.json`` lists them with their sample counts and the
class names. Why tar: one sequential read per shard (object stores, network file systems and spinning
disks serve that far better than 100k small files), and a shard is the unit of work to hand out.

Once per epoch, exactly: the shard list (shuffled by ``seed + epoch`` when ``shuffle``) is dealt to the
``world_size x num_workers`` consumers as ``shards[consumer::consumers]``; a consumer is
``rank * num_workers + worker_id``. With fewer shards than consumers every consumer reads every shard and
keeps every ``consumers``-th sample instead (correct, but each shard is read ``consumers`` times: write
more, smaller shards). Ranks may get different sample counts when shards differ in size; a DDP trainer
must then stop at the smallest count (or use ``samples_per_rank``-long epochs) so no rank waits in an
all-reduce.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import torch

from yolokit.fileio import write_text_atomic

MANIFEST = "shards.json"


def _tar_add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644  # mtime 0: the same data gives the same bytes
    tf.addfile(info, io.BytesIO(data))


def write_shards(spec, out_dir, splits: list[str] | None = None, shard_size: int = 1000) -> dict:
    """Write every split of ``spec`` (or ``splits``) as ``OUT/<split>/<split>-NNNNNN.tar`` + ``shards.json``.

    Every image is decoded once here (the one decoder, :func:`yolokit.data.images.read_image`): images that
    fail are left out, counted and listed, so the stream only meets good bytes. Returns
    ``{"splits": {split: {"samples", "shards", "skipped", "manifest"}}, "problems": [...]}``.
    """
    from yolokit.data.config import load_dataset, read_spec
    from yolokit.data.images import read_image
    from yolokit.errors import ConfigError, DataError

    if shard_size < 1:
        raise ConfigError(f"--shard-size must be at least 1, got {shard_size}")
    data, _, _ = read_spec(spec)
    out = Path(out_dir)
    result = {"splits": {}, "problems": []}
    for split in splits or list(data["splits"]):
        ds = load_dataset(spec, split)
        result["problems"].extend(ds.problems)
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        shards, skipped, tf, count = [], [], None, 0
        for i, r in enumerate(ds.records):
            try:
                read_image(r.path)
            except DataError as exc:
                skipped.append(str(exc))
                continue
            if tf is None or count == shard_size:
                if tf is not None:
                    tf.close()
                shards.append({"file": f"{split}-{len(shards):06d}.tar", "samples": 0})
                tf, count = tarfile.open(folder / shards[-1]["file"], "w"), 0
            key = f"{i:08d}"
            meta = {"image_id": r.image_id if isinstance(r.image_id, (int, str)) else str(r.image_id),
                    "file": r.path.name, "size": [int(v) for v in r.size], "boxes": r.boxes.tolist(),
                    "labels": r.labels.tolist(), "difficult": r.difficult.tolist(), "iscrowd": r.iscrowd.tolist()}
            _tar_add(tf, f"{key}{r.path.suffix.lower()}", r.path.read_bytes())
            _tar_add(tf, f"{key}.json", json.dumps(meta).encode())
            count += 1
            shards[-1]["samples"] += 1
        if tf is not None:
            tf.close()
        manifest = {"format": "webdataset-tar (yolokit)", "split": split, "source": str(ds.source),
                    "class_names": ds.class_names, "samples": sum(s["samples"] for s in shards),
                    "shards": shards, "skipped": skipped}
        write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        result["splits"][split] = {"samples": manifest["samples"], "shards": len(shards), "skipped": len(skipped),
                                   "manifest": folder / MANIFEST}
    return result


def read_manifest(path) -> tuple[dict, Path]:
    """``(manifest, folder)`` from a ``shards.json`` or the folder holding it."""
    from yolokit.errors import ConfigError

    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    try:
        return json.loads(path.read_text()), path.parent
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: shard manifest not found (write shards with `yolokit convert --to shards`)") from exc


def iter_shard(path: Path):
    """``(key, {extension: bytes})`` for each sample of one tar shard, streamed in file order."""
    key, files = None, {}
    with tarfile.open(path, "r|") as tf:  # "r|": a pure stream, no seeking (works on pipes and object stores)
        for m in tf:
            if not m.isfile():
                continue
            base = m.name.rsplit("/", 1)[-1]
            k, _, ext = base.partition(".")
            if k != key and files:
                yield key, files
                files = {}
            key = k
            files[ext] = tf.extractfile(m).read()
    if files:
        yield key, files


def _decode(data: bytes) -> np.ndarray:
    # Shards hold only images that the dataset decoder accepted at write time (write_shards), so this
    # is the plain decode of known-good bytes: RGB, stored pixel order (no EXIF rotation), as read_image.
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.array(im.convert("RGB"), dtype=np.uint8)


def consumer_of(rank: int, world_size: int, worker: int, workers: int) -> tuple[int, int]:
    """``(index, count)`` of this reader among every reader of the epoch (ranks x DataLoader workers)."""
    return rank * workers + worker, world_size * workers


def assign(n_shards: int, index: int, count: int, order: list[int] | None = None) -> tuple[list[int], bool]:
    """Shards read by consumer ``index`` of ``count``, and whether it must keep only every ``count``-th
    sample (fewer shards than consumers)."""
    order = list(range(n_shards)) if order is None else order
    if n_shards >= count:
        return order[index::count], False
    return order, True


class ShardStream(torch.utils.data.IterableDataset):
    """An ``IterableDataset`` over the shards of one split.

    ``size``: letterbox to ``size`` and yield :func:`yolokit.data.loader.collate` items ``(image, boxes,
    labels, meta)`` -- the eval pipeline of :class:`~yolokit.data.loader.TrainDataset`, crowd and difficult
    boxes left out of the targets as there; ``size=None`` yields :class:`~yolokit.data.sample.Sample`;
    ``decode=False`` yields only the metadata dicts (auditing, counting). ``rank``/``world_size`` default
    to ``torch.distributed``'s when it is initialised (create the stream after ``init_process_group``). Call :meth:`set_epoch` before each epoch when
    ``shuffle`` (the shard order is drawn from ``seed + epoch``; samples keep their order inside a shard).
    """

    def __init__(self, manifest, size: int | None = None, *, shuffle: bool = False, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None, decode: bool = True,
                 drop_crowd: bool = True, drop_difficult: bool = True):
        self.manifest, self.folder = read_manifest(manifest)
        self.size, self.shuffle, self.seed, self.decode = size, shuffle, seed, decode
        if rank is None or world_size is None:
            # read here, in the main process: DataLoader workers are not part of the process group
            import torch.distributed as dist

            on = dist.is_available() and dist.is_initialized()
            rank, world_size = (dist.get_rank(), dist.get_world_size()) if on else (0, 1)
        self.rank, self.world_size = rank, world_size
        self.drop_crowd, self.drop_difficult = drop_crowd, drop_difficult
        self.epoch = 0

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["class_names"])

    def __len__(self) -> int:
        return int(self.manifest["samples"])  # the whole split; a consumer sees its share of it

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _consumer(self) -> tuple[int, int]:
        info = torch.utils.data.get_worker_info()
        return consumer_of(self.rank, self.world_size, info.id if info else 0, info.num_workers if info else 1)

    def __iter__(self):
        index, count = self._consumer()
        shards = self.manifest["shards"]
        order = list(range(len(shards)))
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1000003 + self.epoch)
            order = torch.randperm(len(shards), generator=g).tolist()
        mine, strided = assign(len(shards), index, count, order)
        k = -1
        for s in mine:
            for key, files in iter_shard(self.folder / shards[s]["file"]):
                k += 1
                if strided and k % count != index:
                    continue
                yield self._item(key, files)

    def _item(self, key: str, files: dict):
        from yolokit.data.sample import Sample

        meta = json.loads(files["json"])
        if not self.decode:
            return meta
        ext = next(e for e in files if e != "json")
        image = _decode(files[ext])
        n = len(meta["labels"])
        boxes = np.asarray(meta["boxes"], np.float32).reshape(n, 4)
        labels = np.asarray(meta["labels"], np.int64).reshape(n)
        difficult = np.asarray(meta["difficult"], bool).reshape(n)
        iscrowd = np.asarray(meta["iscrowd"], bool).reshape(n)
        if self.size is None:
            return Sample(image=image, boxes=boxes, labels=labels, image_id=meta["image_id"], path=Path(meta["file"]),
                          orig_size=tuple(meta["size"]), difficult=difficult, iscrowd=iscrowd)
        from yolokit.data.transforms import letterbox, letterbox_boxes

        keep = np.ones(n, bool)
        if self.drop_crowd:
            keep &= ~iscrowd
        if self.drop_difficult:
            keep &= ~difficult
        img, scale, pad = letterbox(image, self.size)
        out_meta = {"index": key, "image_id": meta["image_id"], "path": meta["file"], "orig_size": tuple(meta["size"]),
                    "size": self.size, "scale": scale, "pad": pad}
        return img, letterbox_boxes(boxes[keep], scale, pad), labels[keep], out_meta


def build_shard_loader(stream: ShardStream, batch_size: int = 16, workers: int = 2):
    """A ``DataLoader`` of :func:`~yolokit.data.loader.collate` batches streamed from ``stream`` (with a
    ``size``). Each worker reads its own shards (see the module docstring)."""
    from torch.utils.data import DataLoader

    from yolokit.data.loader import collate

    return DataLoader(stream, batch_size=batch_size, num_workers=workers, collate_fn=collate,
                      pin_memory=torch.cuda.is_available())
