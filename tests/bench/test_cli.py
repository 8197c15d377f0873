"""`yolokit bench` runs the checkout's benchmarks/ and says so in one line when they are not there."""

import tomllib
from pathlib import Path

from yolokit.cli import bench, main

REPO = Path(__file__).resolve().parents[2]


def test_benchmarks_are_outside_the_wheel():
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert find["include"] == ["yolokit*"]                  # benchmarks/ is not packaged
    assert (REPO / "benchmarks" / "nms.py").is_file()


def test_bench_lists_the_checkout_benchmarks(capsys):
    try:
        main(["bench", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "nms" in out and "infer" in out


def test_bench_without_the_checkout_says_where_they_are(monkeypatch, capsys):
    monkeypatch.setattr(bench, "_benchmarks", lambda: None)
    assert main(["bench", "nms", "--repeat", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [bench.MISSING] and "source checkout" in err[0]
