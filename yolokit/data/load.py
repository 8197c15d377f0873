"""Reading a dataset: :func:`load_dataset` turns a description (:mod:`yolokit.data.config`) into a
:class:`yolokit.data.dataset.DetectionDataset` through the format's adapter (VOC, COCO, YOLO), reporting every bad
file; a split whose files are missing gives the ``yolokit data get`` command (:mod:`yolokit.data.download`).
Decode verdicts are cached (:func:`verified_cache_dir`) so a second pass over the same images is cheap."""

from __future__ import annotations

import os
from pathlib import Path

from yolokit.data.config import read_names, read_spec, resolve
from yolokit.errors import ConfigError


def load_dataset(spec, split: str = "val", *, check_images: bool = True, decode: bool = False):
    """Read one split of a dataset description. Returns a :class:`yolokit.data.dataset.DetectionDataset`.

    ``spec``: a YAML path or a dict (see the module docstring). ``check_images`` reads every image header
    (cheap, no decode) so that missing, unreadable and over-limit images are reported and left out here.
    ``decode`` also decodes every image once (``check`` and training do: truncated and corrupt-middle files
    only show at decode) and leaves the bad ones out with a report, the same verdict as ``detect`` gives.
    Every problem is on ``dataset.problems``.
    """
    ds = _load_dataset(spec, split, check_images)
    if decode:
        drop_undecodable(ds)
    return ds


def drop_undecodable(ds) -> None:
    """Decode every image of ``ds`` (the one reader, :func:`yolokit.data.images.verify_image`); report and
    remove those that fail. Threads: Pillow releases the GIL while it decodes.

    Images that decoded cleanly are remembered by path, size and modification time
    (:func:`verified_cache_dir`), so the next run over the same files (every training run on COCO's 118k images)
    decodes only what is new or changed; bad images are never remembered and are reported every time."""
    from concurrent.futures import ThreadPoolExecutor

    from yolokit.data.images import verify_image

    stamps = {r.path: _stamp(r.path) for r in ds.records}
    known = _load_verified(stamps)
    todo = [p for p in stamps if p not in known]
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        verdicts = dict(zip(todo, pool.map(verify_image, todo)))
    keep = []
    for r in ds.records:
        kind, detail = verdicts.get(r.path, (None, ""))
        if kind:
            ds.problems.add(r.path, kind, detail)
        else:
            keep.append(r)
    ds.records[:] = keep
    _save_verified({p: stamps[p] for p in todo if not verdicts[p][0] and stamps[p]})


def verified_cache_dir() -> Path:
    """Where decode verdicts are kept: ``$YOLOKIT_CACHE_DIR`` or ``$XDG_CACHE_HOME/yolokit`` (``~/.cache``)."""
    base = os.environ.get("YOLOKIT_CACHE_DIR")
    if not base:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "yolokit"
    return Path(base) / "decoded"


def _stamp(path: Path):
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _cache_file(folder: Path) -> Path:
    import hashlib

    return verified_cache_dir() / (hashlib.sha1(str(Path(folder).resolve()).encode()).hexdigest()[:20] + ".json")


def _load_verified(stamps: dict) -> set:
    """The paths whose (size, mtime) equal a remembered clean decode."""
    import json

    known, by_dir = set(), {}
    for path in stamps:
        by_dir.setdefault(Path(path).parent, []).append(path)
    for folder, paths in by_dir.items():
        try:
            cached = json.loads(_cache_file(folder).read_text())
        except (OSError, ValueError):
            continue
        known.update(p for p in paths if stamps[p] is not None and cached.get(Path(p).name) == stamps[p])
    return known


def _save_verified(stamps: dict) -> None:
    """Remember clean decodes (a cache: a folder that cannot be written only costs the next run a decode)."""
    import json

    from yolokit.fileio import write_text_atomic

    by_dir = {}
    for path, stamp in stamps.items():
        by_dir.setdefault(Path(path).parent, {})[Path(path).name] = stamp
    for folder, entries in by_dir.items():
        file = _cache_file(folder)
        try:
            cached = json.loads(file.read_text()) if file.is_file() else {}
        except (OSError, ValueError):
            cached = {}
        cached.update(entries)
        try:
            write_text_atomic(file, json.dumps(cached))
        except OSError:
            return


