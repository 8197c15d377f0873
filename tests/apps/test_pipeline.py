import json
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from yolokit.apps.draw import draw_detections
from yolokit.apps.pipeline import StageTimes, ThreadedReader, batched, run
from yolokit.models.predict import Predictor
from yolokit.apps.sources import Frame, open_source

from .test_sources import damage_avi_frames


def frames_of(path):
    cap = cv2.VideoCapture(str(path))
    info = (cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    n = 0
    while cap.read()[0]:
        n += 1
    return info, n


def test_threaded_reader_keeps_order_and_bounds_its_queue():
    produced = []

    def source():
        for i in range(50):
            produced.append(i)
            yield Frame(i, np.zeros((2, 2, 3), np.uint8), "x")

    reader = ThreadedReader(source(), maxsize=4)
    seen = []
    for frame in reader:
        seen.append(frame.index)
        if frame.index == 0:
            time.sleep(0.2)                   # let the reader run ahead: it must stop at the bound
            assert len(produced) <= 1 + 4 + 1  # consumed + queued + one waiting to be put
    assert seen == list(range(50))


def test_threaded_reader_reraises_source_errors():
    def source():
        yield Frame(0, np.zeros((2, 2, 3), np.uint8), "x")
        raise RuntimeError("decoder exploded")

    with pytest.raises(RuntimeError, match="decoder exploded"):
        list(ThreadedReader(source()))


def test_batched():
    assert [len(b) for b in batched(range(7), 3)] == [3, 3, 1]


def test_video_out_has_input_fps_and_size_and_json(tiny, video02, tmp_path):
    result = run(open_source(str(video02)), Predictor(tiny, imgsz=320, bgr=True), tmp_path, batch=2, save_json=True,
                 max_frames=11, progress=False)
    assert result.frames == 11 and result.failed == 0 and not result.interrupted
    (fps, w, h), n = frames_of(tmp_path / "video02.mp4")
    assert (fps, w, h, n) == (25.0, 320, 240, 11)
    rows = json.loads((tmp_path / "video02.json").read_text())
    assert {r["image_id"] for r in rows} <= set(range(11))
    cars = [r for r in rows if r["category_name"] == "car"]
    assert len({r["image_id"] for r in cars}) >= 6        # motorway traffic: cars in most frames
    assert all(len(r["bbox"]) == 4 and r["bbox"][2] > 0 and r["score"] >= 0.25 for r in rows)
    ms = result.timings.per_frame_ms()
    assert set(ms) == {"decode", "preprocess", "infer", "postprocess", "draw/encode"}
    assert all(v > 0 for v in ms.values())


def test_damaged_video_is_processed_and_bad_frames_reported(tiny, video02, tmp_path):
    bad = tmp_path / "damaged.avi"
    damage_avi_frames(video02, bad, frames={3, 4})
    result = run(open_source(str(bad)), Predictor(tiny, imgsz=160, bgr=True), tmp_path, max_frames=12, progress=False)
    assert result.failed >= 1
    assert frames_of(tmp_path / "damaged.mp4")[1] == 12


def test_images_keep_names_and_size(tiny, photos, tmp_path):
    result = run(open_source(str(photos)), Predictor(tiny, imgsz=416, bgr=True), tmp_path / "out", save_json=True,
                 progress=False)
    assert result.frames == 3
    for name in ("dog.jpg", "horses.jpg", "person.jpg"):
        assert cv2.imread(str(tmp_path / "out" / name)).shape == cv2.imread(str(photos / name)).shape
    rows = json.loads((tmp_path / "out" / "data.json").read_text())
    assert {r["file_name"] for r in rows} == {"dog.jpg", "horses.jpg", "person.jpg"}


def test_drawing_touches_only_the_box_and_its_label():
    image = np.full((240, 320, 3), 90, np.uint8)
    draw_detections(image, np.zeros((0, 6), np.float32), ["car"])
    assert (image == 90).all()
    draw_detections(image, np.array([[100, 120, 200, 180, 0.87, 0]], np.float32), ["car"])
    changed = (image != 90).any(-1)
    assert changed[120, 100:201].all() and changed[180, 100:201].all()     # top and bottom edges
    assert changed[121:180, 100].all() and changed[121:180, 200].all()     # left and right edges
    assert not changed[125:175, 105:195].any()                             # inside stays clear
    ys, xs = changed.nonzero()
    assert ys.min() >= 120 - 25 and ys.max() <= 181 and xs.min() >= 99 and xs.max() <= 201


def test_stage_times_summary():
    t = StageTimes()
    t.add("infer", 0.5)
    t.frames, t.wall = 10, 2.0
    assert t.fps == 5.0 and t.per_frame_ms()["infer"] == 50.0
    assert "5.0 FPS" in t.summary()


@pytest.mark.slow
def test_ctrl_c_leaves_a_playable_video(tiny_dir, shared, tmp_path):
    # The longer clip (1699 frames) at 416 px takes over a minute even on an idle machine, so the interrupt
    # always lands mid-stream (with the short clip at 160 px an idle machine finished before the signal).
    video03 = shared / "video_bgslibrary" / "dataset" / "video03.avi"
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "yolokit", "detect", str(video03), "--model", str(tiny_dir / "yolov3-tiny.cfg"),
           "--weights", str(tiny_dir / "yolov3-tiny.weights"), "--imgsz", "416", "--out", str(out), "--no-progress"]
    # Output goes to files, not pipes: nothing the child prints can block it while the test waits.
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr, open(tmp_path / "stdout.txt", "w") as stdout:
        # A job started in the background (CI runs the suite that way) inherits SIGINT as *ignored*, and Python
        # then installs no KeyboardInterrupt handler: give the child the default disposition a terminal has.
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        video = out / "video03.mp4"
        partial = out / ".video03.partial.mp4"  # the encoder's file until it closes (then renamed to video)
        deadline = time.time() + 300  # a loaded CI machine is slow to import torch and load the model
        while time.time() < deadline and proc.poll() is None and \
                not (partial.exists() and partial.stat().st_size > 20_000):
            time.sleep(0.2)
        assert proc.poll() is None, f"detect ended before it could be interrupted: {log.read_text()[-2000:]}"
        assert partial.exists() and not video.exists(), "detect wrote no video within 300 s"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    err = log.read_text()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not partial.exists()  # closed and renamed: the final name only ever holds a playable file
    (fps, w, h), n = frames_of(video)
    assert (w, h) == (320, 240) and fps == pytest.approx(60.0, abs=0.5)
    assert 0 < n < 1699
