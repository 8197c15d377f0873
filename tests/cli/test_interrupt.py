"""Ctrl-C during training prints the --resume command that continues the run (as disk-full and NaN do)."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from yolokit.cli.train import interrupted_text
from yolokit.settings import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def test_text_without_a_finished_epoch(tmp_path):
    cfg = TrainConfig(model="m.cfg", data="d.yaml", out=str(tmp_path / "run"))
    assert "nothing to resume" in interrupted_text(cfg)


@pytest.mark.slow
def test_ctrl_c_prints_the_resume_command(shared, tmp_path):
    tiny = shared / "yolov3_tiny_darknet"
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "yolokit", "train", "--model", str(tiny / "yolov3-tiny.cfg"), "--weights",
           str(tiny / "yolov3-tiny.weights"), "--data", str(ROOT / "configs" / "data" / "raccoon.yaml"),
           "--epochs", "100", "--imgsz", "64", "--batch", "2", "--nbs", "2", "--limit-train", "2",
           "--limit-val", "2", "--workers", "0", "--out", str(out), "--no-progress"]
    # SIGINT's default action in the child even when this run was started in the background (a shell starts
    # background jobs with SIGINT ignored, and Python then installs no KeyboardInterrupt handler)
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while not (out / "last.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"continue with: yolokit train --resume {out / 'last.pt'}" in err, err