def _load_dataset(spec, split, check_images):
    from yolokit.data.dataset import DetectionDataset
    from yolokit.data.sample import ProblemReport

    data, root, source = read_spec(spec)
    if split not in data["splits"]:
        raise ConfigError(f"{source}: no split '{split}'; it has {sorted(data['splits'])}")
    if data.get("download"):
        from yolokit.data.download import require_files

        require_files(data, root, source, split)  # missing files -> the exact `yolokit data get` command
    fmt = data["format"]
    s = data["splits"][split]
    if isinstance(s, list):
        return _load_parts(data, root, source, split, check_images)
    names = read_names(data.get("names"), root, source)
    report = ProblemReport()
    ids = None
    if s.get("list") is not None:
        from yolokit.data.voc import read_list

        lst = resolve(root, s["list"])
        if not lst.is_file():
            raise ConfigError(f"{source}: split '{split}' list {lst} not found")
        ids = read_list(lst)
    extra = {}
    if fmt == "voc":
        from yolokit.data.voc import read_voc

        ann = resolve(root, s.get("annotations", "Annotations"))
        img = resolve(root, s.get("images", "JPEGImages"))
        for what, p in (("annotations", ann), ("images", img)):
            if not p.is_dir():
                raise ConfigError(f"{source}: split '{split}' {what} folder {p} not found")
        records, names = read_voc(ann, img, ids, names, report, check_images)
    elif fmt == "coco":
        from yolokit.data.coco import read_coco

        if s.get("annotations") is None or s.get("images") is None:
            raise ConfigError(f"{source}: COCO split '{split}' needs 'images' and 'annotations' (the JSON)")
        ann, img = resolve(root, s["annotations"]), resolve(root, s["images"])
        records, json_names, coco, cat_ids = read_coco(ann, img, ids, report, check_images)
        if names is not None and names != json_names:
            raise ConfigError(f"{source}: 'names' differ from the categories of {ann}; leave 'names' out for COCO")
        names = json_names
        extra = {"coco": coco, "index_to_cat_id": cat_ids}
    else:
        from yolokit.data.yolo import read_yolo

        if s.get("images") is None and ids is None:
            raise ConfigError(f"{source}: YOLO split '{split}' needs 'images' (a folder) or 'list' (image paths)")
        labels = resolve(root, s.get("labels"))
        if ids is not None:
            img_dir = resolve(root, s.get("images", "."))
            images = [resolve(img_dir, i) for i in ids]
        else:
            images = resolve(root, s["images"])
            if not images.is_dir():
                raise ConfigError(f"{source}: split '{split}' images folder {images} not found")
        records, names = read_yolo(images, labels, names, report, check_images)
    return DetectionDataset(records, names, report, fmt=fmt, split=split, source=source, **extra)


def _load_parts(data, root, source, split, check_images):
    """A split given as a list of parts: each part read as its own split, records concatenated."""
    from yolokit.data.dataset import DetectionDataset
    from yolokit.data.sample import ProblemReport

    records, names, report, extra = [], None, ProblemReport(), {}
    for part in data["splits"][split]:
        sub = {"format": data["format"], "root": str(root), "splits": {split: part}}
        if data.get("names") is not None:
            sub["names"] = data["names"] if not isinstance(data["names"], str) else str(resolve(root, data["names"]))
        ds = load_dataset(sub, split, check_images=check_images)
        if names is not None and ds.class_names != names:
            raise ConfigError(f"{source}: the parts of split '{split}' have different class names; give 'names'")
        names = ds.class_names
        records += ds.records
        report.extend(ds.problems)
        if ds.index_to_cat_id is not None:
            extra = {"coco": None, "index_to_cat_id": ds.index_to_cat_id}
    return DetectionDataset(records, names, report, fmt=data["format"], split=split, source=source, **extra)
