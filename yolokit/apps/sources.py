"""Where frames come from: an image, a directory, a glob, a video file, a webcam or a stream.

``open_source(spec)`` turns the user's SOURCE string into an :class:`ImageSource` or a
:class:`VideoSource`. Both iterate :class:`Frame` objects holding an OpenCV BGR uint8 image and
count what they could not read in ``failed`` (reported by the caller, never silent).
"""

from __future__ import annotations

import glob
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from yolokit.data.images import IMAGE_SUFFIXES, is_image
from yolokit.errors import DataError

VIDEO_EXTS = {".avi", ".mp4", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm", ".flv", ".3gp",
              ".ts"}
COUNT_SLACK = 2  # frames a healthy file's declared count may exceed what it decodes to
STREAM_RE = re.compile(r"^(rtsp|rtmp|http|https|udp|tcp)://", re.I)


@dataclass
class Frame:
    """One decoded picture. ``image`` is HxWx3 uint8 in OpenCV's BGR order; ``index`` its position
    in the source (frame number for video, file number for images); ``name`` the file it came from."""

    index: int
    image: np.ndarray
    name: str
    decode_s: float = 0.0
    out_name: str = ""  # the annotated copy's file name when ``name`` is taken by another input (x.jpg -> x_2.jpg)


class ImageSource:
    """Still images from a list of files, read in the given order.

    Files are decoded by the dataset's reader (:func:`yolokit.data.images.read_image_bgr`: stored pixels, EXIF
    orientation ignored, truncated/corrupt files refused), so ``detect`` sees what ``check`` and training see.
    An unreadable file is skipped: its path is appended to ``failed`` and the reason to ``reasons``."""

    kind = "images"

    def __init__(self, paths: list[Path], name: str, out_names: list[str] | None = None):
        self.paths = list(paths)
        self.name = name
        self.out_names = out_names or distinct_names([p.name for p in self.paths])
        self.failed: list[str] = []
        self.reasons: list[str] = []
        self.fps = None

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Frame]:
        from yolokit.data.images import read_image_bgr

        for i, path in enumerate(self.paths):
            t0 = time.perf_counter()
            try:
                image = read_image_bgr(path)
            except DataError as exc:
                self.failed.append(str(path))
                self.reasons.append(str(exc))
                continue
            yield Frame(i, image, path.name, time.perf_counter() - t0, self.out_names[i])


