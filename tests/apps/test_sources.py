import shutil

import numpy as np
import pytest

from yolokit.apps.sources import ImageSource, VideoSource, open_source
from yolokit.errors import DataError


def damage_avi_frames(src, dst, frames):
    """Copy an AVI and overwrite the payload of the given video chunks ('00dc') with 0xff bytes."""
    data = bytearray(src.read_bytes())
    pos = data.index(b"movi") + 4
    k = 0
    while pos + 8 <= len(data) and data[pos:pos + 4] != b"idx1":
        cid, size = bytes(data[pos:pos + 4]), int.from_bytes(data[pos + 4:pos + 8], "little")
        if cid == b"LIST":
            pos += 12
            continue
        if cid.endswith(b"dc"):
            if k in frames:
                data[pos + 8:pos + 8 + size] = b"\xff" * size
            k += 1
        pos += 8 + size + (size & 1)
    dst.write_bytes(bytes(data))


def test_video_file_properties(video02):
    src = open_source(str(video02))
    assert isinstance(src, VideoSource)
    assert (src.width, src.height) == (320, 240)
    assert src.fps == pytest.approx(25.0)
    assert len(src) >= 748          # the container's count is an estimate (750 here)
    src.cap.release()


def test_video_reads_every_frame_with_indices(video02):
    src = open_source(str(video02))
    indices = [f.index for f in src]
    assert indices == list(range(748))
    assert src.failed == 0


def test_damaged_frames_are_counted_and_skipped(video02, tmp_path):
    bad = tmp_path / "damaged.avi"
    damage_avi_frames(video02, bad, frames={200, 201, 202, 500})
    src = open_source(str(bad))
    indices = [f.index for f in src]
    assert src.failed > 0
    assert len(indices) + src.failed == 748       # nothing lost silently, nothing invented
    assert 0 in indices and 747 in indices        # decoding went on after the damage
    assert len(set(indices)) == len(indices)


class StubCapture:
    """A capture whose read() answers from a script of True/False (a real capture cannot be made
    to fail on demand); properties like OpenCV's for a 10 fps, 64x48 file of len(script) frames."""

    def __init__(self, script):
        self.script = list(script)
        self.released = False

    def isOpened(self):
        return True

    def get(self, prop):
        import cv2

        return {cv2.CAP_PROP_FPS: 10.0, cv2.CAP_PROP_FRAME_COUNT: len(self.script),
                cv2.CAP_PROP_FRAME_WIDTH: 64, cv2.CAP_PROP_FRAME_HEIGHT: 48}.get(prop, 0.0)

    def read(self):
        if not self.script:
            return False, None
        ok = self.script.pop(0)
        return ok, (np.zeros((48, 64, 3), np.uint8) if ok else None)

    def release(self):
        self.released = True


def test_failure_between_good_frames_counts_trailing_failures_do_not():
    # frames: 0 ok, 1 bad, 2 ok, 3 bad, 4 bad, 5 ok, then the end (reads keep failing)
    cap = StubCapture([True, False, True, False, False, True])
    src = VideoSource("stub.avi", "stub", max_failures=3, capture_factory=lambda _: cap)
    assert [f.index for f in src] == [0, 2, 5]
    assert src.failed == 3
    assert cap.released


def test_too_many_failures_in_a_row_end_the_stream():
    cap = StubCapture([True] + [False] * 5 + [True])
    src = VideoSource("stub.avi", "stub", max_failures=5, capture_factory=lambda _: cap)
    assert [f.index for f in src] == [0]
    assert src.failed == 0


def test_image_file_directory_and_glob(photos):
    one = open_source(str(photos / "dog.jpg"))
    assert isinstance(one, ImageSource) and len(one) == 1
    frames = list(one)
    assert frames[0].image.shape == (576, 768, 3) and frames[0].name == "dog.jpg"
    folder = open_source(str(photos))
    assert [p.name for p in folder.paths] == ["dog.jpg", "horses.jpg", "person.jpg"]
    pattern = open_source(str(photos / "h*.jpg"))
    assert [p.name for p in pattern.paths] == ["horses.jpg"]


def test_unreadable_image_is_counted(photos, tmp_path):
    shutil.copy(photos / "dog.jpg", tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    src = open_source(str(tmp_path))
    assert [f.name for f in src] == ["a.jpg"]
    assert src.failed == [str(tmp_path / "b.jpg")]


def test_bad_sources_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        open_source(str(tmp_path / "missing.mp4"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="unknown file type"):
        open_source(str(tmp_path / "notes.txt"))
    with pytest.raises(DataError, match="no images"):
        open_source(str(tmp_path))
    with pytest.raises(DataError, match="matches no images"):
        open_source(str(tmp_path / "*.png"))
    (tmp_path / "broken.avi").write_bytes(b"RIFF0000AVI junk")
    with pytest.raises(DataError, match="cannot open"):
        open_source(str(tmp_path / "broken.avi"))


def test_http_stream_is_a_live_source(video02):
    # A real HTTP stream: the traffic video served by a local HTTP server, read through FFmpeg.
    import functools
    import http.server
    import socketserver
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(video02.parent))
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            src = open_source(f"http://127.0.0.1:{server.server_address[1]}/{video02.name}?x=1")
            assert src.name == "video02" and src.length is None and src.fps == pytest.approx(25.0)
            with pytest.raises(TypeError):
                len(src)
            frames = [f.index for f in src]
        finally:
            server.shutdown()
    assert frames == list(range(748)) and src.failed == 0
