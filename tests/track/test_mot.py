import numpy as np
import pytest

from yolokit.errors import DataError
from yolokit.track.mot import detections_by_frame, format_mot, read_mot, write_mot


def test_read_and_group_public_detections(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,20,30,40,0.9,-1,-1,-1\n"
                    "3,-1,0,0,5,5,0.6,-1,-1,-1\n"
                    "1,-1,100,100,10,10,0.7,-1,-1,-1\n\n")
    rows = read_mot(path)
    assert rows.shape == (3, 10)
    frames, n = detections_by_frame(rows)
    assert n == 3 and [len(f) for f in frames] == [2, 0, 1]          # frame 2 exists, empty
    assert frames[0].tolist() == [[10, 20, 40, 60, 0.9, 0], [100, 100, 110, 110, 0.7, 0]]  # xywh -> xyxy
    assert frames[2].tolist() == [[0, 0, 5, 5, 0.6, 0]]


@pytest.mark.parametrize("line, message", [
    ("1,-1,10,20,30", "expected at least 7 values"),
    ("0,-1,10,20,30,40,0.9", "1-based"),
    ("1,-1,10,20,-3,40,0.9", "negative box size"),
    ("1,-1,ten,20,30,40,0.9", "comma-separated numbers"),
])
def test_bad_lines_name_the_file_and_line(tmp_path, line, message):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,20,30,40,0.9,-1,-1,-1\n" + line + "\n")
    with pytest.raises(DataError, match=rf"det.txt:2: .*{message}"):
        read_mot(path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nope.txt"):
        read_mot(tmp_path / "nope.txt")


def test_write_then_read_back(tmp_path):
    tracks = [np.array([[10, 20, 40, 60, 0.9, 0, 1], [0, 0, 5, 5, 0.5, 0, 2]]), np.empty((0, 7)),
              np.array([[12, 20, 42, 60, 0.8, 0, 1]])]
    text = format_mot(tracks)
    assert text.splitlines()[0] == "1,1,10.00,20.00,30.00,40.00,0.9000,-1,-1,-1"
    rows = read_mot(write_mot(tmp_path / "sub" / "res.txt", tracks))
    assert rows[:, 0].tolist() == [1, 1, 3] and rows[:, 1].tolist() == [1, 2, 1]   # frames 1-based, ids kept
    assert np.allclose(rows[2, 2:6], [12, 20, 30, 40])
