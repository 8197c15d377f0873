"""The README's commands, run as written: every fenced block preceded by ``<!-- runnable -->``.

A block runs in a fresh folder laid out as a clone after ``bash tools/demo.sh``, built from ``../shared``:
``weights/yolov3-tiny/`` holds the same Darknet yolov3-tiny files the demo fetches, ``samples/opencv/images``
real photos and ``samples/opencv/video/vtest.avi`` a real street video, and ``$YOLOKIT_DATA_ROOT`` points at
``../shared/data`` (where ``configs/data/*.yaml`` find raccoon and coco128). Blocks run in README order in the
same folder (the eval block reads the train block's ``runs/train/best.pt``), each with ``bash -eo pipefail``.

Two substitutions keep the run CI-sized, and only these: ``--epochs N`` (added to a one-line ``yolokit train``
without it) trains 1 epoch on 8 images
(``--limit-train 8 --limit-val 4``) and ``--max-frames N`` reads at most 8 frames. Every ``# -> PATH`` comment is a
claim that the command wrote PATH (a glob): it is checked.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARK = "<!-- runnable -->"


def runnable_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, body) of every fenced block whose opening fence follows a ``<!-- runnable -->`` line
    (blank lines between them allowed)."""
    lines, blocks, armed = text.splitlines(), [], False
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if s == MARK:
            armed = True
        elif s.startswith("```"):
            j = i + 1
            while not lines[j].strip().startswith("```"):
                j += 1
            if armed:
                blocks.append((i + 1, "\n".join(lines[i + 1:j])))
            armed, i = False, j
        elif s:
            armed = False
        i += 1
    return blocks


def shorten(block: str) -> str:
    # a `yolokit train` with no --epochs runs the recipe's length: CI runs it for 1 epoch like the others
    block = re.sub(r"^(yolokit train (?:(?!--epochs)[^\n])*?)(\s*#|$)", r"\1 --epochs 1\2", block, flags=re.M)
    block = re.sub(r"--epochs \d+", "--epochs 1 --limit-train 8 --limit-val 4", block)
    return re.sub(r"--max-frames \d+", "--max-frames 8", block)


def claimed_outputs(block: str) -> list[str]:
    """Paths named by ``# -> PATH`` comments (the first word after the arrow)."""
    return re.findall(r"#\s*->\s*(\S+)", block)


def test_blocks_found():
    blocks = runnable_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 5, "the README lost its runnable examples"
    assert any("yolokit detect" in b for _, b in blocks) and any("yolokit train" in b for _, b in blocks)
    assert any("yolokit eval" in b for _, b in blocks)
    assert runnable_blocks(f"{MARK}\n\n```bash\necho a\n```\ntext\n```bash\necho b\n```\n") == [(3, "echo a")]


def _clone_after_demo(tmp: Path, shared: Path) -> None:
    (tmp / "configs").symlink_to(ROOT / "configs")
    (tmp / ".venv").symlink_to(ROOT / ".venv")
    weights = tmp / "weights" / "yolov3-tiny"
    weights.mkdir(parents=True)
    for name in ("yolov3-tiny.cfg", "yolov3-tiny.weights", "coco.names"):
        (weights / name).symlink_to(shared / "yolov3_tiny_darknet" / name)
    (tmp / "samples" / "opencv" / "video").mkdir(parents=True)
    (tmp / "samples" / "opencv" / "images").symlink_to(shared / "yolo_fastest_darknet" / "data")
    (tmp / "samples" / "opencv" / "video" / "vtest.avi").symlink_to(
        shared / "video_bgslibrary" / "dataset" / "video02.avi")


@pytest.mark.slow
def test_readme_runs_as_written(shared, tmp_path):
    if not (ROOT / ".venv" / "bin" / "yolokit").exists():
        pytest.skip("no .venv/bin/yolokit: run bash tools/setup.sh")
    _clone_after_demo(tmp_path, shared)
    env = dict(os.environ, YOLOKIT_DATA_ROOT=str(shared), PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    for line, block in runnable_blocks((ROOT / "README.md").read_text()):
        script = shorten(block)
        proc = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"README.md:{line} failed ({proc.returncode}):\n{script}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        for claim in claimed_outputs(block):
            assert list(tmp_path.glob(claim)), f"README.md:{line}: `{claim}` was not written\n{proc.stdout[-2000:]}"


def test_shipped_preset_names_what_the_demo_fetches():
    """configs/train/raccoon-finetune.yaml must run for a user after the demo: its model and weights are the files
    tools/demo.sh writes to weights/yolov3-tiny/, never the test data in ../shared."""
    import yaml

    from yolokit.apps.assets import YOLOV3_TINY

    demo = (ROOT / "tools" / "demo.sh").read_text()
    preset = yaml.safe_load((ROOT / "configs" / "train" / "raccoon-finetune.yaml").read_text())
    for key in ("model", "weights"):
        path = Path(preset[key])
        assert "shared" not in path.parts, f"the preset's {key} points at test data: {path}"
        assert path.name in YOLOV3_TINY and str(path.parent) in demo, (key, path)
