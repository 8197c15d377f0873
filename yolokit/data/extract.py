"""The one archive extractor of yolokit: .tar(.gz/.bz2/.xz) and .zip into a fresh folder, refusing anything
that could land outside it or exhaust the machine.

Checks that do not depend on the Python version (CPython's ``tarfile`` data filter, PEP 706, is run as
well where it exists, but before 3.11.13 / 3.12.11 / 3.13.4 it can be fooled by symlink chains longer than
``PATH_MAX`` -- CVE-2025-4517 -- so nothing here relies on ``os.path.realpath``):

* **names** -- every member name is checked as text: not absolute, no ``..``, no NUL, components of at most
  255 bytes and a whole path under ``PATH_MAX``; ``reserved`` top-level names (``.yolokit``, where the
  completion markers live) are refused;
* **links** -- a symlink's target is relative, climbs (``..``) only at its start and never above the
  extraction folder, and nothing is written *through* a link: members below a linked folder are refused,
  and the links themselves are made after every file, so no write can follow one. A hard link must name a
  regular file extracted before it (its bytes are copied);
* **special files** (FIFOs, devices) are refused, and so is a member that is a file in one place and a
  folder in another;
* **limits** -- total expanded size, expansion ratio and member count, from the declared sizes before
  anything is written (a zip member is never read past its declared size); each limit is named in its
  error with the environment variable that raises it. Free space is checked before extracting;
* **whole archives** -- a tar must end with its end-of-archive blocks and a compressed stream with its
  end marker, a zip with its central directory and every member's CRC, so a cut download is never taken
  for a finished one.

Every failure is one :class:`DataError` line naming the archive and the member.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from yolokit.errors import DataError
from yolokit.report import human_size
from yolokit.settings import env_number

MAX_BYTES_ENV = "YOLOKIT_EXTRACT_MAX_BYTES"
MAX_RATIO_ENV = "YOLOKIT_EXTRACT_MAX_RATIO"
MAX_FILES_ENV = "YOLOKIT_EXTRACT_MAX_FILES"
NAME_MAX = 255  # bytes per path component (ext4, xfs, btrfs, APFS)
PATH_MAX = 4000  # a little under Linux's 4096, leaving room for the root's own path
RATIO_FLOOR = 100 << 20  # the ratio limit applies from this many expanded bytes on (small text archives compress well)
SPACE_MARGIN = 64 << 20
_CHUNK = 1 << 20


class ArchiveCut(DataError):
    """The archive is cut short or corrupt (a download that stopped early, or bad bytes)."""


@dataclass
class Limits:
    """``max_bytes``: total expanded size; ``max_ratio``: expanded / archive size (above :data:`RATIO_FLOOR`);
    ``max_files``: member count. Defaults fit COCO 2017 (19 GB, 118k files) with room to spare."""

    max_bytes: int = 200 * 10**9
    max_ratio: float = 200.0
    max_files: int = 2_000_000

    @classmethod
    def from_env(cls) -> "Limits":
        d = cls()
        return cls(env_number(MAX_BYTES_ENV, d.max_bytes, integer=True), env_number(MAX_RATIO_ENV, d.max_ratio),
                   env_number(MAX_FILES_ENV, d.max_files, integer=True))


@dataclass
class Extracted:
    """What :func:`extract` wrote: ``files`` regular files, ``top`` the top-level names (after ``strip``)."""

    files: int
    top: list


def _show(name: str) -> str:
    """A member name short enough for one error line."""
    return name if len(name) <= 100 else f"{name[:60]}...{name[-30:]}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def member_parts(name: str, strip: int, where: str, reserved=()) -> tuple[str, ...] | None:
    """The path components a member ``name`` lands on after dropping ``strip`` leading folders (None: the
    member is one of the dropped folders). Raises one line for a name that could leave the folder."""
    if "\0" in name:
        raise DataError(f"{where}: member {name[:80]!r} has a NUL character in its name")
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise DataError(f"{where}: member {name[:80]!r} has an absolute path; refused")
    parts = tuple(p for p in PurePosixPath(text).parts if p not in ("", "."))
    if ".." in parts:
        raise DataError(f"{where}: member {name[:80]!r} points outside the extraction folder (..); refused")
    for p in parts:
        if len(p.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise DataError(f"{where}: member {name[:60]!r}...: a name of {len(p)} characters "
                            f"(the file system takes {NAME_MAX} bytes); refused")
    if len(text.encode("utf-8", "surrogateescape")) > PATH_MAX:
        raise DataError(f"{where}: member {name[:60]!r}...: a path of {len(text)} characters; refused")
    parts = parts[strip:]
    if parts and parts[0] in reserved:
        raise DataError(f"{where}: member {name[:80]!r} writes into yolokit's own {parts[0]}/ folder; refused")
    return parts or None


def _link_target_ok(member: tuple[str, ...], target: str) -> bool:
    """A symlink at ``member`` pointing at ``target`` stays inside the folder whatever the links around it:
    relative, ``..`` only at its start (so it climbs real folders, never a link) and never above the top."""
    if not target or "\0" in target or target.startswith("/") or len(target) > PATH_MAX:
        return False
    parts = [p for p in target.split("/") if p not in ("", ".")]
    up = 0
    while up < len(parts) and parts[up] == "..":
        up += 1
    return ".." not in parts[up:] and up <= len(member) - 1


class _Tree:
    """The folder being filled, as the archive declared it: which paths are folders, files and links."""

    def __init__(self, dest: Path, where: str):
        self.dest, self.where, self.kinds = dest, where, {}

    def _clash(self, parts, what):
        raise DataError(f"{self.where}: member {_show('/'.join(parts))!r} {what}; refused")

    def parent(self, parts: tuple[str, ...]) -> Path:
        """Make the parent folders of ``parts`` (iteratively, one string per level: chains thousands deep are
        fine)."""
        cur = str(self.dest)
        for i in range(1, len(parts)):
            cur = f"{cur}/{parts[i - 1]}"
            kind = self.kinds.get(parts[:i])
            if kind is None:
                try:
                    os.mkdir(cur)
                except FileExistsError:
                    pass
                self.kinds[parts[:i]] = "d"
            elif kind == "l":
                self._clash(parts, f"lies inside the linked folder {_show('/'.join(parts[:i]))!r}")
            elif kind != "d":
                self._clash(parts, f"lies inside {_show('/'.join(parts[:i]))!r}, which is a file in the archive")
        return Path(f"{cur}/{parts[-1]}")

    def claim(self, parts, kind: str) -> Path:
        path = self.parent(parts)
        old = self.kinds.get(parts)
        if old is not None and (old != kind or kind == "l"):
            names = {"d": "a folder", "f": "a file", "l": "a link"}
            self._clash(parts, f"is {names[kind]} and also {names[old]} in the archive")
        self.kinds[parts] = kind
        return path


def _write(path: Path, src, limit: int | None, where: str, name: str) -> int:
    """Copy ``src`` into a new file ``path`` (never through a link); at most ``limit`` bytes."""
    if path.is_symlink():
        raise DataError(f"{where}: member {name!r} would be written through a link; refused")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    n = 0
    with os.fdopen(os.open(path, flags, 0o666), "wb") as out:
        while chunk := src.read(_CHUNK):
            n += len(chunk)
            if limit is not None and n > limit:
                raise DataError(f"{where}: member {name!r} expands beyond its declared {limit} bytes; refused")
            out.write(chunk)
    return n


def _check_limits(where: str, total: int, count: int, archive_size: int, limits: Limits) -> None:
    if count > limits.max_files:
        raise DataError(f"{where}: more than {limits.max_files} members; refused (raise {MAX_FILES_ENV} "
                        f"if the archive is genuine)")
    if total > limits.max_bytes:
        raise DataError(f"{where}: expands to more than {human_size(limits.max_bytes)}; refused (raise "
                        f"{MAX_BYTES_ENV} if the archive is genuine)")
    if total > RATIO_FLOOR and total > limits.max_ratio * max(archive_size, 1):
        raise DataError(f"{where}: expands to {human_size(total)} from {human_size(archive_size)}, over "
                        f"{limits.max_ratio:g}x; refused as a decompression bomb (raise {MAX_RATIO_ENV} "
                        f"if the archive is genuine)")


def _check_space(where: str, dest: Path, total: int) -> None:
    try:
        free = shutil.disk_usage(dest).free
    except OSError:
        return
    if total + SPACE_MARGIN > free:
        raise DataError(f"{where}: needs {human_size(total)} to extract, {human_size(free)} free on {dest}; "
                        "free some space (or use --dir on another disk)")


def extract(archive: Path, dest: Path, strip: int = 0, *, reserved=(), limits: Limits | None = None) -> Extracted:
    """Unpack ``archive`` (.zip, or .tar with any compression) into the existing, empty folder ``dest``,
    dropping ``strip`` leading folders. See the module docstring for what is refused."""
    import tarfile
    import zipfile
    import zlib

    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    limits = limits or Limits.from_env()
    where = archive.name
    try:
        if zipfile.is_zipfile(archive):
            return _extract_zip(archive, dest, strip, reserved, limits, where)
        if archive.suffix.lower() == ".zip":
            raise ArchiveCut(f"{where}: not a whole zip archive (its central directory, at the end, is missing: "
                             "cut short?)")
        return _extract_tar(archive, dest, strip, reserved, limits, where)
    except DataError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, RuntimeError, NotImplementedError,
            ValueError) as exc:
        raise ArchiveCut(f"{where}: the archive is cut short or corrupt ({_one_line(exc)})") from None
    except OSError as exc:
        if exc.errno == 28:
            raise DataError(f"{where}: the disk is full while extracting into {dest}") from None
        raise DataError(f"{where}: cannot extract ({exc.strerror or exc})") from None
    except Exception as exc:  # lzma/bz2 errors have no common base
        if type(exc).__module__ in ("_lzma", "lzma", "_bz2", "bz2", "_compression"):
            raise ArchiveCut(f"{where}: the archive is cut short or corrupt ({_one_line(exc)})") from None
        raise


def _extract_zip(archive, dest, strip, reserved, limits, where) -> Extracted:
    import zipfile

    size = archive.stat().st_size
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        total = 0
        for k, info in enumerate(infos):
            total += info.file_size
            if k % 1000 == 0 or k == len(infos) - 1:
                _check_limits(where, total, k + 1, size, limits)
            if info.flag_bits & 0x1:
                raise DataError(f"{where}: member {info.filename!r} is encrypted (yolokit takes no passwords); "
                                "refused")
        _check_space(where, dest, total)
        tree, n, top = _Tree(dest, where), 0, []
        for info in infos:
            parts = member_parts(info.filename, strip, where, reserved)
            if parts is None:
                continue
            if parts[0] not in top:
                top.append(parts[0])
            if info.is_dir():
                path = tree.claim(parts, "d")
                if not path.is_dir():
                    os.mkdir(path)
                continue
            # a zip "symlink" (unix mode S_IFLNK) is written as a small file holding its target, as zipfile does
            path = tree.claim(parts, "f")
            with zf.open(info) as src:  # reads stop at the declared size; a bad CRC raises BadZipFile
                _write(path, src, info.file_size, where, info.filename)
            n += 1
    return Extracted(n, top)


def _extract_tar(archive, dest, strip, reserved, limits, where) -> Extracted:
    import tarfile

    size = archive.stat().st_size
    try:
        tf = tarfile.open(archive)
    except tarfile.ReadError as exc:
        raise ArchiveCut(f"{where}: neither a zip nor a tar archive, or cut short ({_one_line(exc)})") from None
    with tf:
        members, total = [], 0
        for m in tf:  # lazily: the limits stop a bomb at its first oversized header
            members.append(m)
            total += m.size if m.isreg() else 0
            _check_limits(where, total, len(members), size, limits)
            if not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
                kind = ("a FIFO" if m.isfifo() else "a character device" if m.ischr() else
                        "a block device" if m.isblk() else "a special file")
                raise DataError(f"{where}: member {_show(m.name)!r} is {kind}; refused")
        # a whole tar ends with zero blocks where the next header would be; a cut one does not
        tf.fileobj.seek(tf.offset)
        end = tf.fileobj.read(1024)
        if len(end) < 512 or end.strip(b"\0"):
            raise ArchiveCut(f"{where}: the archive is cut short or corrupt at byte {tf.offset} (no "
                             "end-of-archive blocks)")
        for _ in range(16):  # read on to the end so a compressed stream's own end marker and CRC are checked
            if not tf.fileobj.read(_CHUNK):
                break
        _check_space(where, dest, total)
        data_filter = getattr(tarfile, "data_filter", None)  # PEP 706 (3.11.4+): a second opinion
        tree, n, top, links = _Tree(dest, where), 0, [], []
        for m in members:
            if data_filter is not None:
                try:
                    data_filter(m, str(dest))
                except tarfile.FilterError as exc:
                    raise DataError(f"{where}: member {_show(m.name)!r} refused ({_one_line(exc)[:200]})") from None
            parts = member_parts(m.name, strip, where, reserved)
            if parts is None:
                continue
            if parts[0] not in top:
                top.append(parts[0])
            if m.isdir():
                path = tree.claim(parts, "d")
                if not path.is_dir():
                    os.mkdir(path)
            elif m.isreg():
                path = tree.claim(parts, "f")
                with tf.extractfile(m) as src:
                    _write(path, src, m.size, where, m.name)
                n += 1
            elif m.islnk():
                try:
                    target = member_parts(m.linkname, strip, where, reserved)
                except DataError:
                    target = None
                if target is None or tree.kinds.get(target) != "f":
                    raise DataError(f"{where}: hard link {_show(m.name)!r} -> {_show(m.linkname)!r} does not name a file "
                                    "extracted before it; refused")
                path = tree.claim(parts, "f")
                with open(dest.joinpath(*target), "rb") as src:
                    _write(path, src, None, where, m.name)
                n += 1
            else:  # symlink: checked now, made after every file
                if not _link_target_ok(parts, m.linkname):
                    raise DataError(f"{where}: symlink {_show(m.name)!r} -> {_show(m.linkname)!r} points outside the "
                                    "extraction folder (or through '..' inside it); refused")
                links.append((tree.claim(parts, "l"), m.linkname))
        for path, target in links:
            os.symlink(target, path)
    return Extracted(n, top)


def rmtree(path: Path) -> None:
    """Delete a folder tree yolokit made, without recursion (chains thousands deep) and without following
    links (a link is removed, never what it points at)."""
    path = Path(path)
    if path.is_symlink() or not path.exists():
        path.unlink(missing_ok=True)
        return
    stack = [(path, False)]
    while stack:
        folder, emptied = stack.pop()
        if emptied:
            os.rmdir(folder)
            continue
        stack.append((folder, True))
        with os.scandir(folder) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append((Path(e.path), False))
                else:
                    os.unlink(e.path)


def merge_tree(src: Path, dst: Path, where: str = "archive") -> None:
    """Move the tree ``src`` into ``dst``: whole folders by one rename where ``dst`` lacks them, files
    replacing files. A file where ``dst`` has a folder (or the reverse), or a link in ``dst`` where a folder
    is merged, is an error: nothing of the user's is deleted or written through. No recursion."""
    stack = [(Path(src), Path(dst), None)]
    while stack:
        s, d, done = stack.pop()
        if done:
            os.rmdir(s)  # a merged sub-folder, now empty (``src`` itself stays: the caller made it)
            continue
        if done is False:
            stack.append((s, d, True))
        for entry in sorted(s.iterdir()):
            target = d / entry.name
            real_dir = entry.is_dir() and not entry.is_symlink()
            if target.is_symlink():
                if real_dir:
                    raise DataError(f"{where}: '{target}' is a link but the archive holds a folder there; "
                                    "move it away and rerun")
                os.replace(entry, target)  # replaces the link itself, never what it points at
            elif real_dir and target.is_dir():
                stack.append((entry, target, False))
            elif target.exists() and (real_dir or target.is_dir()):
                what = "folder" if real_dir else "file"
                raise DataError(f"{where}: '{target}' is a {'file' if real_dir else 'folder'} but the archive "
                                f"holds a {what} there; move it away and rerun")
            else:
                os.replace(entry, target)
