"""Smoke test of `yolokit bench infer` on the smallest real model (no timing assertions)."""

from yolokit.cli import main


def test_bench_infer_runs_and_writes_its_section(shared, tmp_path, capsys):
    stem = shared / "yolo_fastest_darknet" / "ModelZoo" / "yolo-fastest-1.1_body" / "yolo-fastest-1.1_body"
    md = tmp_path / "BENCH.md"
    md.write_text("# Benchmarks\n")
    rc = main(["bench", "infer", "--cfg", f"{stem}.cfg", "--weights", f"{stem}.weights", "--imgsz", "320",
               "--repeat", "1", "--threads", "1", "--shared", str(shared), "--write", str(md)])
    assert rc == 0
    text = md.read_text()
    assert "<!-- bench:infer -->" in text and "optimize_for_inference (fused oneDNN)" in text
    rows = [line for line in text.splitlines() if line.startswith("| 1 (")]
    assert rows and all("| yes |" in line for line in rows if "bfloat16" not in line)
