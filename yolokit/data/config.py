"""Dataset description files (``configs/data/*.yaml``) and :func:`load_dataset`.

A description names the format, a root, the class names and the splits::

    format: voc                # voc | coco | yolo
    root: ${YOLOKIT_DATA_ROOT:-../../datasets}/raccoon   # ${VAR} / ${VAR:-default} from the environment,
                               # then relative to the folder of this YAML file (or absolute)
    download: [{url: ..., sha256: ...}]   # optional: archives for `yolokit data get` (yolokit/data/download.py)
    names: [raccoon]           # a list, or a file relative to root: .names/.txt (one per line) or .yaml (names:)
    splits:
      train:
        images: images         # every path below is relative to root (or absolute)
        annotations: annotations   # VOC: the XML folder; COCO: the instances JSON
        list: data/train_labels.csv # optional: .txt ids/file names/paths, or .csv with a 'filename' column
      val: {...}

A split may also be a list of such mappings, read one after the other (VOC 07+12: one part per VOCdevkit
year, see ``configs/data/voc.yaml``). With ``download``, a split whose files are missing raises an error
that gives the ``yolokit data get`` command. YOLO splits use ``labels`` (the .txt folder) instead of ``annotations``; VOC defaults to the VOCdevkit
names ``Annotations`` / ``JPEGImages``. ``names`` is optional for COCO (taken from the JSON), for VOC
(the sorted set of names found) and for YOLO txt (the indices as names); without it unknown classes
cannot be detected. A dict with the same keys works
too; its relative ``root`` is taken from the working directory. Unknown keys are an error.

An Ultralytics/YOLOv5 data YAML (``path``, ``train``, ``val``, ``test``, ``names``; no ``format`` key) is
read as it is: YOLO txt, ``path`` as the root, labels found by the images -> labels folder rule.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from yolokit.errors import ConfigError

FORMATS = ("voc", "coco", "yolo")
_TOP_KEYS = {"format", "root", "names", "splits", "description", "download"}
_SPLIT_KEYS = {"images", "annotations", "labels", "list"}


def read_spec(spec) -> tuple[dict, Path, str]:
    """Parse a description (path or dict) into ``(spec_dict, root, source_name)``, validated."""
    from yolokit.fileio import read_yaml

    if isinstance(spec, (str, Path)):
        path = Path(spec)
        # a regular file of at most 16 MB, aliases bounded: /dev/zero or a FIFO is refused, not read forever
        data = read_yaml(path, "dataset description")
        base, source = path.resolve().parent, str(path)
    elif isinstance(spec, dict):
        data, base, source = dict(spec), Path.cwd(), "<dict>"
    else:
        raise ConfigError(f"dataset description must be a YAML path or a dict, got {type(spec).__name__}")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with format/root/names/splits")
    if "format" not in data and "names" in data and any(k in data for k in ("train", "val", "test")):
        data = _from_ultralytics(data)
    if data.get("format") == "shards":
        raise ConfigError(f"{source}: a shard data YAML (format: shards) is streamed by `yolokit train` "
                          f"(yolokit.data.stream); give this command the dataset the shards were written from")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)}; expected {sorted(_TOP_KEYS)}")
    if data.get("format") not in FORMATS:
        raise ConfigError(f"{source}: 'format' must be one of {FORMATS}, got {data.get('format')!r}")
    splits = data.get("splits")
    if not isinstance(splits, dict) or not splits:
        raise ConfigError(f"{source}: 'splits' must map split names to {{images, annotations|labels, list}}")
    for name, s in splits.items():
        # a list of parts is one split read from several folders (VOC 07+12: two VOCdevkit years)
        for part in (s if isinstance(s, list) and s else [s]):
            if not isinstance(part, dict):
                raise ConfigError(f"{source}: split '{name}' must be a mapping (or a list of mappings)")
            bad = set(part) - _SPLIT_KEYS
            if bad:
                raise ConfigError(f"{source}: split '{name}' has unknown key(s) {sorted(bad)}; "
                                  f"expected {sorted(_SPLIT_KEYS)}")
    return data, expand_root(data.get("root", "."), base, source), source


_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_root(value, base: Path, source: str = "<dict>", environ=None) -> Path:
    """``root`` as a path: ``${VAR}`` / ``${VAR:-default}`` from the environment (``YOLOKIT_DATA_ROOT``
    in the shipped presets), then relative to ``base`` (the YAML's folder) unless absolute."""
    environ = os.environ if environ is None else environ

    def sub(m):
        if environ.get(m.group(1)):
            return environ[m.group(1)]
        if m.group(2) is None:
            raise ConfigError(f"{source}: root {value!r} needs the environment variable {m.group(1)}")
        return m.group(2)

    root = Path(os.path.expanduser(_VAR.sub(sub, str(value))))
    return Path(os.path.normpath(root if root.is_absolute() else (base / root)))


def _from_ultralytics(data: dict) -> dict:
    """An Ultralytics/YOLOv5 data YAML (``path``, ``train``/``val``/``test`` image folders or .txt lists,
    ``names``) as a yolokit description: labels found by the images -> labels folder rule."""
    spec = {"format": "yolo", "root": data.get("path") or ".", "names": data["names"], "splits": {}}
    for split in ("train", "val", "test"):
        value = data.get(split)
        if value is None:
            continue
        if isinstance(value, list):
            raise ConfigError(f"data YAML: '{split}' lists several folders; yolokit takes one per split")
        key = "list" if str(value).endswith(".txt") else "images"
        spec["splits"][split] = {key: value}
    return spec


def resolve(root: Path, p) -> Path | None:
    if p is None:
        return None
    p = Path(p)
    return p if p.is_absolute() else root / p


def read_names(value, root: Path, source: str) -> list[str] | None:
    """Class names from a list, a dict {index: name}, or a file (.names/.txt lines, or YAML with ``names``).
    A name with a line break or another control character is refused (it would split into two classes in
    every one-name-a-line file); commas and slashes are kept, and escaped by the writers."""
    if value is None:
        return None
    if isinstance(value, dict):
        try:
            return check_names([str(value[k]) for k in sorted(value)], source)
        except TypeError:
            raise ConfigError(f"{source}: 'names' as a mapping needs integer keys 0..N-1") from None
    if isinstance(value, list):
        return check_names([str(v) for v in value], source)
    path = resolve(root, value)
    if not path.exists():
        raise ConfigError(f"{source}: names file {path} not found")
    try:
        if path.suffix.lower() not in (".yaml", ".yml"):
            from yolokit.fileio import read_names_file

            return read_names_file(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read names file {path} ({exc})") from None
    from yolokit.fileio import read_yaml

    data = read_yaml(path, "names file")
    names = data.get("names") if isinstance(data, dict) else None
    if names is None:
        raise ConfigError(f"{path}: expected a 'names' key (list or {{index: name}})")
    return read_names(names, root, str(path))


def check_names(names: list[str], source: str) -> list[str]:
    """``names`` unchanged, or one error line for a name that is empty or holds a control character."""
    for k, name in enumerate(names):
        if not name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ConfigError(f"{source}: class name {k} {name[:40]!r} is empty or holds a line break/control "
                              "character")
    return names


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


def split_names(spec) -> list[str]:
    """The split names of a description, in file order."""
    return list(read_spec(spec)[0]["splits"])
