"""``yolokit eval --report``: one self-contained HTML page, opened in a real headless browser."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from yolokit.cli import main

REPO = Path(__file__).resolve().parents[2]
NO_BROWSER = ("chromium not installed: the report's browser check needs Debian's `chromium` "
              "(apt-get install chromium; .ci/run installs it)")


@pytest.fixture(scope="module")
def report(shared, tmp_path_factory) -> Path:
    """The report of voc2012_rodm's 452 published detections (20 classes, 100 images)."""
    out = tmp_path_factory.mktemp("report") / "eval"
    pred = shared / "voc2012_rodm" / "data" / "database" / "dets" / "coco_format" / "coco_dets.json"
    assert main(["eval", "--data", str(REPO / "configs" / "data" / "voc2012_rodm.yaml"), "--pred", str(pred),
                 "--report", "--worst", "3", "--out", str(out)]) == 0
    return out / "report.html"


def test_report_is_one_self_contained_page(report):
    text = report.read_text()
    for section in ("Metrics", "Per class", "Precision-recall curves", "Confusion matrix",
                    "Where the AP is lost (TIDE)", "Thresholds", "Worst images"):
        assert f">{section}</h2>" in text, section
    assert "AP50 (VOC all-point)" in text and "COCO AP50" in text and "aeroplane" in text
    sources = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert sources and all(s.startswith("data:") for s in sources)  # nothing to fetch: readable offline
    assert len(re.findall(r'src="data:image/png;base64,', text)) >= 1 + 1 + 1 + 3  # PR, per class, confusion, worst
    assert "<script" not in text


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip(NO_BROWSER)
    shot = tmp_path / "report.png"
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", "--window-size=1280,2400",
                           f"--screenshot={shot}", report.as_uri()],
                          capture_output=True, text=True, timeout=180)
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    errors = [line for line in console if re.search(r"error|uncaught|failed", line, re.I)]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not errors, "\n".join(errors)
    assert shot.is_file() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
    keep = REPO / "runs" / "test-report"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, keep / "report.png")  # the screenshot, for a person to look at
    print(f"screenshot: {keep / 'report.png'}")
