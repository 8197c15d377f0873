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

* **no cut download taken for a whole one** -- without a checksum, the bytes must match the entry's
  ``size:`` or the server's ``Content-Length`` (or a chunked transfer must reach its last chunk), and the
  archive must be whole (:mod:`yolokit.data.extract` checks end-of-archive blocks, stream end markers and
  CRCs); a download that is not is deleted and no marker is written;
* **no hang** -- a read that waits more than ``YOLOKIT_DOWNLOAD_TIMEOUT`` seconds (default 30), or a transfer
  slower than ``YOLOKIT_DOWNLOAD_MIN_RATE`` bytes/s (default 1000) over that many seconds, is one error
  line; the ``.part`` file is kept, so a rerun resumes;
* **one writer per root** -- ``<root>/.yolokit/lock`` (``fcntl.flock``): a second ``get`` on the same root
  waits, then finds the work done;
* **archives stay in root** -- the extraction is :func:`yolokit.data.extract.extract` (no member or link
  outside the folder, no special files, size/ratio/count limits, free space checked), ``file:``/``into:``
  are plain names inside root, and nothing an archive holds can land in ``.yolokit/`` (so no archive can
  plant a marker). A failed call removes only the folders it made, and only when they are empty.

``YOLOKIT_DATA_MIRROR=URL`` (or ``mirror=``) is tried before the publisher: ``URL/<file>`` -- for an
air-gapped copy of the archives, and for the tests, which serve archives from ``127.0.0.1``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from yolokit.data.extract import ArchiveCut, extract, merge_tree as _merge, rmtree
from yolokit.errors import ConfigError, DataError
from yolokit.report import human_size

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
TIMEOUT_ENV = "YOLOKIT_DOWNLOAD_TIMEOUT"
MIN_RATE_ENV = "YOLOKIT_DOWNLOAD_MIN_RATE"
OFFLINE_HINT = (f"offline? serve the archives from a reachable copy with --mirror URL (or {MIRROR_ENV}=URL; "
                "URL/<archive file> is tried first)")


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


# --------------------------------------------------------------------------------------- state on disk
def _state(root: Path) -> Path:
    return root / STATE


def download_started(root: Path) -> bool:
    """A yolokit download into ``root`` has begun: its state folder holds a marker, a download or a
    half-done extraction (a lock file alone is a ``get`` running right now)."""
    try:
        return any(p.name != "lock" for p in _state(root).iterdir())
    except OSError:
        return False


def _marker(root: Path, a: Archive) -> Path:
    return _state(root) / f"{a.file}.done"


