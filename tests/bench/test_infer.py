"""`yolokit bench infer` on the smallest real model: every contender agrees (no timing assertions)."""

import pytest

from yolokit.cli import main


def test_bench_infer_sweeps_sizes_and_checks_every_contender(shared, tmp_path):
    pytest.importorskip("onnxruntime")
    stem = shared / "yolo_fastest_darknet" / "ModelZoo" / "yolo-fastest-1.1_body" / "yolo-fastest-1.1_body"
    md = tmp_path / "BENCH.md"
    md.write_text("# Benchmarks\n")
    rc = main(["bench", "infer", "--cfg", f"{stem}.cfg", "--weights", f"{stem}.weights", "--sizes", "160", "224",
               "--repeat", "1", "--int8-sizes", "224", "--calib-images", "2", "--ap-images", "4",
               "--shared", str(shared), "--write", str(md)])
    assert rc == 0
    text = md.read_text()
    assert "<!-- bench:infer -->" in text
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| 160 |") or line.startswith("| 224 |")]
    names = {(r[0][2:], r[1]) for r in rows}
    for size in ("160", "224"):
        for name in ("eager", "fast path (optimize_for_inference)", "ONNX Runtime fp32"):
            assert (size, name) in names
    assert ("224", "ONNX Runtime int8 (static, QDQ)") in names and ("160", "ONNX Runtime int8 (static, QDQ)") not in names
    fp32 = [r for r in rows if "int8" not in r[1]]
    assert fp32 and all(r[-1].startswith("yes (") for r in fp32)           # same detections as eager torch
    int8 = next(r for r in rows if "int8" in r[1])
    assert int8[-1].startswith("AP50 ")                                    # accuracy, not box agreement


@pytest.mark.parametrize("given,preload,expected", [(None, "", "PASSIVE"), ("ACTIVE", "", "ACTIVE"),
                                                    (None, "import torch; ", "unset")])
def test_console_script_defaults_to_passive_openmp_waiting(given, preload, expected):
    """The CLI's default (BENCHMARKS.md "infer-defaults"): PASSIVE unless the user chose, and only when it can
    still act (libgomp reads the variable when torch loads it)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = (f"import os; {preload}from yolokit.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OMP_WAIT_POLICY', 'unset'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[-1] == expected, out.stderr


def test_bench_infer_model_runs_random_weight_zoo_models_against_opencv(shared, tmp_path):
    """``--model``: a zoo cfg without weights runs on random ones (written to a temporary .weights file), its rows
    carry the model name and a raw-output check against eager (its detections are score ties)."""
    if not (shared / "darknet_cfgs" / "yolov4-tiny.cfg").is_file():
        pytest.skip("no shared/darknet_cfgs")
    md = tmp_path / "BENCH.md"
    rc = main(["bench", "infer", "--model", "yolov4-tiny", "--sizes", "160", "--repeat", "1", "--int8-sizes",
               "--no-onnx", "--shared", str(shared), "--write", str(md)])
    assert rc == 0
    text = md.read_text()
    assert "<!-- bench:infer-models -->" in text and "yolov4-tiny: 6.91 BFLOPs at 416, random weights." in text
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| yolov4-tiny | 160 |")]
    checks = {r[2]: r[-1] for r in rows}
    assert "fast path (optimize_for_inference)" in checks
    for name, check in checks.items():
        if not name.startswith("OpenCV"):
            assert check.startswith("raw output max abs diff") and float(check.split()[5]) < 1e-3, (name, check)
    assert not list(tmp_path.glob("**/*.weights"))                       # nothing left behind
