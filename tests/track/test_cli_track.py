"""`yolokit track` end to end: MOT15 public detections scored by motmetrics, and a real traffic video."""

import json

import numpy as np
import pytest

from yolokit.cli import main

# SORT's own implementation (abewley/sort, same detections, py-motmetrics): TUD-Campus MOTA 0.627, IDF1 0.606,
# 6 switches. ByteTrack runs at its paper's published thresholds (the defaults), not at values tuned on TUD.

def scores(capsys) -> dict[str, float]:
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("sequence")).split()
    row = next(line for line in lines if line.startswith("TUD-Campus")).split()
    return dict(zip(header[1:], map(float, row[1:])))


def test_dets_protocol_sort_reproduces_sort_py(mot15, tud_gt, tmp_path, capsys):
    out = tmp_path / "TUD-Campus.txt"
    code = main(["track", "--dets", str(mot15 / "TUD-Campus" / "det" / "det.txt"), "--out", str(out),
                 "--gt", str(tud_gt["TUD-Campus"]), "--tracker", "sort"])
    assert code == 0
    m = scores(capsys)
    assert m["MOTA"] == pytest.approx(0.627, abs=0.0015) and m["IDF1"] == pytest.approx(0.606, abs=0.0015)
    assert m["IDsw"] == 6 and m["FP"] == 15 and m["FN"] == 113
    rows = np.loadtxt(out, delimiter=",")
    assert rows[:, 0].min() == 1 and rows[:, 0].max() == 71          # 1-based frames, all 71
    assert (rows[:, 1] >= 1).all()


def test_dets_protocol_bytetrack_defaults_on_tud_campus(mot15, tud_gt, tmp_path, capsys):
    code = main(["track", "--dets", str(mot15 / "TUD-Campus" / "det" / "det.txt"), "--out", str(tmp_path),
                 "--gt", str(tud_gt["TUD-Campus"])])
    assert code == 0
    m = scores(capsys)
    assert (tmp_path / "TUD-Campus.txt").is_file()                   # a directory --out: named after the sequence
    assert m["MOTA"] == pytest.approx(0.630, abs=0.0015) and m["IDF1"] == pytest.approx(0.692, abs=0.0015)
    assert m["IDsw"] == 3                                             # SORT: 0.627 / 0.606 / 6


def test_both_tud_sequences_with_the_published_defaults(mot15, tud_gt, tmp_path):
    """The README's MOT15 figures: both TUD sequences, SORT and ByteTrack with their defaults, motmetrics."""
    from yolokit.track import ByteTrack, Sort
    from yolokit.track.metrics import score_files
    from yolokit.track.mot import detections_by_frame, read_mot, track_detections, write_mot

    def overall(make):
        pairs = {}
        for seq in ("TUD-Campus", "TUD-Stadtmitte"):
            frames, _ = detections_by_frame(read_mot(mot15 / seq / "det" / "det.txt"))
            out = write_mot(tmp_path / f"{make.__name__}-{seq}.txt", track_detections(make(), frames))
            pairs[seq] = (tud_gt[seq], out)
        return score_files(pairs)

    def byte():  # every box of the file is used (no --conf), as `yolokit track --dets` does
        return ByteTrack(low_conf=float("-inf"))

    sort, byte = overall(Sort)["OVERALL"], overall(byte)["OVERALL"]
    assert (round(sort["MOTA"], 3), round(sort["IDF1"], 3), sort["IDsw"]) == (0.696, 0.705, 16)
    assert (round(byte["MOTA"], 3), round(byte["IDF1"], 3), byte["IDsw"]) == (0.696, 0.729, 17)


def test_dets_errors_are_one_line(mot15, tmp_path, capsys):
    det = str(mot15 / "TUD-Campus" / "det" / "det.txt")
    assert main(["track", "--dets", det, "--min-hits", "2"]) == 2
    assert "--min-hits applies to sort" in capsys.readouterr().err
    assert main(["track", "--dets", det, "video.avi"]) == 2
    assert main(["track"]) == 2
    bad = tmp_path / "det.txt"
    bad.write_text("1,-1,10,20\n")
    assert main(["track", "--dets", str(bad), "--out", str(tmp_path / "r.txt")]) == 2
    assert "det.txt:1: expected at least 7 values" in capsys.readouterr().err