def read_marker(root: Path, a: Archive) -> dict | None:
    m = _marker(root, a)
    try:
        if not m.is_file() or m.stat().st_size > 1 << 20:
            return None
        done = json.loads(m.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return done if isinstance(done, dict) else None


def marker_ok(root: Path, a: Archive) -> bool:
    """The archive was extracted completely, and with the checksums the YAML asks for now."""
    done = read_marker(root, a)
    if done is None or not isinstance(done.get("checksums", {}), dict):
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


def _extracted_tops(root: Path, archives: list[Archive]) -> list[Path]:
    """The top-level paths the (marked) archives put into root, as their markers recorded them."""
    out = []
    for a in archives:
        done = read_marker(root, a) or {}
        base = root / a.into if a.into else root
        out += [base / str(t) for t in done.get("top", []) if isinstance(t, str)]
    return out


def _mismatch(root: Path, archives: list[Archive], missing: Path) -> str | None:
    """When every archive is marked done and its folders are there, a missing split path is the YAML's
    fault (root/strip/into), not the download's: the message says what the archives hold."""
    if not all(marker_ok(root, a) for a in archives):
        return None
    tops = _extracted_tops(root, archives)
    if not tops or not all(t.exists() for t in tops):
        return None
    held = ", ".join(sorted({str(t.relative_to(root)) + ("/" if t.is_dir() else "") for t in tops})[:6])
    return (f"{missing} not found although `yolokit data get` finished into {root}; the archive(s) hold {held} -- "
            "the YAML's root/paths do not match what was extracted (fix 'root', or 'strip'/'into' of the "
            "download entry)")


def require_files(data: dict, root: Path, source: str, split: str) -> None:
    """Raise a :class:`ConfigError` that gives the ``yolokit data get`` command when the split's files
    are missing, or when a yolokit download into ``root`` was left unfinished."""
    archives = parse_download(data["download"], source)
    missing = [p for p in split_paths(data, root, split) if not p.exists()]
    unfinished = download_started(root) and not all(marker_ok(root, a) for a in archives)
    if not missing and not unfinished:
        return
    if missing and (why := _mismatch(root, archives, missing[0])):
        raise DatasetMissing(f"{source}: {why}")
    size = sum(a.size or 0 for a in archives)
    what = f"{missing[0]} not found" if missing else f"the download into {root} is unfinished"
    raise DatasetMissing(f"{source}: dataset files missing ({what}); get them with: {get_command(source)}"
                      + (f"  ({human_size(size)})" if size else "")
                      + (f", or set {DATA_ROOT_ENV} to a folder that holds them" if DATA_ROOT_ENV in
                         str(data.get("root", "")) else ""))


# --------------------------------------------------------------------------------------------- transfer
def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        out = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: expected a number") from None
    if not out > 0:
        raise ConfigError(f"{name}={value!r}: expected a positive number")
    return out


class _Refused(Exception):
    """The bytes from this source are wrong (too many, wrong length): the part file is deleted."""


def fetch(urls: list[str], dest: Path, size: int | None = None, progress: bool = True,
          timeout: float | None = None) -> tuple[str, str | None]:
    """Download the first of ``urls`` that answers into ``dest``, resuming ``dest.part``. Returns the URL and
    what proved the length (``"size"``, ``"content-length"``, ``"chunked"``; None: the server did not say,
    so only the archive's own structure can tell a cut file). ``timeout``: seconds without data before a
    source is given up (default ``$YOLOKIT_DOWNLOAD_TIMEOUT`` or 30)."""
    part = dest.with_name(dest.name + ".part")
    errors = []
    for url in urls:
        try:
            proof = _fetch_one(url, part, size, progress, timeout)
        except _Refused as exc:
            part.unlink(missing_ok=True)
            errors.append(f"{url}: {exc}")
            continue
        except (OSError, ValueError, DataError) as exc:  # URLError/HTTPError/timeouts are OSErrors
            errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
            continue
        os.replace(part, dest)
        return url, proof
    have = part.stat().st_size if part.exists() else 0
    words = " ".join(errors)
    offline = any(w in words for w in ("Name or service not known", "Temporary failure in name resolution",
                                       "Network is unreachable", "No address associated", "nodename nor servname",
                                       "Connection refused", "timed out", "No route to host"))
    raise DataError(f"{dest.name}: download failed from every source ({'; '.join(errors)})"
                    + (f"; rerun to resume from {have} bytes" if have else "")
                    + (f"; {OFFLINE_HINT}" if offline else f"; or give a copy with --mirror URL ({MIRROR_ENV})"))


def _fetch_one(url: str, part: Path, size: int | None, progress: bool, timeout: float | None = None) -> str | None:
    import http.client
    import urllib.error
    import urllib.request

    from tqdm import tqdm

    timeout = timeout or _env_number(TIMEOUT_ENV, 30.0)
    min_rate = _env_number(MIN_RATE_ENV, 1000.0)
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    headers = {"User-Agent": "yolokit-data-get"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            total = exc.headers.get("Content-Range", "").rpartition("/")[2]
            known = size or (int(total) if total.isascii() and total.isdigit() else None)
            if known == have:
                return "size" if size else "content-length"  # the part file already holds the whole file
            if known is None:
                return None
            part.unlink()  # longer than the file: not a prefix of it; start over
            return _fetch_one(url, part, size, progress, timeout)
        raise
    except http.client.HTTPException as exc:  # a malformed status line or headers
        raise ValueError(f"bad HTTP response ({type(exc).__name__}: {exc})") from None
    with resp:
        status = getattr(resp, "status", 200)
        if have and status == 206:
            try:
                start = int(resp.headers.get("Content-Range", f"bytes {have}-").split()[1].split("-")[0])
            except (IndexError, ValueError):
                raise ValueError(f"bad Content-Range {resp.headers.get('Content-Range')!r}") from None
            if start != have:
                raise ValueError(f"server resumed at byte {start}, expected {have}")
            mode = "ab"
        else:
            have, mode = 0, "wb"  # no Range support (200): start over
        length = resp.headers.get("Content-Length")
        if length is not None and not (length.isascii() and length.strip().isdigit()):
            raise ValueError(f"bad Content-Length {length!r}")
        announced = have + int(length) if length is not None else None
        if size is not None and announced is not None and announced != size:
            raise _Refused(f"the server sends {announced} bytes but the entry's size is {size}")
        total = announced if announced is not None else size
        chunked = bool(getattr(resp, "chunked", False))
        got = have
        window_start, window_bytes = time.monotonic(), 0
        with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                                         desc=part.name[:-5], disable=not progress, leave=False,
                                         file=sys.stderr) as bar:
            while True:
                try:
                    chunk = resp.read1(_CHUNK)
                except http.client.IncompleteRead as exc:
                    f.write(exc.partial)
                    raise ValueError(f"connection closed at {got + len(exc.partial)} bytes in the middle of a "
                                     "chunked transfer") from None
                except http.client.HTTPException as exc:
                    raise ValueError(f"transfer broken at {got} bytes ({type(exc).__name__})") from None
                except TimeoutError:
                    raise ValueError(f"no data for {timeout:g} s at {got} bytes ({TIMEOUT_ENV}); rerun to "
                                     "resume") from None
                if not chunk:
                    break
                if size is not None and got + len(chunk) > size:
                    raise _Refused(f"the server sends more than the entry's size of {size} bytes")
                f.write(chunk)
                got += len(chunk)
                bar.update(len(chunk))
                window_bytes += len(chunk)
                elapsed = time.monotonic() - window_start
                if elapsed >= timeout:
                    if window_bytes < min_rate * elapsed:
                        raise ValueError(f"too slow: {window_bytes / elapsed:.0f} B/s over {elapsed:.0f} s "
                                         f"(minimum {min_rate:g} B/s, {MIN_RATE_ENV}); rerun to resume from "
                                         f"{got} bytes")
                    window_start, window_bytes = time.monotonic(), 0
    if total is not None and got != total:
        raise ValueError(f"connection closed at {got} of {total} bytes")
    return "size" if size is not None else "content-length" if announced is not None else "chunked" if chunked \
        else None


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
    if a.size is not None and path.stat().st_size != a.size:
        size = path.stat().st_size
        path.unlink()
        raise DataError(f"{a.file}: {size} bytes, the entry's size is {a.size}; the file was deleted and nothing "
                        "was extracted")
    return got


# ------------------------------------------------------------------------------------------- locking
@contextlib.contextmanager
def _root_lock(root: Path, log):
    """``<root>/.yolokit/lock`` held with ``fcntl.flock`` for the whole ``get``; a second process waits."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (the marker and part-file logic still hold)
        yield
        return
    path = _state(root) / "lock"
    said = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not said:
                log(f"waiting for another `yolokit data get` into {root} to finish ...")
                said = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # the holder before us may have removed the file: then lock the new one
            if os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _mkdirs(path: Path, made: list) -> None:
    """``mkdir -p`` that records each folder it made (a failed call removes them again if empty)."""
    todo = []
    p = path
    while not p.exists():
        todo.append(p)
        p = p.parent
    for p in reversed(todo):
        try:
            os.mkdir(p)
            made.append(p)
        except FileExistsError:
            pass


def _tidy(made: list, root: Path) -> None:
    """Remove the folders this call made that are empty now (never anything else)."""
    for p in [_state(root) / "downloads", *reversed(made)]:
        with contextlib.suppress(OSError):
            p.rmdir()  # only an empty folder goes


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
    data = None
    if "format" in raw:
        from yolokit.data.config import read_spec

        data = read_spec(path)[0]

    def missing_paths():
        return [p for s in data["splits"] for p in split_paths(data, root, s) if not p.exists()] if data else []

    todo = [a for a in archives if not marker_ok(root, a)]
    missing = missing_paths()
    there = not missing if data else (root.is_dir() and any(root.iterdir()))
    if todo and not force and there and not download_started(root):
        log(f"{path.stem}: every file is already in {root} (not fetched by yolokit, so not verified); "
            "nothing to do (--force fetches it anyway)")
        return {"root": root, "yaml": path, "archives": {a.file: "present" for a in archives}}
    if not todo and not missing:
        log(f"{path.stem}: complete in {root} ({len(archives)} archive(s) verified by their markers); nothing to do")
        return {"root": root, "yaml": path, "archives": {a.file: "present" for a in archives}}
    if not todo and not force and (why := _mismatch(root, archives, missing[0])):
        raise DataError(f"{path.stem}: {why}")
    made = []
    _mkdirs(_state(root), made)
    try:
        with _root_lock(root, log):
            return _get_locked(root, archives, path, data, missing_paths, mirror, yes, confirm, keep_archives,
                               force, progress, log)
    finally:
        _tidy(made, root)


def _get_locked(root, archives, path, data, missing_paths, mirror, yes, confirm, keep_archives, force, progress,
                log) -> dict:
    todo = [a for a in archives if not marker_ok(root, a)]  # again: a run we waited for may have done it
    status = {a.file: "present" for a in archives if a not in todo}
    missing = missing_paths()
    if not todo:
        if not missing:
            log(f"{path.stem}: complete in {root} ({len(archives)} archive(s) verified by their markers); "
                "nothing to do")
            return {"root": root, "yaml": path, "archives": status}
        log(f"{path.stem}: {missing[0]} is missing although every archive is marked done; fetching again")
        todo = list(archives)
    downloads = _state(root) / "downloads"
    need = sum((a.size or 0) for a in todo if not (downloads / a.file).is_file())
    log(f"{path.stem}: {len(todo)} archive(s) into {root}: "
        + ", ".join(f"{a.file} ({human_size(a.size) if a.size else 'size unknown'})" for a in todo))
    if need > CONFIRM_BYTES and not yes:
        if confirm is None or not confirm(f"download {human_size(need)}?"):
            raise ConfigError(f"{path.stem} needs {human_size(need)} of downloads; pass --yes to fetch it")
    for a in todo:
        arch = downloads / a.file
        proof = "kept archive"
        if not arch.is_file():
            downloads.mkdir(exist_ok=True)
            url, proof = fetch(a.sources(mirror), arch, a.size, progress)
            log(f"  {a.file}: downloaded from {url}")
        got = verify(arch, a)
        if not a.checksums:
            log(f"  {a.file}: no published checksum; sha256 {got['sha256']} recorded in {_marker(root, a)}")
        tmp = _state(root) / f"tmp-{a.file}"
        if tmp.exists() or tmp.is_symlink():
            rmtree(tmp)  # a previous extraction was interrupted: start it over
        tmp.mkdir()
        dest = root / a.into if a.into else root
        try:
            done = extract(arch, tmp, a.strip, reserved=() if a.into else (STATE,))
            dest.mkdir(parents=True, exist_ok=True)
            _merge(tmp, dest)
        except ArchiveCut as exc:
            rmtree(tmp)
            if a.checksums:  # the publisher's own bytes: keeping them lets the user look
                raise
            arch.unlink(missing_ok=True)  # a download that is not whole is never kept as one
            raise DataError(f"{exc}; the download was deleted: rerun to fetch it again (or --mirror URL)") from None
        except BaseException:
            rmtree(tmp)
            raise
        rmtree(tmp)
        _marker(root, a).unlink(missing_ok=True)
        tmp_marker = _state(root) / f"{a.file}.done.tmp"
        tmp_marker.write_text(json.dumps({"url": a.url, "file": a.file, "files": done.files, "top": done.top,
                                          "length": proof, "checksums": {**got, **a.checksums}}, indent=1) + "\n")
        os.replace(tmp_marker, _marker(root, a))  # the marker appears whole or not at all
        if not keep_archives:
            arch.unlink()
        log(f"  {a.file}: {done.files} files extracted into {dest}")
        status[a.file] = "extracted"
    if downloads.is_dir() and not any(downloads.iterdir()):
        downloads.rmdir()
    missing = missing_paths()
    if missing:
        why = _mismatch(root, archives, missing[0])
        raise DataError(f"{path.stem}: {why or f'{missing[0]} not found after extracting every archive'}")
    return {"root": root, "yaml": path, "archives": status}
