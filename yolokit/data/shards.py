"""WebDataset tar shards: :func:`write_shards` (``yolokit convert --to shards``), :func:`open_shards` (a folder,
a ``shards.json``, brace patterns or ``http://`` URLs -> a :class:`ShardSet`), the once-per-epoch split of a
shard set across DDP ranks and DataLoader workers (:func:`rank_span`, :func:`worker_spans`, :func:`pieces`),
and reading it (the sample streams over it: :mod:`yolokit.data.stream`).

Format (the WebDataset convention; read and written with the ``webdataset`` package): a shard is a plain tar
whose members are grouped by *key* (the name up to the first dot), one sample per key, in order::

    00000009.jpg    the image file's bytes, unchanged (no re-encoding: same pixels as the folder)
    00000009.json   {"image_id", "file", "size": [h, w], "boxes": [[x1, y1, x2, y2], ...] (xyxy pixels,
                    yolokit's convention), "labels", "difficult", "iscrowd"}

Keys are the sample's index in the split (zero-padded), so file names with dots or duplicates across
folders cannot collide. Next to the shards, ``shards.json`` lists them with their sample counts and the
class names; ``OUT/data.yaml`` names every split's shards as a brace pattern (``yolokit train --data``). Why
tar: one sequential read per shard (object stores, network file systems and HTTP servers serve that far
better than 100k small files), and shards are the unit of work that is dealt out.

Why the ``webdataset`` package rather than our own ``tarfile`` loop: it is the format's reference reader
and writer, so shards written elsewhere read here and ours read there, by construction; it opens
``http(s)://``, ``pipe:`` and object-store URLs as streams (``webdataset.gopen``: ``curl`` for HTTP, no local
copy); and the grouping of members into samples is the tested one. Both readers are ``tarfile`` streams
underneath: measured equal within noise (BENCHMARKS.md, "Training from shards").

**One epoch, exactly once.** The epoch's shard order (shuffled from ``seed`` and the epoch when ``shuffle``)
makes one sequence of ``N`` samples. Rank ``r`` of ``world`` takes the contiguous span
``[r * N // world, (r + 1) * N // world)`` of it (ranks differ by at most one sample); its DataLoader workers
split that span again into contiguous parts (:func:`worker_spans`). A part reads only the shards it
overlaps: whole shards, except at its two ends, where a shard shared with the neighbouring part is read up
to (or skipped up to) the boundary. So every sample is read by exactly one worker of one rank, each worker
reads distinct shards except at most the two it shares at its ends, and nothing is repeated or left out.
Which samples a training epoch drops is :func:`rank_span`'s ``batches`` rule.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from yolokit.data.images import decode_image
from yolokit.fileio import write_text_atomic

MANIFEST = "shards.json"
URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http://, https://, pipe:, s3:// ... (not C:\ on Windows)


# ----------------------------------------------------------------------------------------------- writing
def write_shards(spec, out_dir, splits: list[str] | None = None, shard_size: int = 1000) -> dict:
    """Write every split of ``spec`` (or ``splits``) as ``OUT/<split>/<split>-NNNNNN.tar`` + ``shards.json``,
    and ``OUT/data.yaml`` naming them (``format: shards``, one brace pattern per split).

    Every image is decoded once here (the one decoder, :func:`yolokit.data.images.read_image`): images that
    fail are left out, counted and listed, so the stream only meets good bytes. Returns
    ``{"splits": {split: {"samples", "shards", "skipped", "manifest"}}, "problems": [...], "yaml": path}``.
    """
    import webdataset as wds

    from yolokit.data.config import read_spec
    from yolokit.data.load import load_dataset
    from yolokit.data.images import read_image
    from yolokit.errors import ConfigError, DataError

    if shard_size < 1:
        raise ConfigError(f"--shard-size must be at least 1, got {shard_size}")
    data, _, _ = read_spec(spec)
    out = Path(out_dir)
    result = {"splits": {}, "problems": []}
    names = None
    for split in splits or list(data["splits"]):
        ds = load_dataset(spec, split)
        names = names or ds.class_names
        result["problems"].extend(ds.problems)
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        shards, skipped, writer, count = [], [], None, 0
        for i, r in enumerate(ds.records):
            try:
                read_image(r.path)
            except DataError as exc:
                skipped.append(str(exc))
                continue
            if writer is None or count == shard_size:
                if writer is not None:
                    writer.close()
                shards.append({"file": f"{split}-{len(shards):06d}.tar", "samples": 0})
                # mtime 0, fixed owner and mode: the same data gives the same bytes
                writer, count = wds.TarWriter(str(folder / shards[-1]["file"]), encoder=False, mtime=0.0,
                                              user="yolokit", group="yolokit", mode=0o644), 0
            meta = {"image_id": r.image_id if isinstance(r.image_id, (int, str)) else str(r.image_id),
                    "file": r.path.name, "size": [int(v) for v in r.size], "boxes": r.boxes.tolist(),
                    "labels": r.labels.tolist(), "difficult": r.difficult.tolist(), "iscrowd": r.iscrowd.tolist()}
            writer.write({"__key__": f"{i:08d}", r.path.suffix.lower().lstrip("."): r.path.read_bytes(),
                          "json": json.dumps(meta).encode()})
            count += 1
            shards[-1]["samples"] += 1
        if writer is not None:
            writer.close()
        manifest = {"format": "webdataset-tar (yolokit)", "split": split, "source": str(ds.source),
                    "class_names": ds.class_names, "samples": sum(s["samples"] for s in shards),
                    "shards": shards, "skipped": skipped}
        write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        result["splits"][split] = {"samples": manifest["samples"], "shards": len(shards), "skipped": len(skipped),
                                   "manifest": folder / MANIFEST}
    lines = ["# written by `yolokit convert --to shards`: `yolokit train --data` this file", "format: shards",
             f"names: {json.dumps(list(names or []))}"]
    for split, s in result["splits"].items():
        if s["shards"]:
            lines.append(f"{split}: {split}/{split}-{{000000..{s['shards'] - 1:06d}}}.tar")
    result["yaml"] = out / "data.yaml"
    write_text_atomic(result["yaml"], "\n".join(lines) + "\n")
    return result


# ----------------------------------------------------------------------------------------------- reading
def is_url(name) -> bool:
    return bool(URL_RE.match(str(name))) and not re.match(r"^[a-z]:[\\/]", str(name), re.I)


def expand(patterns, base: Path | None = None) -> list[str]:
    """Shard names from a brace pattern (``train-{000000..000099}.tar``) or a list of them; ``$VAR`` and
    ``${VAR}`` come from the environment (``http://$NODE0:8000/...``). Relative file names are taken from
    ``base`` (the data YAML's folder)."""
    import os

    import braceexpand

    out = []
    for p in [patterns] if isinstance(patterns, (str, Path)) else list(patterns):
        for name in braceexpand.braceexpand(os.path.expandvars(str(p))):
            if not is_url(name) and base is not None and not Path(name).is_absolute():
                name = str(Path(base) / name)
            out.append(name)
    return out


def open_url(url: str):
    """A binary stream of ``url`` (a file name, ``http(s)://`` -- streamed by ``curl``, no local copy --,
    ``pipe:CMD`` ...), through ``webdataset.gopen``."""
    import webdataset as wds

    return wds.gopen(str(url), "rb")


def iter_shard(url, limit: int | None = None):
    """``(key, {extension: bytes})`` for each sample of one shard, streamed in file order (webdataset's tar
    reader and key grouping); stops after ``limit`` samples (the rest of the shard is not read)."""
    from webdataset.tariterators import group_by_keys, tar_file_expander

    if limit is not None and limit <= 0:
        return
    try:
        stream = open_url(url)
        try:
            n = 0
            for sample in group_by_keys(tar_file_expander([{"url": str(url), "stream": stream}])):
                key = sample["__key__"].rsplit("/", 1)[-1]
                yield key, {k: v for k, v in sample.items() if not k.startswith("__")}
                n += 1
                if limit is not None and n >= limit:
                    return
        finally:
            stream.close()
    except (OSError, ValueError, tarfile.TarError) as exc:
        raise read_failure(url, exc) from None


#: what curl's exit status means (``curl -f``: an HTTP status >= 400 is exit 22)
CURL_EXITS = {6: "the host name does not resolve", 7: "nothing answers at that address and port",
              22: "the server answered with an HTTP error (404: no such shard)", 28: "the connection timed out",
              56: "the connection broke while reading", 127: "curl is not installed (apt install curl)"}


def read_failure(url, exc: Exception):
    """A one-line :class:`~yolokit.errors.DataError` for a shard that could not be read: the URL and why."""
    from yolokit.errors import DataError

    text = str(exc)
    m = re.search(r"exit (\d+)", text) if "curl" in text else None
    if m:
        code = int(m.group(1))
        reason = f"curl exit {code}: {CURL_EXITS.get(code, 'see man curl, EXIT CODES')}"
    elif isinstance(exc, FileNotFoundError):
        reason = CURL_EXITS[127] if exc.filename == "curl" else "no such file"
    elif isinstance(exc, tarfile.TarError):
        first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else text
        reason = f"a damaged or truncated tar: {first.split(' @ ')[0][:120]}"
    else:
        reason = f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else 'unreadable'}"
    return DataError(f"{url}: cannot read this shard ({reason})")


def read_manifest(path) -> tuple[dict, Path]:
    """``(manifest, folder)`` from a ``shards.json`` or the folder holding it."""
    from yolokit.errors import ConfigError

    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    try:
        return json.loads(path.read_text()), path.parent
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: shard manifest not found (write shards with `yolokit convert --to shards`)") \
            from exc


@dataclass
class ShardSet:
    """The shards of one split: ``urls`` (file names or URLs), their sample ``counts``, and the class names
    when the shards' ``shards.json`` gives them."""

    urls: list[str]
    counts: list[int]
    class_names: list[str] | None = None

    @property
    def samples(self) -> int:
        return int(sum(self.counts))

    def limit(self, n: int) -> "ShardSet":
        """The first ``n`` samples (in the listed shard order); all when ``n`` is 0."""
        if not n or n >= self.samples:
            return self
        counts, left = [], n
        for c in self.counts:
            if left <= 0:
                break
            counts.append(min(c, left))
            left -= counts[-1]
        return ShardSet(self.urls[:len(counts)], counts, self.class_names)


def _sibling_manifest(url: str) -> dict | None:
    """The ``shards.json`` beside ``url`` (same folder or URL path), or None."""
    folder = url.rsplit("/", 1)[0] if "/" in url else "."
    where = f"{folder}/{MANIFEST}"
    if not is_url(where):
        p = Path(where)
        return json.loads(p.read_text()) if p.is_file() else None
    try:
        with open_url(where) as f:
            return json.loads(f.read())
    except Exception:  # noqa: BLE001 -- no manifest there (curl's exit status, a 404 page): count instead
        return None


def open_shards(source, base: Path | None = None) -> ShardSet:
    """A :class:`ShardSet` from a folder or ``shards.json`` (``convert --to shards``' output), or from brace
    patterns / URLs. Sample counts come from the ``shards.json`` beside the shards; shards it does not
    list are counted by reading them once (keep the manifest beside remote shards to skip that)."""
    from yolokit.errors import ConfigError

    if isinstance(source, (str, Path)) and not is_url(source) and (Path(source).is_dir() or
                                                                 str(source).endswith(".json")):
        manifest, folder = read_manifest(source)
        return ShardSet([str(folder / s["file"]) for s in manifest["shards"]],
                        [int(s["samples"]) for s in manifest["shards"]], manifest.get("class_names"))
    urls = expand(source, base)
    if not urls:
        raise ConfigError(f"{source}: names no shards")
    for u in urls:
        if not is_url(u) and not Path(u).is_file():
            raise ConfigError(f"{u}: shard not found (from {source})")
    known, names, manifests = {}, None, {}
    counts = []
    for u in urls:
        folder, _, name = u.rpartition("/")
        if folder not in manifests:
            manifests[folder] = _sibling_manifest(u)
            m = manifests[folder]
            if m is not None:
                names = names or m.get("class_names")
                known.update({(folder, s["file"]): int(s["samples"]) for s in m["shards"]})
        n = known.get((folder, name))
        counts.append(n if n is not None else sum(1 for _ in iter_shard(u)))
    return ShardSet(urls, counts, names)


def sample_of(key: str, files: dict, decode: bool = True):
    """One shard sample as a :class:`~yolokit.data.sample.Sample` (``decode``), else its metadata dict."""
    from yolokit.data.sample import Sample

    meta = json.loads(files["json"])
    if not decode:
        return meta
    ext = next(e for e in files if e != "json")
    n = len(meta["labels"])
    # the one image decoder (yolokit.data.images): RGB, stored pixel order, errors that name the shard member
    return Sample(image=decode_image(f"{key}.{ext}", files[ext]), boxes=np.asarray(meta["boxes"], np.float32).reshape(n, 4),
                  labels=np.asarray(meta["labels"], np.int64).reshape(n), image_id=meta["image_id"],
                  path=Path(meta["file"]), orig_size=tuple(meta["size"]),
                  difficult=np.asarray(meta["difficult"], bool).reshape(n),
                  iscrowd=np.asarray(meta["iscrowd"], bool).reshape(n))


# ----------------------------------------------------------------------------------------------- the split
class Piece(NamedTuple):
    """Read shard ``shard`` (an index into the set), skip its first ``skip`` samples, keep the next ``take``."""

    shard: int
    skip: int
    take: int


class Span(NamedTuple):
    """A rank's share of the epoch: samples ``[start, start + take)`` of the epoch's sequence, in ``batches``
    batches (the last one may be partial)."""

    start: int
    take: int
    batches: int


def epoch_order(n_shards: int, seed: int, epoch: int, shuffle: bool) -> list[int]:
    """The epoch's shard order: the listed one, or a permutation drawn from ``seed`` and ``epoch``."""
    if not shuffle:
        return list(range(n_shards))
    g = torch.Generator().manual_seed(seed * 1000003 + epoch)
    return torch.randperm(n_shards, generator=g).tolist()


def rank_span(total: int, rank: int, world: int, batch: int = 1) -> Span:
    """Rank ``rank``'s contiguous share of ``total`` samples: ``total // world`` or one more.

    Every rank must run the same number of batches (each backward is an all-reduce): ``ceil((total // world) /
    batch)``. Each rank's last batch may be partial and is kept (as folder training keeps it); only when
    ``total // world`` is a whole number of batches, the ranks holding one sample more drop it -- at most
    ``world - 1`` samples per epoch, the last of the rank spans (with ``shuffle`` a different few each epoch)."""
    start, stop = rank * total // world, (rank + 1) * total // world
    batches = -(-(total // world) // batch)
    return Span(start, min(stop - start, batches * batch), batches)


def worker_spans(span: Span, workers: int, batch: int = 1) -> list[tuple[int, int]]:
    """``(start, stop)`` of each DataLoader worker within a rank's :class:`Span`: contiguous runs of whole
    batches (worker ``w`` gets batches ``[w * B // W, (w + 1) * B // W)``), so only the rank's last batch can be
    partial. A worker may get none (more workers than batches)."""
    workers = max(1, workers)
    out = []
    for w in range(workers):
        b0, b1 = w * span.batches // workers, (w + 1) * span.batches // workers
        a = span.start + min(b0 * batch, span.take)
        b = span.start + min(b1 * batch, span.take)
        out.append((a, b))
    return out


def pieces(counts: list[int], order: list[int], start: int, stop: int) -> list[Piece]:
    """The shard reads that give samples ``[start, stop)`` of the sequence ``order`` makes of the shards."""
    out, pos = [], 0
    for s in order:
        a, b = max(start, pos), min(stop, pos + counts[s])
        if a < b:
            out.append(Piece(s, a - pos, b - a))
        pos += counts[s]
        if pos >= stop:
            break
    return out


def read_pieces(shards: ShardSet, plan: list[Piece]):
    """``(key, files)`` of every sample the pieces name, in order."""
    for shard, skip, take in plan:
        for k, (key, files) in enumerate(iter_shard(shards.urls[shard], limit=skip + take)):
            if k >= skip:
                yield key, files


def dist_world() -> tuple[int, int]:
    """``(rank, world_size)`` of ``torch.distributed`` when it is initialised, else ``(0, 1)``."""
    import torch.distributed as dist

    on = dist.is_available() and dist.is_initialized()
    return (dist.get_rank(), dist.get_world_size()) if on else (0, 1)
