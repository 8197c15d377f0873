"""Video a browser plays: H.264 in MP4 (checked by decoding the codec name), and the announced mp4v fallback."""

import sys

import numpy as np
import pytest

from yolokit.apps import video
from yolokit.apps.video import open_video_writer

av = pytest.importorskip("av", reason="PyAV not installed (pip install av): the H.264 path cannot be checked")


def _frames(n=12, size=(240, 320)):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(n)]


def test_mp4_is_h264_with_every_frame(tmp_path):
    path = tmp_path / "a.mp4"
    w = open_video_writer(path, 25.0, (320, 240))
    for f in _frames():
        w.write(f)
    w.close()
    assert video.video_codec(path) == "h264"
    with av.open(str(path)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 12
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"  # what browsers decode


def test_odd_frame_size_is_encoded(tmp_path):
    path = tmp_path / "odd.mp4"
    w = open_video_writer(path, 30000 / 1001, (321, 241))
    for f in _frames(3, (241, 321)):
        w.write(f)
    w.close()
    assert video.video_codec(path) == "h264"


def test_without_pyav_mp4v_and_one_note(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError
    monkeypatch.setattr(video, "_noted", False)
    for name in ("a.mp4", "b.mp4"):
        w = open_video_writer(tmp_path / name, 25.0, (320, 240))
        for f in _frames(3):
            w.write(f)
        w.close()
    monkeypatch.undo()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PyAV is not installed" in err[0] and "browsers do not play" in err[0]
    assert video.video_codec(tmp_path / "a.mp4") == "mpeg4"


def test_detect_writes_h264(tiny_dir, video02, tmp_path):
    from yolokit.cli import main

    assert main(["detect", str(video02), "--model", str(tiny_dir / "yolov3-tiny.cfg"), "--weights",
                 str(tiny_dir / "yolov3-tiny.weights"), "--imgsz", "160", "--max-frames", "4", "--out",
                 str(tmp_path), "--no-progress"]) == 0
    assert video.video_codec(tmp_path / "video02.mp4") == "h264"
