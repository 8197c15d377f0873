"""``yolokit data get`` against archives and servers that misbehave: every case is one error line (exit 2),
nothing is written or deleted outside the dataset root, and a cut download is never marked complete.

The archives are generated here (tarfile/zipfile in memory); the server is http.server on 127.0.0.1 in a
thread, switched per file into one way of failing."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from yolokit.cli import main
from yolokit.data import download as dl
from yolokit.data import extract as ex

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------ server
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802
        srv = self.server
        name = self.path.lstrip("/")
        srv.requests.append(name)
        data, mode = srv.files.get(name, (None, None))
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        if mode == "chunked-abort":
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            half = data[: len(data) // 2]
            self.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "no-length-cut":  # HTTP/1.0 style: the body ends where the connection ends
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        if mode == "short-length":  # Content-Length smaller than the body
            self.send_header("Content-Length", str(len(data) // 2))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
            return
        if mode == "trickle":
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for k in range(len(data)):
                if srv.stop.is_set():
                    break
                self.wfile.write(data[k:k + 1])
                self.wfile.flush()
                time.sleep(0.3)
            self.close_connection = True
            return
        if mode == "slow":  # whole but a little slow: two runs overlap
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            time.sleep(0.5)
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests, httpd.stop = {}, [], threading.Event()
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield httpd
    finally:
        httpd.stop.set()
        httpd.shutdown()
        httpd.server_close()


def url(httpd, name):
    return f"http://127.0.0.1:{httpd.server_address[1]}/{name}"


# ------------------------------------------------------------------------------------------ archives
def tar_bytes(members, mode="w") -> bytes:
    """``members``: (TarInfo, bytes | None) pairs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def ti(name, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def files_tar(n=20, mode="w", top="ds") -> bytes:
    return tar_bytes([(ti(f"{top}/labels/{k:03d}.txt"), f"0 0.5 0.5 0.{k % 9 + 1} 0.2\n".encode() * 50)
                      for k in range(n)], mode)


def zip_bytes(entries, compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def write_yaml(tmp: Path, entry: dict, root: Path | None = None, splits=None) -> Path:
    spec = {"root": str(root or tmp / "root"), "download": [entry]}
    if splits is not None:
        spec = {"format": "yolo", "names": ["a"], "splits": splits, **spec}
    path = tmp / "data.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run(argv) -> tuple[int, str, str]:
    """``yolokit ARGV`` in this process; stderr without the progress bar's carriage-return frames."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    lines = [ln.rsplit("\r", 1)[-1] for ln in err.getvalue().split("\n")]
    return code, out.getvalue(), "".join(ln + "\n" for ln in lines if ln.strip())


def one_line_error(argv, *needles) -> str:
    code, out, err = run(argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def outside_untouched(tmp: Path, before: set) -> None:
    """Nothing appeared beside the root (the test's own files aside)."""
    after = {p for p in tmp.rglob("*") if "root" not in p.relative_to(tmp).parts[:1]}
    assert after == before, sorted(map(str, after - before))


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setenv("YOLOKIT_DOWNLOAD_TIMEOUT", "1")
    monkeypatch.delenv("YOLOKIT_DATA_MIRROR", raising=False)


def serve_get(tmp, data: bytes, name="a.tar", mode=None, extra=None, root=None, splits=None):
    """Serve ``data`` and run ``data get`` on an entry for it; returns (httpd-requests, yaml, result)."""
    with server() as httpd:
        httpd.files[name] = (data, mode)
        entry = {"url": url(httpd, name), **(extra or {})}
        y = write_yaml(tmp, entry, root, splits)
        code, out, err = run(["data", "get", y])
        return code, out, err, list(httpd.requests), y


# ------------------------------------------------------------------------------------------ escapes
@pytest.mark.parametrize("member", [
    (ti("ds/evil", tarfile.SYMTYPE, "/etc"), None),
    (ti("ds/evil", tarfile.SYMTYPE, "../../../outside"), None),
    (ti("ds/evil", tarfile.LNKTYPE, "../../outside.txt"), None),
    (ti("ds/evil", tarfile.LNKTYPE, "/etc/passwd"), None),
    (ti("ds/fifo", tarfile.FIFOTYPE), None),
    (ti("ds/dev", tarfile.CHRTYPE), None),
    (ti("ds/blk", tarfile.BLKTYPE), None),
], ids=["abs-symlink", "up-symlink", "up-hardlink", "abs-hardlink", "fifo", "chardev", "blockdev"])
@pytest.mark.parametrize("pep706", [True, False], ids=["with-data-filter", "own-checks-only"])
def test_links_out_and_special_members_are_one_line(tmp_path, monkeypatch, member, pep706):
    if not pep706:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    before = set(tmp_path.rglob("*"))
    data = tar_bytes([(ti("ds/ok.txt"), b"ok"), member])
    code, out, err, _, _ = serve_get(tmp_path, data)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "refused" in err, err
    assert "evil" in err or "fifo" in err or "dev" in err or "blk" in err
    assert not list((tmp_path / "root").rglob("*.done"))
    outside_untouched(tmp_path, before | {tmp_path / "data.yaml"})


def cve_2025_4517_tar(target: str) -> bytes:
    """The published realpath-overflow chain: 16 symlinks to 247-character folders make ``realpath`` give
    up past PATH_MAX, so a filter that trusts it lets the last link reach ``target``."""
    comp = "d" * 247
    steps = "abcdefghijklmnop"
    members, path = [], ""
    for s in steps:
        members.append((ti(f"{path}{comp}", tarfile.DIRTYPE), None))
        members.append((ti(f"{path}{s}", tarfile.SYMTYPE, comp), None))
        path += comp + "/"
    linkpath = "/".join(steps) + "/" + "l" * 254
    members.append((ti(linkpath, tarfile.SYMTYPE, "../" * len(steps)), None))
    members.append((ti("escape", tarfile.SYMTYPE, linkpath + "/" + "../" * 16 + target), None))
    members.append((ti("escape/planted.txt"), b"pwned"))
    return tar_bytes(members)


@pytest.mark.parametrize("pep706", [True, False], ids=["with-data-filter", "own-checks-only"])
def test_cve_2025_4517_symlink_chain_cannot_escape(tmp_path, monkeypatch, pep706):
    if not pep706:  # yolokit's checks hold on their own (a Python without the 2025 filter fixes)
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    victim = tmp_path / "victim"
    victim.mkdir()
    before = set(tmp_path.rglob("*"))
    code, out, err, _, _ = serve_get(tmp_path, cve_2025_4517_tar(str(victim).lstrip("/")))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "refused" in err, err
    assert not (victim / "planted.txt").exists()
    outside_untouched(tmp_path, before | {tmp_path / "data.yaml"})


def test_file_key_outside_root_and_wrong_checksum_delete_nothing(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    for file in ("../../precious.txt", str(precious), "..", ".yolokit"):
        y = write_yaml(tmp_path, {"url": "http://127.0.0.1:1/x.tar", "file": file, "sha256": "0" * 64})
        one_line_error(["data", "get", y], "'file' must be a plain file name")
    assert precious.read_text() == "mine"
    y = write_yaml(tmp_path, {"url": "http://127.0.0.1:1/x.tar", "into": "../up"})
    one_line_error(["data", "get", y], "'into' must be a folder inside root")


def test_archive_cannot_plant_a_marker(tmp_path):
    data = tar_bytes([(ti("ds/ok.txt"), b"ok"), (ti(".yolokit/other.tar.done"), b'{"checksums": {}}')])
    code, out, err, _, _ = serve_get(tmp_path, data)
    assert code == 2 and ".yolokit" in err and "refused" in err
    assert not (tmp_path / "root" / ".yolokit" / "other.tar.done").exists()


# ------------------------------------------------------------------------------------------ cut downloads
@pytest.mark.parametrize("mode,name,body", [
    ("no-length-cut", "a.tar", lambda: files_tar()),
    ("no-length-cut", "a.tar.gz", lambda: files_tar(mode="w:gz")),
    ("short-length", "a.tar", lambda: files_tar()),
    ("short-length", "a.zip", lambda: zip_bytes([(f"ds/{k}.txt", b"x" * 3000) for k in range(20)])),
    ("chunked-abort", "a.tar", lambda: files_tar()),
], ids=["no-length-tar", "no-length-targz", "short-length-tar", "short-length-zip", "chunked-abort"])
def test_cut_downloads_are_never_complete_and_a_good_mirror_then_works(tmp_path, mode, name, body):
    data = body()
    with server() as httpd:
        httpd.files[name] = (data, mode)
        y = write_yaml(tmp_path, {"url": url(httpd, name)})
        code, out, err = run(["data", "get", y])
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert any(w in err for w in ("cut", "closed", "corrupt")), err
        root = tmp_path / "root"
        assert not list(root.rglob("*.done"))
        # the same bytes served whole by a mirror: fetched again (nothing of the cut copy is trusted)
        httpd.files["m/" + name] = (data, None)
        code, out, err = run(["data", "get", y, "--mirror", url(httpd, "m")])
        assert code == 0, err
        assert list(root.rglob("*.done")) and len(list((root / "ds").rglob("*.txt"))) == 20


def test_truncated_targz_on_disk_is_one_line(tmp_path):
    data = files_tar(mode="w:gz")
    (tmp_path / "a.tar.gz").write_bytes(data[: len(data) - 30])
    with pytest.raises(ex.ArchiveCut):
        ex.extract(tmp_path / "a.tar.gz", tmp_path / "out")


def test_body_longer_than_size_is_refused_early(tmp_path):
    code, out, err, _, _ = serve_get(tmp_path, b"\0" * (1 << 20), extra={"size": 1000})
    assert code == 2 and "size is 1000" in err
    assert not list((tmp_path / "root").rglob("*.part")) if (tmp_path / "root").exists() else True


def test_trickling_server_is_a_clear_error_not_a_hang(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOKIT_DOWNLOAD_MIN_RATE", "1000")
    t0 = time.monotonic()
    code, out, err, _, _ = serve_get(tmp_path, files_tar(2), mode="trickle")
    assert time.monotonic() - t0 < 10
    assert code == 2 and "too slow" in err and "YOLOKIT_DOWNLOAD_MIN_RATE" in err and "resume" in err, err


def test_offline_error_points_at_the_mirror(tmp_path):
    y = write_yaml(tmp_path, {"url": "http://127.0.0.1:1/a.tar"})
    line = one_line_error(["data", "get", y], "--mirror", "YOLOKIT_DATA_MIRROR")
    assert "resume from 0 bytes" not in line
    assert not (tmp_path / "root").exists()  # no empty .yolokit/downloads left behind


# ------------------------------------------------------------------------------------------ zip faults
def _patch_flag(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = b.find(sig)
        b[i + off] |= bit
    return bytes(b)


def test_zip_faults_are_one_line(tmp_path):
    enc = _patch_flag(zip_bytes([("ds/a.txt", b"secret")]), 0x1)
    crc = bytearray(zip_bytes([("ds/a.txt", b"hello world" * 10)]))
    crc[crc.find(b"hello") + 3] ^= 0xFF
    long_name = zip_bytes([("ds/" + "n" * 300 + ".txt", b"x")])
    clash = zip_bytes([("ds/a", b"file"), ("ds/a/b.txt", b"under a file")])
    for data, needle in ((enc, "encrypted"), (bytes(crc), "corrupt"), (long_name, "304 characters"),
                         (clash, "a file in the archive")):
        (tmp_path / "z.zip").write_bytes(data)
        with pytest.raises(dl.DataError, match=needle):
            ex.extract(tmp_path / "z.zip", tmp_path / "out")
        ex.rmtree(tmp_path / "out")
    code, out, err, _, _ = serve_get(tmp_path, enc, name="z.zip")
    assert code == 2 and "encrypted" in err and len(err.strip().splitlines()) == 1


def test_file_folder_clash_with_the_root_deletes_nothing(tmp_path):
    root = tmp_path / "root"
    (root / "ds" / "labels").mkdir(parents=True)
    (root / "ds" / "labels" / "mine.txt").write_text("keep")
    data = tar_bytes([(ti("ds/labels"), b"a file where the user has a folder")])
    splits = {"train": {"images": "ds/images", "labels": "ds/labels"}}
    code, out, err, _, _ = serve_get(tmp_path, data, splits=splits)
    assert code == 2 and "move it away" in err, err
    assert (root / "ds" / "labels" / "mine.txt").read_text() == "keep"


def test_size_must_be_a_number(tmp_path):
    y = write_yaml(tmp_path, {"url": "http://127.0.0.1:1/a.tar", "size": "1GB"})
    one_line_error(["data", "get", y], "'size' must be a whole number of bytes", "'1GB'")


# ------------------------------------------------------------------------------------------ limits
def test_limits_are_named_and_overridable(tmp_path, monkeypatch):
    zeros = tmp_path / "bomb.zip"
    with zipfile.ZipFile(zeros, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("bomb.bin", "w") as f:
            for _ in range(4):
                f.write(b"\0" * (1 << 20))
    monkeypatch.setattr(ex, "RATIO_FLOOR", 1 << 20)
    with pytest.raises(dl.DataError, match="YOLOKIT_EXTRACT_MAX_RATIO"):
        ex.extract(zeros, tmp_path / "o1")
    assert not (tmp_path / "o1" / "bomb.bin").exists()
    monkeypatch.setenv("YOLOKIT_EXTRACT_MAX_RATIO", "100000")
    assert ex.extract(zeros, tmp_path / "o2").files == 1
    (tmp_path / "many.tar").write_bytes(files_tar(10))
    monkeypatch.setenv("YOLOKIT_EXTRACT_MAX_FILES", "5")
    with pytest.raises(dl.DataError, match="YOLOKIT_EXTRACT_MAX_FILES"):
        ex.extract(tmp_path / "many.tar", tmp_path / "o3")
    monkeypatch.delenv("YOLOKIT_EXTRACT_MAX_FILES")
    monkeypatch.setenv("YOLOKIT_EXTRACT_MAX_BYTES", "1000")
    with pytest.raises(dl.DataError, match="YOLOKIT_EXTRACT_MAX_BYTES"):
        ex.extract(tmp_path / "many.tar", tmp_path / "o4")
    monkeypatch.delenv("YOLOKIT_EXTRACT_MAX_BYTES")

    class Usage:
        free = 10

    monkeypatch.setattr(ex.shutil, "disk_usage", lambda p: Usage)
    with pytest.raises(dl.DataError, match="free"):
        ex.extract(tmp_path / "many.tar", tmp_path / "o5")


def test_folder_chains_1100_deep_from_two_archives(tmp_path):
    chain = "/".join(["d"] * 1100)
    a = tar_bytes([(ti(f"{chain}/a.txt"), b"a")])
    b = tar_bytes([(ti(f"{chain}/b.txt"), b"b")])
    with server() as httpd:
        httpd.files["a.tar"], httpd.files["b.tar"] = (a, None), (b, None)
        spec = {"root": str(tmp_path / "root"), "download": [{"url": url(httpd, "a.tar")}, {"url": url(httpd, "b.tar")}]}
        (tmp_path / "d.yaml").write_text(yaml.safe_dump(spec))
        code, out, err = run(["data", "get", tmp_path / "d.yaml"])
    assert code == 0, err
    deep = tmp_path / "root" / chain
    assert (deep / "a.txt").read_text() == "a" and (deep / "b.txt").read_text() == "b"
    ex.rmtree(tmp_path / "root")
    assert not (tmp_path / "root").exists()


# ------------------------------------------------------------------------------------------ loops, races
def test_folder_name_mismatch_is_an_error_not_a_loop(tmp_path):
    data = files_tar(top="ds-master")  # the YAML expects ds/, the archive holds ds-master/
    splits = {"train": {"images": "ds/images", "labels": "ds/labels"}}
    code, out, err, requests, y = serve_get(tmp_path, data, splits=splits)
    assert code == 2 and "ds-master/" in err and "strip" in err, err
    code, out, err = run(["data", "get", y])  # again: the same error, no download
    assert code == 2 and "ds-master/" in err
    code, out, err = run(["check", y])
    assert code == 2 and "ds-master/" in err and "data get" not in err.split("finished")[1], err


def test_two_runs_on_one_root_both_succeed(tmp_path):
    with server() as httpd:
        httpd.files["a.tar"] = (files_tar(), "slow")
        y = write_yaml(tmp_path, {"url": url(httpd, "a.tar")})
        results = []

        def go():
            results.append(dl.get(y, progress=False, log=lambda *a: None))

        threads = [threading.Thread(target=go) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(results) == 2
        assert httpd.requests.count("a.tar") == 1  # the second waited, then found the work done
    assert len(list((tmp_path / "root" / "ds" / "labels").iterdir())) == 20


def test_data_list_header_and_broken_pipe(tmp_path):
    code, out, err = run(["data", "list"])
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["NAME", "SIZE", "STATE", "ROOT"]
    assert any(ln.startswith("coco (coco2017)") for ln in lines) and not any(ln.startswith("coco2017") for ln in lines)
    assert "?" not in out and "unknown" in out
    proc = subprocess.run(f"'{sys.executable}' -m yolokit data list | head -1", shell=True, capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert proc.stdout.startswith("NAME") and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("env", ["YOLOKIT_DOWNLOAD_TIMEOUT", "YOLOKIT_EXTRACT_MAX_BYTES"])
@pytest.mark.parametrize("value, why", [("abc", "expected a number"), ("-5", "expected a positive number"),
                                        ("0", "expected a positive number")])
def test_bad_limit_variables_are_one_line_naming_the_variable(monkeypatch, env, value, why):
    """The download time-out and the extraction limits are read by one helper (settings.env_number)."""
    from yolokit.data.extract import Limits
    from yolokit.data.fetch import fetch
    from yolokit.errors import ConfigError

    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=f"^{env}='{value}': {why}$"):
        if env.startswith("YOLOKIT_EXTRACT"):
            Limits.from_env()
        else:
            fetch(["http://127.0.0.1:9/x.tar"], Path("/nonexistent/x.tar"))
