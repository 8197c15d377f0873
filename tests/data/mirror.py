"""A local dataset mirror for the download tests: an HTTP server on 127.0.0.1 only, with Range support and
a switch that cuts a transfer short, plus archives in the publishers' layouts built from ../shared/data."""

from __future__ import annotations

import hashlib
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        srv = self.server
        name = self.path.lstrip("/")
        rng = self.headers.get("Range")
        srv.requests.append((name, rng))
        data = srv.files.get(name)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and srv.ranges:
            start = int(rng.split("=", 1)[1].split("-", 1)[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = srv.cut.pop(name, None)
        if cut is not None:  # an interrupted transfer: part of the body, then the connection drops
            body = body[:cut]
            self.close_connection = True
        self.wfile.write(body)
        srv.served[name] = srv.served.get(name, 0) + len(body)

    def log_message(self, *args):
        pass


class Mirror:
    """``with Mirror() as m: m.add("file.tar", bytes); m.url("file.tar")`` -- bound to 127.0.0.1 only."""

    def __init__(self, ranges: bool = True):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.files, self.httpd.cut, self.httpd.requests, self.httpd.served = {}, {}, [], {}
        self.httpd.ranges = ranges
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def add(self, name: str, data: bytes) -> str:
        self.httpd.files[name] = data
        return hashlib.sha256(data).hexdigest()

    def cut(self, name: str, nbytes: int) -> None:
        self.httpd.cut[name] = nbytes

    @property
    def requests(self) -> list:
        return self.httpd.requests

    @property
    def served(self) -> dict:
        return self.httpd.served


def voc_trainval_tar(shared: Path, out: Path) -> Path:
    """voc2012_rodm's 100 images and XML as ``VOCtrainval_11-May-2012.tar`` lays them out:
    VOCdevkit/VOC2012/{Annotations, JPEGImages, ImageSets/Main/trainval.txt}."""
    db = shared / "voc2012_rodm" / "data" / "database"
    xmls = sorted((db / "gts" / "pascalvoc_format").glob("*.xml"))
    with tarfile.open(out, "w") as tf:
        for x in xmls:
            tf.add(x, f"VOCdevkit/VOC2012/Annotations/{x.name}")
        for j in sorted((db / "images").glob("*.jpg")):
            tf.add(j, f"VOCdevkit/VOC2012/JPEGImages/{j.name}")
        lst = out.with_suffix(".trainval.txt")
        lst.write_text("".join(x.stem + "\n" for x in xmls))
        tf.add(lst, "VOCdevkit/VOC2012/ImageSets/Main/trainval.txt")
    return out


def coco_zips(shared: Path, out_dir: Path) -> dict[str, Path]:
    """coco128_cocojson as the three COCO 2017 zips: annotations_trainval2017.zip (annotations/...),
    train2017.zip (train2017/...), val2017.zip (val2017/...)."""
    src = shared / "coco128_cocojson"
    out = {}
    for name, folder in (("annotations_trainval2017.zip", "annotations"), ("train2017.zip", "train2017"),
                         ("val2017.zip", "val2017")):
        path = out_dir / name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr(f"{folder}/", b"")
            for f in sorted((src / folder).iterdir()):
                zf.write(f, f"{folder}/{f.name}")
        out[name] = path
    return out


def github_zip(src: Path, top: str, out: Path, skip=("PROVENANCE.txt",)) -> Path:
    """A folder as GitHub serves a repository archive: everything under one ``<repo>-<commit>/`` folder."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for f in sorted(src.rglob("*")):
            if f.is_file() and f.name not in skip:
                zf.write(f, f"{top}/{f.relative_to(src).as_posix()}")
    return out
