"""Distributed evaluation: two gloo processes (torchrun) each predict half of the images, the detections
are gathered once, and the metrics equal one process's, key for key."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from yolokit.eval.distributed import Shard

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from tests.eval.tide_ref import coco128_dataset
from yolokit.engine.distributed import init_from_env
from yolokit.eval.distributed import evaluate_model_distributed, world
from yolokit.models import load
from yolokit.models.predict import Predictor

shared, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
init_from_env("cpu")
ds = coco128_dataset(__import__("pathlib").Path(shared))

class Head:  # the first n images of the dataset, with its records for the ground truth
    def __init__(self, ds, n):
        self.ds, self.records, self.class_names = ds, ds.records[:n], ds.class_names
        self.index_to_cat_id = ds.index_to_cat_id
    def __len__(self):
        return len(self.records)
    def __getitem__(self, i):
        return self.ds[i]

d = shared + "/yolov3_tiny_darknet/"
predictor = Predictor(load(d + "yolov3-tiny.cfg", d + "yolov3-tiny.weights"), 320, 0.01, 0.6)
# batch 1: the same forward pass per image in both runs (batch composition may change CPU float sums)
m = evaluate_model_distributed(predictor, Head(ds, n), batch_size=1, tide=True)
rank, size = world()
json.dump({"world": size, "metrics": m}, open(f"{out}/rank{rank}_of{size}.json", "w"))
"""


def test_shard_covers_the_dataset_once():
    items = list(range(11))
    shards = [Shard(items, r, 3) for r in range(3)]
    assert sorted(x for s in shards for x in (s[i] for i in range(len(s)))) == items
    assert [len(s) for s in shards] == [4, 4, 3]


@pytest.mark.slow
def test_two_gloo_processes_give_single_process_metrics(shared, tmp_path):
    script = tmp_path / "dist_eval.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    args = [str(script), str(shared), str(tmp_path), "12"]
    for cmd in ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args],
                [sys.executable, *args]):
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
    single = json.loads((tmp_path / "rank0_of1.json").read_text())
    r0 = json.loads((tmp_path / "rank0_of2.json").read_text())
    r1 = json.loads((tmp_path / "rank1_of2.json").read_text())
    assert r0["world"] == r1["world"] == 2
    assert single["metrics"]["images"] == 12 and single["metrics"]["detections"] > 100
    assert r0["metrics"] == single["metrics"] and r1["metrics"] == single["metrics"]
    assert single["metrics"]["coco"]["AP50"] > 0 and "tide" in single["metrics"]
