"""kill -9 during each kind of save the trainer makes leaves the previous file loadable (issue 12).

A child process writes one file in a tight loop (almost all of its time is spent inside the write); the test
SIGKILLs it at a few moments, then loads the file. The temp files that killed writes leave behind are what
the next run start removes (yolokit.engine.runs.clean_temp_files).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from yolokit.engine import runs
from yolokit.models import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ROWS = 100_000

# Each kind: the code that writes `path` once per loop turn `i` (`net` is a yolov3-tiny, ~35 MB of weights).
KINDS = {
    # last.pt / best.pt: the trainer's checkpoints and yolokit.models.save_checkpoint
    "checkpoint": "save_checkpoint(net, path, epoch=i)",
    # results.csv: the trainer rewrites it whole after every epoch (written here in 50 pieces with a pause
    # between them, a slow disk, so that most kills land inside the write)
    "results.csv": "write_atomic(path, lambda f: slow_write(f, b'epoch,i\\n' + f'{i},{i}\\n'.encode() * ROWS))",
    # Darknet .weights through yolokit.models.save_weights (35 MB for yolov3-tiny), on a slow disk: the flush to
    # disk takes 0.2 s, so most kills land while the new file is still being written
    "weights": "save_weights(net, path)",
}
FILES = {"checkpoint": "last.pt", "results.csv": "results.csv", "weights": "model.weights"}

CHILD = """
import os
import sys
import time
from pathlib import Path
from yolokit.models import build_model, config_path
from yolokit.models import save_weights
from yolokit.fileio import write_atomic
from yolokit.models.checkpoint import save_checkpoint
ROWS = {rows}
path = Path(sys.argv[1])


_fsync = os.fsync


def slow_fsync(fd):
    time.sleep(0.2 if path.suffix == ".weights" else 0)
    _fsync(fd)


os.fsync = slow_fsync  # write_atomic looks os.fsync up when it runs


def slow_write(f, data, pieces=50):
    step = len(data) // pieces + 1
    for k in range(0, len(data), step):
        f.write(data[k:k + step])
        time.sleep(0.002)


net = build_model(config_path("yolov3-tiny").read_text())
i = 0
while True:
    {code}
    if i == 0:
        print("saved", flush=True)
    i += 1
"""


def _check(kind: str, path: Path) -> int:
    """The loop turn the file on disk holds (it must be one whole write)."""
    if kind == "checkpoint":
        return load_checkpoint(path)["epoch"]
    if kind == "weights":
        from yolokit.models import build_model, config_path, load_weights

        load_weights(build_model(config_path("yolov3-tiny").read_text()), path)  # exact size, or WeightsError
        return 0
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,i" and len(lines) == ROWS + 1 and len(set(lines[1:])) == 1
    return int(lines[1].split(",")[0])


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kill_9_during_a_save_leaves_the_previous_file_loadable(kind, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(CHILD.format(rows=ROWS, code=KINDS[kind]))
    path = tmp_path / "run" / FILES[kind]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    mid_write = 0
    for delay in (0.05, 0.17, 0.4):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, env=env)
        try:
            assert proc.stdout.readline().strip() == b"saved", "the writer did not start"
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        assert _check(kind, path) >= 0  # whole, loadable
        stray = runs.clean_temp_files(path.parent, names=[path.name])
        mid_write += bool(stray)
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert mid_write >= 1, "no kill landed inside a write: the test did not exercise the case"