def test_track_a_traffic_video(shared, tmp_path, capsys):
    tiny = shared / "yolov3_tiny_darknet"
    video = shared / "video_bgslibrary" / "dataset" / "video03.avi"
    code = main(["track", str(video), "--model", str(tiny / "yolov3-tiny.cfg"), "--weights",
                 str(tiny / "yolov3-tiny.weights"), "--imgsz", "320", "--max-frames", "12", "--classes", "car",
                 "truck", "bus", "--out", str(tmp_path), "--save-json", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "video03: 12 frames" in out
    assert (tmp_path / "video03.mp4").stat().st_size > 0
    rows = np.loadtxt(tmp_path / "video03.txt", delimiter=",", ndmin=2)
    assert len(rows) > 0 and rows[:, 0].min() >= 1 and rows[:, 0].max() <= 12
    # Cars stay in view over 12 frames at 60 fps: some id is reported in most frames.
    ids, counts = np.unique(rows[:, 1], return_counts=True)
    assert counts.max() >= 8
    results = json.loads((tmp_path / "video03.json").read_text())
    assert {r["category_name"] for r in results} <= {"car", "truck", "bus"}
    assert {r["track_id"] for r in results} == set(ids.astype(int).tolist())   # same tracks in JSON and txt


def test_track_with_a_hog_svm_model(shared, tmp_path, capsys):
    # Any yolokit detector: a small HOG+SVM trained on 5 raccoon images, tracking over a 3-image sequence
    # (the same photo three times, its best box: one id; SORT shows tracks from the first frames on).
    import shutil

    d = tmp_path / "data"
    d.mkdir()
    names = ["raccoon-1.jpg", "raccoon-10.jpg", "raccoon-100.jpg", "raccoon-105.jpg", "raccoon-108.jpg"]
    (d / "list.txt").write_text("\n".join(names) + "\n")
    (d / "data.yaml").write_text(
        f"format: voc\nroot: {shared / 'raccoon'}\nnames: [raccoon]\n"
        f"splits:\n  train:\n    images: images\n    annotations: annotations\n    list: {d / 'list.txt'}\n")
    model = tmp_path / "m.npz"
    assert main(["hog", "train", "--data", str(d / "data.yaml"), "--out", str(model), "--imgsz", "160",
                 "--inner", "32", "--rounds", "1"]) == 0
    seq = tmp_path / "seq"
    seq.mkdir()
    for i in range(3):
        shutil.copy(shared / "raccoon" / "images" / "raccoon-1.jpg", seq / f"{i:03d}.jpg")
    out = tmp_path / "out"
    assert main(["track", str(seq), "--model", str(model), "--conf", "0.01", "--max-det", "1", "--tracker", "sort",
                 "--out", str(out), "--no-progress"]) == 0
    rows = np.loadtxt(out / "seq.txt", delimiter=",", ndmin=2)
    assert rows[:, 0].tolist() == [1, 2, 3] and set(rows[:, 1]) == {1}   # one box per frame, one id
    assert (out / "001.jpg").is_file()                                    # annotated frames
    # detect takes the same .npz as track (and hog detect): the same box on the same photo
    det = tmp_path / "det"
    assert main(["detect", str(seq / "000.jpg"), "--model", str(model), "--conf", "0.01", "--max-det", "1",
                 "--out", str(det), "--save-json", "--no-progress"]) == 0
    box = json.loads((det / "000.json").read_text())[0]["bbox"]
    np.testing.assert_allclose(box, [rows[0, 2], rows[0, 3], rows[0, 4], rows[0, 5]], atol=0.01)


def test_dets_with_raw_negative_scores_are_all_used_unless_conf_is_given(tmp_path, capsys):
    # MOT17's DPM detection files carry raw SVM margins, many below 0.
    det = tmp_path / "det.txt"
    det.write_text("".join(f"{f},-1,{10 + 3 * f},20,30,60,-0.4,-1,-1,-1\n" for f in range(1, 7)))
    out = tmp_path / "res.txt"
    assert main(["track", "--dets", str(det), "--out", str(out), "--tracker", "sort"]) == 0
    rows = np.loadtxt(out, delimiter=",", ndmin=2)
    assert rows[:, 0].tolist() == [1, 2, 3, 4, 5, 6] and set(rows[:, 1]) == {1}
    assert np.allclose(rows[:, 6], -0.4)
    assert main(["track", "--dets", str(det), "--out", str(out), "--tracker", "sort", "--conf", "0"]) == 0
    assert out.read_text() == ""                                             # --conf 0 drops them all
