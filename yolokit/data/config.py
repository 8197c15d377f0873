"""Dataset description files (``configs/data/*.yaml``), read by :func:`yolokit.data.load.load_dataset`.

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


def split_names(spec) -> list[str]:
    """The split names of a description, in file order."""
    return list(read_spec(spec)[0]["splits"])
