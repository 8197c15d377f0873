"""``yolokit compare``: FLOP counting by hand, the compactness ratio, and the CLI writing table and plot."""

import numpy as np
import pytest

from yolokit.cli import main
from yolokit.hog import HogParams, HogSvmDetector
from yolokit.apps.compare import Result, hog_flops

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def _model(**kw):
    p = HogParams((64, 64))
    w = np.random.default_rng(0).standard_normal((7, 7, 36)).astype(np.float32) * 0.05
    return HogSvmDetector(p, w, 0.0, class_names=["raccoon"], **kw)


def test_hog_flops_by_hand():
    # 128x128, ratio 2: level 1 has (15 - 7 + 1)^2 = 81 windows, level 2 (64x64) has 1; 1764 weights each
    m = _model(scale=2.0)
    assert hog_flops(m, [(128, 128)], imgsz=None) == 2 * 82 * 1764
    # imgsz 64 resizes the image to one window first
    assert hog_flops(m, [(128, 128)], imgsz=64) == 2 * 1 * 1764


def test_prior_box_is_the_median_relative_box():
    from types import SimpleNamespace

    from yolokit.apps.compare import prior_box

    recs = [SimpleNamespace(size=(100, 200), boxes=np.array([[20, 10, 180, 90]]), labels=np.array([0])),
            SimpleNamespace(size=(100, 100), boxes=np.array([[0, 0, 50, 50], [10, 10, 90, 90]]),
                            labels=np.array([1, 0]))]
    data = SimpleNamespace(records=recs)
    np.testing.assert_allclose(prior_box(data, 0), [0.1, 0.1, 0.9, 0.9])   # class 1's box is ignored


def test_ap_per_100k_params():
    r = Result("m", "yolo", 416, ap50=0.5, ap=0.3, fps=10.0, params=200_000, flops=1e9)
    assert r.ap_per_100k == pytest.approx(0.15)


def test_compare_cli_writes_table_and_plot(shared, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    model = _model(scale=1.3, min_score=-0.5, imgsz=160).save(tmp_path / "m.npz")
    md = tmp_path / "B.md"
    png = tmp_path / "plot.png"
    assert main(["compare", "--data", str(ROOT / "configs/data/raccoon.yaml"), "--hog", f"random={model}",
                 "--imgsz", "128", "160", "--table-imgsz", "160", "--limit", "2", "--write", str(md),
                 "--plot", str(png), "--prior"]) == 0
    text = md.read_text()
    assert "| median training box (prior) | - |" in text
    assert "<!-- bench:compare -->" in text and "| random | 160 |" in text and "| random | 128 |" not in text
    assert png.stat().st_size > 1000


def test_compare_cli_needs_a_model(shared, capsys):
    assert main(["compare", "--data", str(ROOT / "configs/data/raccoon.yaml")]) == 2
    assert "at least one" in capsys.readouterr().err


def test_score_counts_only_the_chosen_class():
    from types import SimpleNamespace

    from yolokit.hog.scoring import score

    def sample(i, boxes, labels):
        n = len(boxes)
        return SimpleNamespace(boxes=np.array(boxes, np.float32), labels=np.array(labels), image_id=i,
                               difficult=np.zeros(n, bool), iscrowd=np.zeros(n, bool), orig_size=(100, 100),
                               path=f"{i}.jpg")

    samples = [sample(0, [[10, 10, 50, 50], [60, 60, 90, 90]], [1, 0]), sample(1, [[0, 0, 40, 40]], [1])]
    hit = [np.array([[10, 10, 50, 50, 0.9, 0]]), np.array([[0, 0, 40, 40, 0.8, 0]])]
    assert score(samples, hit, class_index=1)["voc"] == pytest.approx(1.0)
    assert score(samples, hit, class_index=1)["gt"] == 2
    wrong = [np.array([[60, 60, 90, 90, 0.9, 0]]), np.zeros((0, 6))]        # class 0's box: a false positive
    assert score(samples, wrong, class_index=1)["voc"] == pytest.approx(0.0)
