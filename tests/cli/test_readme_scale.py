"""README "Beyond one machine", run as written: every command of the ``section:scale`` block, as 2 nodes x 1 process
on this machine (each ``torchrun --nnodes=2`` line is started twice, two agents meeting through c10d), with
``NODE0=127.0.0.1``. Then the equality checks the section promises: the 2-process ``detect --save-json`` and
``eval --save-pred`` files are byte for byte those of one process, and training streamed its shards over HTTP.

CI substitutions, and only these: free ports for 8000 and 29400; ``--epochs N`` trains 1 epoch on 40 images
(``--limit-train 40 --limit-val 4``); ``--imgsz 320`` is 64; ``detect`` runs at ``--conf 0.001`` (that model scores
below the default 0.25); ``photos/`` holds 12 raccoon images. Blocks:
``bash`` lines run in order (a line ending in ``&`` runs in the background until the end), a ``yaml`` block is
written to the file its first comment names. ``# -> PATH`` comments are claims: checked.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def section(text: str) -> str:
    return text.split("<!-- section:scale -->", 1)[1].split("<!-- /section:scale -->", 1)[0]


def blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced block."""
    return re.findall(r"```(\w*)\n(.*?)```", text, re.S)


def commands(body: str) -> list[str]:
    """The block's commands (continuation lines joined, comment-only lines dropped), trailing comments kept:
    :func:`strip_comment` removes them before running."""
    return [c.strip() for c in body.replace("\\\n", " ").splitlines() if c.strip() and not c.strip().startswith("#")]


def strip_comment(cmd: str) -> str:
    return re.sub(r"\s+#.*$", "", cmd).strip()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ci(cmd: str, http_port: int) -> str:
    cmd = re.sub(r"--epochs \d+", "--epochs 1 --limit-train 40 --limit-val 4", cmd)
    cmd = cmd.replace("--save-json", "--save-json --conf 0.001")  # a 1-epoch model scores below detect's 0.25
    cmd = cmd.replace("--imgsz 320", "--imgsz 64")
    cmd = cmd.replace(" 8000 ", f" {http_port} ").replace(":8000/", f":{http_port}/")
    return cmd.replace(":29400", f":{_port()}")


def test_section_has_the_commands():
    text = section((ROOT / "README.md").read_text())
    cmds = [c for lang, b in blocks(text) if lang == "bash" for c in commands(b)]
    assert any("yolokit convert" in c and "--to shards" in c for c in cmds)
    for verb in ("train", "detect", "eval"):
        assert any(c.startswith("torchrun --nnodes=2") and f"-m yolokit {verb}" in c for c in cmds), verb
    assert any(lang == "yaml" for lang, _ in blocks(text))


@pytest.mark.slow
def test_readme_scale_section_runs_as_written(shared, tmp_path):
    if not (ROOT / ".venv" / "bin" / "yolokit").exists():
        pytest.skip("no .venv/bin/yolokit: run bash tools/setup.sh")
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    weights = tmp_path / "weights" / "yolov3-tiny"
    weights.mkdir(parents=True)
    for name in ("yolov3-tiny.cfg", "yolov3-tiny.weights", "coco.names"):
        (weights / name).symlink_to(shared / "yolov3_tiny_darknet" / name)
    (tmp_path / "photos").mkdir()
    for p in sorted((shared / "raccoon" / "images").glob("*.jpg"))[:12]:
        (tmp_path / "photos" / p.name).symlink_to(p)
    env = dict(os.environ, YOLOKIT_DATA_ROOT=str(shared), NODE0="127.0.0.1", OMP_NUM_THREADS="1",
               PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", PYTHONPATH=str(ROOT))
    http_port = _port()
    background, logs = [], []
    try:
        for lang, body in blocks(section((ROOT / "README.md").read_text())):
            if lang == "yaml":
                name = re.match(r"#\s*(\S+?):", body).group(1)
                (tmp_path / name).write_text(ci(body, http_port))
                continue
            if lang != "bash":
                continue
            for cmd in commands(body):
                script = ci(strip_comment(cmd), http_port)
                if script.endswith("&"):
                    log = open(tmp_path / f"background{len(background)}.log", "w")
                    logs.append(log)
                    background.append(subprocess.Popen(["bash", "-c", f"exec {script[:-1]}"], cwd=tmp_path,
                                                       env=env, stdout=log, stderr=subprocess.STDOUT))
                    _wait_for_port(http_port)
                    continue
                nodes = 2 if script.startswith("torchrun --nnodes=2") else 1
                t0 = time.monotonic()
                procs = [subprocess.Popen(["bash", "-eo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                         for _ in range(nodes)]
                try:
                    results = [p.communicate(timeout=300) for p in procs]
                finally:
                    for p in procs:
                        p.kill()
                for p, (out, err) in zip(procs, results):
                    assert p.returncode == 0, f"{script}\n{out[-3000:]}\n{err[-3000:]}"
                print(f"{time.monotonic() - t0:5.1f} s  {script[:100]}")
                for claim in re.findall(r"#\s*->\s*(\S+)", cmd):
                    assert list(tmp_path.glob(claim)), f"`{claim}` was not written by: {script}"
                if "-m yolokit train" in script:
                    stdout = "".join(o for o, _ in results)
                    assert "2 process(es)" in stdout and "streamed from 2 shard(s)" in stdout, stdout[-3000:]
    finally:
        for p in background:
            p.kill()
            p.wait()
        for log in logs:
            log.close()
    served = (tmp_path / "background0.log").read_text()
    assert "GET /train/train-000000.tar" in served and "GET /train/train-000001.tar" in served  # streamed by URL
    assert (tmp_path / "runs" / "scale" / "best.pt").is_file()

    # the same predictions from one process, byte for byte and in the same order
    one = dict(env, WORLD_SIZE="1")
    model = ["--model", "runs/scale/best.pt"]
    subprocess.run(["yolokit", "detect", "photos/", *model, "--save-json", "--conf", "0.001", "--no-save", "--out",
                    "runs/one-detect"],
                   cwd=tmp_path, env=one, check=True, capture_output=True)
    subprocess.run(["yolokit", "eval", "--data", "configs/data/raccoon.yaml", *model, "--save-pred",
                    "runs/one-val.json"], cwd=tmp_path, env=one, check=True, capture_output=True)
    two_detect = (tmp_path / "runs" / "scale-detect" / "photos.json").read_bytes()
    assert two_detect == (tmp_path / "runs" / "one-detect" / "photos.json").read_bytes()
    assert two_detect.count(b'"file_name"') > 100 and b"raccoon" in two_detect
    two_val = (tmp_path / "runs" / "scale-val.json").read_bytes()
    assert two_val == (tmp_path / "runs" / "one-val.json").read_bytes() and two_val.count(b'"score"') > 100


def _wait_for_port(port: int, timeout: float = 20.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")
