"""Run folders for detect/track (never two runs in one folder, files listed at the end) and file modes."""

import os
import stat

from yolokit.apps.outputs import choose_run_folder, written_lines
from yolokit.cli import main
from yolokit.fileio import write_text_atomic


def test_run_folder_series(tmp_path):
    base = tmp_path / "runs" / "detect"
    assert choose_run_folder(None, str(base))[0] == base            # absent: created
    assert choose_run_folder(str(base), "x")[0] == base             # empty: used
    (base / "a.jpg").write_bytes(b"1")
    folder, why = choose_run_folder(str(base), "x")
    assert folder == tmp_path / "runs" / "detect2" and "holds another run" in why
    (folder / "b.jpg").write_bytes(b"1")
    assert choose_run_folder(str(base), "x")[0] == tmp_path / "runs" / "detect3"
    assert choose_run_folder(str(base), "x", exist_ok=True)[0] == base
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "f").write_text("x")
    assert choose_run_folder(str(v1), "x")[0] == tmp_path / "v1-2"  # a name ending in a digit stays readable


def test_written_lines():
    assert written_lines([]) == ["wrote no files"]
    assert written_lines(["a/x.jpg", "a/x.jpg"]) == ["wrote 1 file:", "  a/x.jpg"]
    lines = written_lines([f"a/{i}.jpg" for i in range(25)], limit=3)
    assert lines[0] == "wrote 25 files:" and lines[-1] == "  ... and 22 more in a"


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert stat.S_IMODE(write_text_atomic(tmp_path / "a.json", "{}").stat().st_mode) == 0o644
        os.umask(0o077)
        assert stat.S_IMODE(write_text_atomic(tmp_path / "b.json", "{}").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_two_detect_runs_never_mix(tiny_dir, photos, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["detect", str(photos / "dog.jpg"), "--model", str(tiny_dir / "yolov3-tiny.cfg"), "--weights",
            str(tiny_dir / "yolov3-tiny.weights"), "--imgsz", "160", "--save-json", "--no-progress"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "run folder: runs/detect (a new run)" in first and "run folder: runs/detect2" in second
    assert second.strip().splitlines()[-3:] == ["wrote 2 files:", "  runs/detect2/dog.jpg", "  runs/detect2/dog.json"]
    assert sorted(p.name for p in (tmp_path / "runs" / "detect").iterdir()) == ["dog.jpg", "dog.json"]
    assert stat.S_IMODE((tmp_path / "runs" / "detect2" / "dog.json").stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
