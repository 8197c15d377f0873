"""The datasets ``yolokit data get`` knows, and what a dataset YAML's ``download:`` list says.

A name is a preset (``configs/data/NAME.yaml``) or the descriptor of a published dataset (``data/NAME.yaml``,
in a clone only); a path is taken as it is. :func:`read_target` gives the root a YAML names and its
archives, each an :class:`Archive` (the entry format is in :mod:`yolokit.data.download`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from yolokit.errors import ConfigError

DATA_ROOT_ENV = "YOLOKIT_DATA_ROOT"
REPO = Path(__file__).resolve().parents[2]
# data YAMLs: `yolokit data get NAME` looks here first (yolokit/configs: the clone's configs/, or the wheel's copy)
PRESETS = Path(__file__).resolve().parents[1] / "configs" / "data"
if not PRESETS.is_dir():
    PRESETS = REPO / "configs" / "data"
DESCRIPTORS = REPO / "data"  # one descriptor per published dataset (data/README.md; in a clone only)
STATE = ".yolokit"  # inside root: downloads/, tmp-*/, *.done markers
HASHES = ("sha256", "sha1", "md5")
_ARCHIVE_KEYS = {"url", "file", "size", "strip", "into", "mirrors", "note", *HASHES}
_DESCRIPTOR_KEYS = {"name", "title", "description", "homepage", "licence", "citation", "root", "download",
                    "layout", "counts", "notes", "preset", "checksums"}


@dataclass
class Archive:
    """One downloadable file. ``checksums``: ``{algorithm: hex}`` (may be empty)."""

    url: str
    file: str
    checksums: dict = field(default_factory=dict)
    size: int | None = None
    strip: int = 0
    into: str = ""
    mirrors: list = field(default_factory=list)

    def sources(self, mirror: str | None) -> list[str]:
        first = [mirror.rstrip("/") + "/" + self.file] if mirror else []
        return first + [self.url] + list(self.mirrors)


def parse_download(entries, source: str) -> list[Archive]:
    """Validate a ``download:`` list into :class:`Archive` objects (unknown keys are an error)."""
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: 'download' must be a list of {{url, sha256}} archives")
    out = []
    for k, e in enumerate(entries):
        if isinstance(e, str):
            e = {"url": e}
        if not isinstance(e, dict) or not e.get("url"):
            raise ConfigError(f"{source}: download entry {k} needs a 'url'")
        bad = set(e) - _ARCHIVE_KEYS
        if bad:
            raise ConfigError(f"{source}: download entry {k} has unknown key(s) {sorted(bad)}; "
                              f"expected {sorted(_ARCHIVE_KEYS)}")
        checksums = {h: str(e[h]).lower() for h in HASHES if e.get(h)}
        file = str(e.get("file") or PurePosixPath(str(e["url"]).split("?")[0].split("#")[0]).name)
        if (not file or file in (".", "..") or "/" in file or "\\" in file or "\0" in file or len(file) > 200
                or file.startswith(".")):
            raise ConfigError(f"{source}: download entry {k}: 'file' must be a plain file name (no folders, "
                              f"no leading dot), got {file[:80]!r}")
        into = str(e.get("into") or "")
        parts = PurePosixPath(into.replace("\\", "/")).parts
        if (into.startswith(("/", "\\")) or Path(into).is_absolute() or ".." in parts or "\0" in into
                or (parts and parts[0] == STATE)):
            raise ConfigError(f"{source}: download entry {k}: 'into' must be a folder inside root, got {into!r}")
        out.append(Archive(str(e["url"]), file, checksums, _count(e, "size", k, source),
                           _count(e, "strip", k, source) or 0, into, [str(m) for m in e.get("mirrors") or []]))
    names = [a.file for a in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: two download entries share a file name; give one a 'file'")
    return out


def _count(entry: dict, key: str, k: int, source: str) -> int | None:
    """``size``/``strip`` as a whole number (``size: '1GB'`` is an error naming the key, not a traceback)."""
    value = entry.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit())):
        raise ConfigError(f"{source}: download entry {k}: '{key}' must be a whole number"
                          f"{' of bytes' if key == 'size' else ''}, got {value!r}")
    value = int(value)
    if value < 0 or value > 1 << 50:
        raise ConfigError(f"{source}: download entry {k}: '{key}' out of range: {value}")
    return value


def resolve_yaml(target) -> Path:
    """``NAME`` -> ``configs/data/NAME.yaml`` (else ``data/NAME.yaml``); a path is taken as it is."""
    p = Path(target)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError(f"{p}: dataset YAML not found")
        return p
    for folder in (PRESETS, DESCRIPTORS):
        cand = folder / f"{target}.yaml"
        if cand.is_file():
            return cand
    raise ConfigError(f"no dataset named {target!r}; shipped: {', '.join(available())}")


def available() -> list[str]:
    """Names ``yolokit data get`` accepts: presets with a ``download:`` list, then data/ descriptors."""
    from yolokit.fileio import read_yaml

    names = []
    for folder in (PRESETS, DESCRIPTORS):
        for p in sorted(folder.glob("*.yaml")):
            try:
                data = read_yaml(p, "dataset YAML")
            except ConfigError:
                continue
            if isinstance(data, dict) and data.get("download") and p.stem not in names:
                names.append(p.stem)
    return names


def get_command(source: str) -> str:
    """The exact command that fetches the dataset of the YAML ``source``."""
    p = Path(source)
    for folder in (PRESETS, DESCRIPTORS):
        try:
            if p.resolve().parent == folder.resolve() and resolve_yaml(p.stem).resolve() == p.resolve():
                return f"yolokit data get {p.stem}"
        except ConfigError:
            pass
    return f"yolokit data get {source}"


def read_target(target, data_root: str | None = None) -> tuple[Path, list[Archive], Path, dict]:
    """``(root, archives, yaml_path, raw)`` of a data YAML or a data/ descriptor.

    ``data_root`` stands for ``${YOLOKIT_DATA_ROOT}`` in the YAML's root (``--dir``); a YAML whose root
    does not use the variable cannot be redirected (that is an error, not a silent no-op).
    """
    from yolokit.data.config import expand_root, read_spec
    from yolokit.fileio import read_yaml

    path = resolve_yaml(target)
    raw = read_yaml(path, "dataset YAML")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping")
    if "format" in raw:
        read_spec(path)  # a data YAML: validate it whole
    else:
        bad = set(raw) - _DESCRIPTOR_KEYS
        if bad:
            raise ConfigError(f"{path}: unknown key(s) {sorted(bad)} for a dataset descriptor; "
                              f"expected {sorted(_DESCRIPTOR_KEYS)}")
    if not raw.get("download"):
        raise ConfigError(f"{path}: no 'download' list; this dataset has to be fetched by hand")
    value = str(raw.get("root", "."))
    environ = dict(os.environ)
    if data_root is not None:
        if DATA_ROOT_ENV not in value:
            raise ConfigError(f"{path}: root {value!r} does not use ${{{DATA_ROOT_ENV}}}; --dir cannot move it "
                              f"(edit 'root' instead)")
        environ[DATA_ROOT_ENV] = str(Path(data_root).resolve())
    root = expand_root(value, path.resolve().parent, str(path), environ)
    return root, parse_download(raw["download"], str(path)), path, raw

