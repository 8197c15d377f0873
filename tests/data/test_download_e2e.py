"""A fresh copy of the project with no ../shared beside it: README "Get data" -> `yolokit data get` (from a
local mirror on 127.0.0.1) -> train -> eval, each as a user would type it, in fresh processes."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data.mirror import Mirror, github_zip

ROOT = Path(__file__).resolve().parents[2]


def _fresh_copy(dest: Path) -> Path:
    """The project's tracked files (as `git clone` would give them, with this checkout's edits)."""
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot make a fresh copy")
    for name in files.decode().split("\0"):
        src = ROOT / name
        if name and src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _readme_get_commands(readme: Path) -> list[str]:
    section = re.search(r"<!-- section:getdata -->(.*?)<!-- /section:getdata -->", readme.read_text(), re.S)
    assert section, "README has no 'Get data' section"
    block = re.search(r"```bash\n(.*?)```", section.group(1), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("yolokit data get")]


@pytest.mark.slow
def test_fresh_clone_get_data_train_eval(shared, tmp_path):
    clone = _fresh_copy(tmp_path / "yolokit")
    assert not (clone.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOLOKIT_")}
    env["PYTHONPATH"] = str(clone)  # the copy's package, not this checkout's

    def yolokit(*args, check=True):
        proc = subprocess.run([sys.executable, "-m", "yolokit", *args], cwd=clone, env=env, capture_output=True,
                              text=True, timeout=900)
        if check:
            assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    data = "configs/data/raccoon.yaml"
    missing = yolokit("check", data, check=False)
    assert missing.returncode == 2 and "yolokit data get raccoon" in missing.stderr

    get = [c for c in _readme_get_commands(clone / "README.md") if c.endswith(" raccoon")]
    assert get == ["yolokit data get raccoon"]
    archive = github_zip(shared / "raccoon", "raccoon_dataset-93938849301895fb73909842ba04af9b602f677a",
                         tmp_path / "raccoon_dataset-93938849.zip")
    with Mirror() as m:
        m.add(archive.name, archive.read_bytes())
        env["YOLOKIT_DATA_MIRROR"] = m.base
        yolokit(*get[0].split()[1:])
    assert (clone / "datasets" / "raccoon" / "images" / "raccoon-1.jpg").is_file()
    assert "problems: none" in yolokit("check", data, "--no-decode").stdout

    yolokit("train", "--model", "configs/models/yolov3-tiny.cfg", "--data", data, "--epochs", "1", "--imgsz", "64",
            "--batch", "4", "--limit-train", "8", "--limit-val", "4", "--device", "cpu", "--no-progress",
            "--out", "runs/e2e")
    assert (clone / "runs" / "e2e" / "last.pt").is_file()
    out = yolokit("eval", "--data", data, "--model", "runs/e2e/last.pt", "--imgsz", "64", "--metrics", "voc",
                  "--json").stdout
    metrics = json.loads(out[out.index("{"):])
    assert (metrics["images"], metrics["objects"]) == (40, 44)  # raccoon val: 40 images, 44 boxes
