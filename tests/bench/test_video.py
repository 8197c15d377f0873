"""Smoke test of ``yolokit bench video``: tiny sizes, checks the section it writes (no timing assertions)."""

from yolokit.cli import main


def test_bench_video_writes_its_section(shared, tmp_path, capsys):
    tiny = shared / "yolov3_tiny_darknet"
    md = tmp_path / "B.md"
    code = main(["bench", "video", "--model", str(tiny / "yolov3-tiny.cfg"), "--weights",
                 str(tiny / "yolov3-tiny.weights"), "--video", str(shared / "video_bgslibrary/dataset/video02.avi"),
                 "--imgsz", "128", "--frames", "4", "--repeat", "1", "--threads", "1", "--write", str(md)])
    assert code == 0
    text = md.read_text()
    assert "<!-- bench:video -->" in text and "<!-- /bench:video -->" in text
    row = next(line for line in text.splitlines() if line.startswith("| cpu, 1 threads"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:3] == ["1", "4"]                  # batch, frames
    fwd, e2e, ratio = float(cells[3]), float(cells[4]), float(cells[5])
    assert fwd > 0 and e2e > 0 and abs(ratio - e2e / fwd) < 0.05 * ratio + 0.02