class VideoSource:
    """Frames from ``cv2.VideoCapture``: a video file, a webcam index or a stream URL.

    OpenCV's ``read()`` answers False both at the end of a stream and for a frame it could not
    decode, and for files it may also skip an undecodable packet silently. A failed read followed by
    a good frame, or a jump in a file's timestamps, is a bad frame: counted in ``failed`` and skipped
    (``Frame.index`` keeps the true frame number). ``max_failures`` failed reads in a row end the
    stream; those trailing ones are not counted, as reads past a file's real end fail the same way.

    Frames a file's container promises but the stream never delivers (a truncated file ends early; a
    damaged one loses sync and skips ahead) are counted in ``lost`` when the shortfall exceeds
    :data:`COUNT_SLACK`: OpenCV's count of a healthy AVI can exceed its decodable frames by a couple
    (video02.avi: 750 vs 748).
    """

    kind = "video"

    def __init__(self, spec: str | int, name: str, max_failures: int = 25,
                 capture_factory: Callable[[str | int], object] | None = None):
        import cv2

        self.spec = spec
        self.name = name
        self.max_failures = max_failures
        factory = capture_factory or cv2.VideoCapture
        self.cap = factory(spec)
        if not self.cap.isOpened():
            raise DataError(f"{spec}: cannot open as a video (file, webcam index or stream URL)")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        # Webcams and some streams report 0 or nonsense; 30 fps is what a player assumes.
        self.fps = fps if 0 < fps < 1000 else 30.0
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.length = count if count > 0 and not isinstance(spec, int) and not STREAM_RE.match(str(spec)) \
            else None
        self.width = int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.failed = 0
        self.lost = 0  # frames the container counts that never came (see the class docstring)

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("a live source has no length")
        return self.length

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        index, pending = 0, 0  # pending: failed reads not yet known to be mid-stream
        last_ms = None
        try:
            while pending < self.max_failures:
                t0 = time.perf_counter()
                ok, image = self.cap.read()
                if not ok or image is None:
                    pending += 1
                    continue
                skipped = pending
                ms = self.cap.get(cv2.CAP_PROP_POS_MSEC) if self.length is not None else 0.0
                if last_ms is not None and ms > last_ms:
                    # FFmpeg's reader also drops undecodable packets inside read() without saying so;
                    # the timestamps show the gap (a constant-frame-rate file is assumed).
                    skipped = max(skipped, round((ms - last_ms) * self.fps / 1000.0) - 1)
                last_ms = ms if ms > 0 else None
                index += skipped
                self.failed += skipped
                pending = 0
                yield Frame(index, image, self.name, time.perf_counter() - t0)
                index += 1
            if self.length is not None and self.length - index > max(COUNT_SLACK, self.length // 200):
                self.lost = self.length - index
        finally:
            self.cap.release()

    def report(self) -> str | None:
        """One line on frames that did not come, or None (read after iterating)."""
        if not self.lost:
            return None
        return (f"{self.name}: {self.lost} of the {self.length} frames the file declares never arrived "
                f"(stream ended after frame {self.length - self.lost - 1}): the file is truncated or damaged")


def distinct_names(names: list[str], taken: set | None = None) -> list[str]:
    """``names`` with repeats made distinct (``x.jpg``, ``x_2.jpg``, ...), none of them in ``taken`` (which
    gains them): two inputs never write one output file."""
    taken = set() if taken is None else taken
    out = []
    for name in names:
        stem, dot, suffix = name.rpartition(".")
        stem, suffix = (stem, dot + suffix) if dot else (name, "")
        cand, k = name, 1
        while cand in taken:
            k += 1
            cand = f"{stem}_{k}{suffix}"
        taken.add(cand)
        out.append(cand)
    return out


def distinct_outputs(sources: list) -> list:
    """Give every source of one command its own output names: sources named alike (two ``images`` folders)
    get ``images``, ``images_2``; image files named alike across sources get ``x.jpg``, ``x_2.jpg``."""
    source_names, files = set(), set()
    for source in sources:
        source.name = distinct_names([source.name], source_names)[0]
        if isinstance(source, ImageSource):
            source.out_names = distinct_names(source.out_names, files)
    return sources


def open_source(spec: str, max_failures: int = 25) -> ImageSource | VideoSource:
    """Interpret SOURCE: a webcam index (``0``), a stream URL (``rtsp://``, ``http://``), a video
    file, an image file, a directory of images, or a glob (``'data/*.jpg'``).

    Raises DataError naming ``spec`` when it matches nothing readable."""
    spec = str(spec)
    if spec.isdigit():
        return VideoSource(int(spec), f"webcam{spec}", max_failures)
    if STREAM_RE.match(spec):
        # Output name: the URL's last path component (camera/stream.sdp -> stream), else its host.
        rest = spec.split("://", 1)[1].split("?", 1)[0].rstrip("/")
        tail = Path(rest.split("/", 1)[1]).stem if "/" in rest else rest.rsplit("@", 1)[-1]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", tail).strip("_")[:60] or "stream"
        return VideoSource(spec, name, max_failures)
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and is_image(p))
        if not files:
            raise DataError(f"{spec}: directory holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return ImageSource(files, path.name or "images")
    if path.is_file():
        if is_image(path):
            return ImageSource([path], path.stem)
        if path.suffix.lower() in VIDEO_EXTS:
            return VideoSource(str(path), path.stem, max_failures)
        raise DataError(f"{spec}: unknown file type {path.suffix!r}; expected an image "
                        f"({', '.join(sorted(IMAGE_SUFFIXES))}) or a video ({', '.join(sorted(VIDEO_EXTS))})")
    if glob.has_magic(spec):
        # one image once: a recursive glob through a link loop (sub -> .) matches one file at many paths
        files, seen = [], set()
        for p in sorted(glob.glob(spec, recursive=True), key=lambda p: (p.count(os.sep), p)):
            real = os.path.realpath(p)
            if is_image(Path(p)) and os.path.isfile(p) and real not in seen:
                seen.add(real)
                files.append(Path(p))
        files.sort()
        if not files:
            raise DataError(f"{spec}: the pattern matches no images")
        return ImageSource(files, re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(spec).parent.name or "glob"))
    raise DataError(f"{spec}: no such file, directory, glob match, webcam index or stream URL")
