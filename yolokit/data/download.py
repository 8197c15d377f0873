"""Fetch the archives a dataset YAML lists under ``download:`` and extract them into its ``root``.

A ``download:`` entry is one archive as its publisher serves it::

    download:
      - url: http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar
        md5: c52e279531787c972589f7e41ab4ae64     # sha256 / sha1 / md5: whichever the publisher (or a
        size: 460032000                           #   well-known user of the file) states; all given are checked
        mirrors: [http://pjreddie.com/media/files/VOCtrainval_06-Nov-2007.tar]
        strip: 0        # leading path components to drop (GitHub archives: 1, their "repo-<commit>/" folder)
        into: ""        # sub-folder of root to extract into

What :func:`get` guarantees:

* **resume** -- a download goes to ``<root>/.yolokit/downloads/<file>.part``; a later call asks the server
  for the rest with an HTTP ``Range`` header (a server that ignores it gets the file again from byte 0);
* **verification** -- every checksum given is compared before anything is extracted; a mismatch deletes
  the file and raises one :class:`DataError` line. An archive without a published checksum gets its
  sha256 computed and written into the completion marker (trust on first use) -- it is printed, too;
* **no half datasets** -- an archive is extracted into ``<root>/.yolokit/tmp-<file>/`` and its entries
  are then renamed into ``root``; only after that is the marker ``<root>/.yolokit/<file>.done`` written.
  A dataset counts as complete when every archive has its marker, so an interrupted extraction never
  looks complete (:func:`require_files` says so, and the next ``get`` redoes that archive);
* **idempotence** -- a second call finds every marker with the same checksums and the split paths
  present, says so, and downloads nothing;
* **no silent multi-GB download** -- the plan (files and bytes) is printed first, and more than
  :data:`CONFIRM_BYTES` needs ``yes=True`` (``--yes``) or a ``confirm`` callback that says yes.

``YOLOKIT_DATA_MIRROR=URL`` (or ``mirror=``) is tried before the publisher: ``URL/<file>`` -- for an
air-gapped copy of the archives, and for the tests, which serve archives from ``127.0.0.1``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from yolokit.errors import ConfigError, DataError

DATA_ROOT_ENV = "YOLOKIT_DATA_ROOT"
MIRROR_ENV = "YOLOKIT_DATA_MIRROR"
REPO = Path(__file__).resolve().parents[2]
# data YAMLs: `yolokit data get NAME` looks here first (yolokit/configs: the clone's configs/, or the wheel's copy)
PRESETS = Path(__file__).resolve().parents[1] / "configs" / "data"
if not PRESETS.is_dir():
    PRESETS = REPO / "configs" / "data"
DESCRIPTORS = REPO / "data"  # one descriptor per published dataset (data/README.md; in a clone only)
STATE = ".yolokit"  # inside root: downloads/, tmp-*/, *.done markers
CONFIRM_BYTES = 1 << 30
HASHES = ("sha256", "sha1", "md5")
_ARCHIVE_KEYS = {"url", "file", "size", "strip", "into", "mirrors", "note", *HASHES}
_DESCRIPTOR_KEYS = {"name", "title", "description", "homepage", "licence", "citation", "root", "download",
                    "layout", "counts", "notes", "preset", "checksums"}
_CHUNK = 1 << 20


class DatasetMissing(ConfigError):
    """A data YAML's files are not there; the message holds the ``yolokit data get`` command."""


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
        file = e.get("file") or PurePosixPath(str(e["url"]).split("?")[0]).name
        into = str(e.get("into") or "")
        if Path(into).is_absolute() or ".." in Path(into).parts:
            raise ConfigError(f"{source}: download entry {k}: 'into' must be a folder inside root, got {into!r}")
        out.append(Archive(str(e["url"]), file, checksums, int(e["size"]) if e.get("size") else None,
                           int(e.get("strip") or 0), into, [str(m) for m in e.get("mirrors") or []]))
    names = [a.file for a in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: two download entries share a file name; give one a 'file'")
    return out


# ---------------------------------------------------------------------------------------------- naming
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
    import yaml

    names = []
    for folder in (PRESETS, DESCRIPTORS):
        for p in sorted(folder.glob("*.yaml")):
            try:
                data = yaml.safe_load(p.read_text())
            except yaml.YAMLError:
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
    import yaml

    from yolokit.data.config import expand_root, read_spec

    path = resolve_yaml(target)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {exc}") from exc
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


# --------------------------------------------------------------------------------------- state on disk
def _state(root: Path) -> Path:
    return root / STATE


def _marker(root: Path, a: Archive) -> Path:
    return _state(root) / f"{a.file}.done"


def marker_ok(root: Path, a: Archive) -> bool:
    """The archive was extracted completely, and with the checksums the YAML asks for now."""
    m = _marker(root, a)
    if not m.is_file():
        return False
    try:
        done = json.loads(m.read_text())
    except (OSError, ValueError):
        return False
    return all(done.get("checksums", {}).get(h) == v for h, v in a.checksums.items())


def split_paths(data: dict, root: Path, split: str) -> list[Path]:
    """Every file or folder one split of a data YAML reads (VOC's default folder names included)."""
    from yolokit.data.config import resolve

    s = data["splits"][split]
    out = []
    for part in (s if isinstance(s, list) else [s]):
        keys = dict(part)
        if data.get("format") == "voc":
            keys.setdefault("images", "JPEGImages")
            keys.setdefault("annotations", "Annotations")
        out += [resolve(root, keys[k]) for k in ("images", "annotations", "labels", "list") if keys.get(k)]
    return out


def require_files(data: dict, root: Path, source: str, split: str) -> None:
    """Raise a :class:`ConfigError` that gives the ``yolokit data get`` command when the split's files
    are missing, or when a yolokit download into ``root`` was left unfinished."""
    archives = parse_download(data["download"], source)
    missing = [p for p in split_paths(data, root, split) if not p.exists()]
    unfinished = _state(root).is_dir() and not all(marker_ok(root, a) for a in archives)
    if not missing and not unfinished:
        return
    size = sum(a.size or 0 for a in archives)
    what = f"{missing[0]} not found" if missing else f"the download into {root} is unfinished"
    raise DatasetMissing(f"{source}: dataset files missing ({what}); get them with: {get_command(source)}"
                      + (f"  ({_human(size)})" if size else "")
                      + (f", or set {DATA_ROOT_ENV} to a folder that holds them" if DATA_ROOT_ENV in
                         str(data.get("root", "")) else ""))


# --------------------------------------------------------------------------------------------- transfer
def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def fetch(urls: list[str], dest: Path, size: int | None = None, progress: bool = True) -> str:
    """Download the first of ``urls`` that answers into ``dest``, resuming ``dest.part``; returns the URL."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors = []
    for url in urls:
        try:
            _fetch_one(url, part, size, progress)
        except (OSError, ValueError) as exc:  # URLError/HTTPError/timeouts are OSErrors
            errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
            continue
        os.replace(part, dest)
        return url
    raise DataError(f"{dest.name}: download failed from every source ({'; '.join(errors)}); "
                    f"rerun to resume from {part.stat().st_size if part.exists() else 0} bytes")


def _fetch_one(url: str, part: Path, size: int | None, progress: bool) -> None:
    import urllib.error
    import urllib.request

    from tqdm import tqdm

    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "yolokit-data-get"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            total = exc.headers.get("Content-Range", "").rpartition("/")[2]
            if (size or (int(total) if total.isdigit() else None)) in (None, have):
                return  # "range not satisfiable": the part file already holds the whole file (checksum decides)
            part.unlink()  # longer than the file: not a prefix of it; start over
            return _fetch_one(url, part, size, progress)
        raise
    with resp:
        status = getattr(resp, "status", 200)
        if have and status == 206:
            start = int(resp.headers.get("Content-Range", f"bytes {have}-").split()[1].split("-")[0])
            if start != have:
                raise ValueError(f"server resumed at byte {start}, expected {have}")
            mode = "ab"
        else:
            have, mode = 0, "wb"  # no Range support (200): start over
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else size
        with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                                         desc=part.name[:-5], disable=not progress, leave=False,
                                         file=sys.stderr) as bar:
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                f.write(chunk)
                bar.update(len(chunk))
    got = part.stat().st_size
    if total is not None and got != total:
        raise ValueError(f"connection closed at {got} of {total} bytes")


def file_checksums(path: Path, algorithms) -> dict:
    hs = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            for h in hs.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hs.items()}


def verify(path: Path, a: Archive) -> dict:
    """Check every checksum of ``a``; on a mismatch delete ``path`` and raise one line."""
    got = file_checksums(path, sorted(set(a.checksums) | {"sha256"}))
    for algo, want in a.checksums.items():
        if got[algo] != want:
            path.unlink()
            raise DataError(f"{a.file}: {algo} mismatch (expected {want}, got {got[algo]}); the file was deleted "
                            f"and nothing was extracted")
    return got


# ------------------------------------------------------------------------------------------ extraction
def _safe_parts(name: str, strip: int) -> tuple[str, ...] | None:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if parts and parts[0] == "/" or ".." in parts:
        raise DataError(f"archive member {name!r} points outside the extraction folder")
    parts = parts[strip:]
    return parts or None


def extract(archive: Path, dest: Path, strip: int = 0) -> int:
    """Unpack a .tar(.gz/.bz2/.xz) or .zip into ``dest`` (dropping ``strip`` leading folders); returns the
    number of files. Members that would land outside ``dest`` (absolute, ``..``, links) are refused."""
    import tarfile
    import zipfile

    n = 0
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                parts = _safe_parts(info.filename, strip)
                if parts is None:
                    continue
                target = dest.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
                n += 1
        return n
    try:
        tf = tarfile.open(archive)
    except tarfile.TarError as exc:
        raise DataError(f"{archive}: neither a zip nor a tar archive ({exc})") from exc
    with tf:
        members = []
        for m in tf.getmembers():
            parts = _safe_parts(m.name, strip)
            if parts is None:
                continue
            m.name = "/".join(parts)
            if m.islnk():
                link = _safe_parts(m.linkname, strip)
                m.linkname = "/".join(link) if link else m.linkname
            members.append(m)
            n += m.isfile()
        tf.extractall(dest, members=members, filter="data")  # "data": no devices, no links out of dest
    return n


def _merge(src: Path, dst: Path) -> None:
    """Move the tree ``src`` into ``dst``: whole folders by one rename where ``dst`` lacks them."""
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink() and target.is_dir():
            _merge(entry, target)
            entry.rmdir()
        else:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)


# ------------------------------------------------------------------------------------------------- get
def ensure(target, log=print) -> bool:
    """``--download`` of train/eval/check: fetch the dataset of a data YAML only if its files are missing
    (a copy that is already there, fetched by yolokit or not, is left alone). Returns True if it fetched."""
    from yolokit.data.config import read_spec

    data, root, source = read_spec(target)
    if not data.get("download"):
        return False
    try:
        for split in data["splits"]:
            require_files(data, root, source, split)
    except DatasetMissing as exc:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun: every rank would download at once
            raise DatasetMissing(f"{exc} -- before torchrun (--download does not fetch in a multi-process run)") from None
        get(target, yes=True, log=log)  # --download is the consent; the plan is printed before
        return True
    return False


def get(target, data_root: str | None = None, *, yes: bool = False, confirm=None, mirror: str | None = None,
        keep_archives: bool = False, force: bool = False, progress: bool = True, log=print) -> dict:
    """Download, verify and extract the dataset of ``target`` (a preset name, a data YAML or a data/
    descriptor) into its root. Returns ``{"root", "yaml", "archives": {file: "present" | "extracted"}}``.

    A root that already holds every split path but no yolokit marker (a copy made by hand, the shared
    test data) is left untouched unless ``force``.
    """
    root, archives, path, raw = read_target(target, data_root)
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    todo = [a for a in archives if not marker_ok(root, a)]
    status = {a.file: "present" for a in archives if a not in todo}
    missing = []
    if "format" in raw:
        from yolokit.data.config import read_spec

        data = read_spec(path)[0]
        missing = [p for s in data["splits"] for p in split_paths(data, root, s) if not p.exists()]
    there = not missing if "format" in raw else (root.is_dir() and any(root.iterdir()))
    if todo and not force and there and not _state(root).exists():
        log(f"{path.stem}: every file is already in {root} (not fetched by yolokit, so not verified); "
            "nothing to do (--force fetches it anyway)")
        return {"root": root, "yaml": path, "archives": {a.file: "present" for a in archives}}
    if not todo:
        if not missing:
            log(f"{path.stem}: complete in {root} ({len(archives)} archive(s) verified by their markers); "
                "nothing to do")
            return {"root": root, "yaml": path, "archives": status}
        log(f"{path.stem}: {missing[0]} is missing although every archive is marked done; extracting again")
        todo = list(archives)
    downloads = _state(root) / "downloads"
    need = sum((a.size or 0) for a in todo if not (downloads / a.file).is_file())
    log(f"{path.stem}: {len(todo)} archive(s) into {root}: "
        + ", ".join(f"{a.file} ({_human(a.size) if a.size else 'size unknown'})" for a in todo))
    if need > CONFIRM_BYTES and not yes:
        if confirm is None or not confirm(f"download {_human(need)}?"):
            raise ConfigError(f"{path.stem} needs {_human(need)} of downloads; pass --yes to fetch it")
    for a in todo:
        arch = downloads / a.file
        if not arch.is_file():
            url = fetch(a.sources(mirror), arch, a.size, progress)
            log(f"  {a.file}: downloaded from {url}")
        got = verify(arch, a)
        if not a.checksums:
            log(f"  {a.file}: no published checksum; sha256 {got['sha256']} recorded in {_marker(root, a)}")
        tmp = _state(root) / f"tmp-{a.file}"
        if tmp.exists():
            shutil.rmtree(tmp)  # a previous extraction was interrupted: start it over
        tmp.mkdir(parents=True)
        n = extract(arch, tmp, a.strip)
        dest = root / a.into if a.into else root
        dest.mkdir(parents=True, exist_ok=True)
        _merge(tmp, dest)
        tmp.rmdir()
        tmp_marker = _marker(root, a).with_suffix(".tmp")
        tmp_marker.write_text(json.dumps({"url": a.url, "file": a.file, "files": n,
                                          "checksums": {**got, **a.checksums}}, indent=1) + "\n")
        os.replace(tmp_marker, _marker(root, a))  # the marker appears whole or not at all
        if not keep_archives:
            arch.unlink()
        log(f"  {a.file}: {n} files extracted into {dest}")
        status[a.file] = "extracted"
    if downloads.is_dir() and not any(downloads.iterdir()):
        downloads.rmdir()
    return {"root": root, "yaml": path, "archives": status}
