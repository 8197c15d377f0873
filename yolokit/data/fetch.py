"""Download one file over HTTP from the first of several URLs that answers, for ``yolokit data get`` and the
shipped assets.

* **resume** -- the bytes go to ``<dest>.part``; a later call asks the server for the rest with an HTTP
  ``Range`` header (a server that ignores it gets the file again from byte 0);
* **length proof** -- the bytes must match the caller's ``size`` or the server's ``Content-Length`` (or a
  chunked transfer must reach its last chunk); :func:`fetch` says which of these proved the length;
* **no hang** -- a read that waits more than ``YOLOKIT_DOWNLOAD_TIMEOUT`` seconds (default 30), or a transfer
  slower than ``YOLOKIT_DOWNLOAD_MIN_RATE`` bytes/s (default 1000) over that many seconds, is one error
  line; the ``.part`` file is kept, so a rerun resumes.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

from yolokit.errors import DataError
from yolokit.settings import env_number

MIRROR_ENV = "YOLOKIT_DATA_MIRROR"
TIMEOUT_ENV = "YOLOKIT_DOWNLOAD_TIMEOUT"
MIN_RATE_ENV = "YOLOKIT_DOWNLOAD_MIN_RATE"
OFFLINE_HINT = (f"offline? serve the archives from a reachable copy with --mirror URL (or {MIRROR_ENV}=URL; "
                "URL/<archive file> is tried first)")
_CHUNK = 1 << 20


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
    """One source into ``part`` (resumed where it ends); returns what proved the length (see :func:`fetch`)."""
    import urllib.error

    timeout = timeout or env_number(TIMEOUT_ENV, 30.0)
    min_rate = env_number(MIN_RATE_ENV, 1000.0)
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    try:
        resp = _request(url, have, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return _range_not_satisfiable(exc, url, part, size, have, progress, timeout)
        raise
    with resp:
        have, mode = _resume_point(resp, have)
        announced = _announced_length(resp, have, size)
        total = announced if announced is not None else size
        chunked = bool(getattr(resp, "chunked", False))
        got = _copy(resp, part, mode, have, total, size, progress, timeout, min_rate)
    if total is not None and got != total:
        raise ValueError(f"connection closed at {got} of {total} bytes")
    return "size" if size is not None else "content-length" if announced is not None else "chunked" if chunked \
        else None


def _request(url: str, have: int, timeout: float):
    """Open ``url``, asking for the bytes from ``have`` on when a part file holds some."""
    import http.client
    import urllib.request

    headers = {"User-Agent": "yolokit-data-get"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except http.client.HTTPException as exc:  # a malformed status line or headers
        raise ValueError(f"bad HTTP response ({type(exc).__name__}: {exc})") from None


def _range_not_satisfiable(exc, url: str, part: Path, size: int | None, have: int, progress: bool,
                           timeout: float) -> str | None:
    """HTTP 416 to a resume: the part file is the whole file already, of unknown length, or too long."""
    total = exc.headers.get("Content-Range", "").rpartition("/")[2]
    known = size or (int(total) if total.isascii() and total.isdigit() else None)
    if known == have:
        return "size" if size else "content-length"  # the part file already holds the whole file
    if known is None:
        return None
    part.unlink()  # longer than the file: not a prefix of it; start over
    return _fetch_one(url, part, size, progress, timeout)


def _resume_point(resp, have: int) -> tuple[int, str]:
    """``(have, file mode)``: append where a 206 answer resumes, else start over from byte 0."""
    status = getattr(resp, "status", 200)
    if have and status == 206:
        try:
            start = int(resp.headers.get("Content-Range", f"bytes {have}-").split()[1].split("-")[0])
        except (IndexError, ValueError):
            raise ValueError(f"bad Content-Range {resp.headers.get('Content-Range')!r}") from None
        if start != have:
            raise ValueError(f"server resumed at byte {start}, expected {have}")
        return have, "ab"
    return 0, "wb"  # no Range support (200): start over


def _announced_length(resp, have: int, size: int | None) -> int | None:
    """The whole file's length by the server's ``Content-Length`` (None: not given); it must match ``size``."""
    length = resp.headers.get("Content-Length")
    if length is not None and not (length.isascii() and length.strip().isdigit()):
        raise ValueError(f"bad Content-Length {length!r}")
    announced = have + int(length) if length is not None else None
    if size is not None and announced is not None and announced != size:
        raise _Refused(f"the server sends {announced} bytes but the entry's size is {size}")
    return announced


def _copy(resp, part: Path, mode: str, have: int, total: int | None, size: int | None, progress: bool,
          timeout: float, min_rate: float) -> int:
    """Write the response body into ``part`` with a progress bar; returns the bytes the part file holds."""
    from tqdm import tqdm

    got = have
    rate = _MinRate(min_rate, timeout)
    with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                                     desc=part.name[:-5], disable=not progress, leave=False,
                                     file=sys.stderr) as bar:
        while True:
            chunk = _read(resp, f, got, timeout)
            if not chunk:
                break
            if size is not None and got + len(chunk) > size:
                raise _Refused(f"the server sends more than the entry's size of {size} bytes")
            f.write(chunk)
            got += len(chunk)
            bar.update(len(chunk))
            rate.add(len(chunk), got)
    return got


def _read(resp, f, got: int, timeout: float) -> bytes:
    """The next chunk of the body (b"" at its end); a broken or stalled transfer is one ValueError line."""
    import http.client

    try:
        return resp.read1(_CHUNK)
    except http.client.IncompleteRead as exc:
        f.write(exc.partial)
        raise ValueError(f"connection closed at {got + len(exc.partial)} bytes in the middle of a "
                         "chunked transfer") from None
    except http.client.HTTPException as exc:
        raise ValueError(f"transfer broken at {got} bytes ({type(exc).__name__})") from None
    except TimeoutError:
        raise ValueError(f"no data for {timeout:g} s at {got} bytes ({TIMEOUT_ENV}); rerun to "
                         "resume") from None


class _MinRate:
    """A transfer slower than ``min_rate`` bytes/s over a window of ``window`` seconds is an error."""

    def __init__(self, min_rate: float, window: float):
        self.min_rate, self.window = min_rate, window
        self.start, self.bytes = time.monotonic(), 0

    def add(self, n: int, got: int) -> None:
        self.bytes += n
        elapsed = time.monotonic() - self.start
        if elapsed >= self.window:
            if self.bytes < self.min_rate * elapsed:
                raise ValueError(f"too slow: {self.bytes / elapsed:.0f} B/s over {elapsed:.0f} s "
                                 f"(minimum {self.min_rate:g} B/s, {MIN_RATE_ENV}); rerun to resume from "
                                 f"{got} bytes")
            self.start, self.bytes = time.monotonic(), 0


def file_checksums(path: Path, algorithms) -> dict:
    hs = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            for h in hs.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hs.items()}
