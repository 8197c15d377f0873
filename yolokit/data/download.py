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

The HTTP transfer is :mod:`yolokit.data.fetch`; the dataset names and the parsing of ``download:``
entries are :mod:`yolokit.data.catalog`.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from yolokit.data.catalog import DATA_ROOT_ENV, STATE, Archive, get_command, parse_download, read_target
from yolokit.data.extract import ArchiveCut, extract, merge_tree as _merge, rmtree
from yolokit.data.fetch import MIRROR_ENV, fetch, file_checksums
from yolokit.errors import ConfigError, DataError
from yolokit.fileio import write_text_atomic
from yolokit.report import human_size

CONFIRM_BYTES = 1 << 30


class DatasetMissing(ConfigError):
    """A data YAML's files are not there; the message holds the ``yolokit data get`` command."""


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
        # written atomically: the marker appears whole or not at all
        write_text_atomic(_marker(root, a), json.dumps({"url": a.url, "file": a.file, "files": done.files,
                                                        "top": done.top, "length": proof,
                                                        "checksums": {**got, **a.checksums}}, indent=1) + "\n")
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
