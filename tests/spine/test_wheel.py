"""A wheel installed outside the checkout has the model names and presets (package data), and its console script
runs. The new venv gets yolokit only from the wheel; its dependencies (torch, ...) come from the test's own
environment through a path entry, so the test needs no network."""

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_in_a_clean_venv_knows_its_models(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(wheels), str(REPO)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("yolokit-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    # dependencies from this environment, AFTER the venv's own site-packages (a plain path: its .pth files,
    # such as an editable install of yolokit, are not processed)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    check = ("import yolokit, pathlib; assert str(pathlib.Path(yolokit.__file__).resolve()).startswith("
             f"{str(site.resolve())!r}), yolokit.__file__\n"
             "m = yolokit.load('yolov3-tiny'); assert m.num_classes == 80\n"
             "from yolokit.models import model_names; assert 'yolov3' in model_names()\n")
    r = subprocess.run([str(py), "-c", check], cwd=work, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(env_dir / "bin" / "yolokit"), "info", "yolov3-tiny"], cwd=work, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "5.56" in r.stdout  # BFLOPs at 416, as Darknet prints
    # the benchmarks stay in the checkout (benchmarks/): an install says so in one line
    r = subprocess.run([str(env_dir / "bin" / "yolokit"), "bench", "nms"], cwd=work, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "not installed with yolokit" in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0
