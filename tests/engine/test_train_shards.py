"""`yolokit train` on a `format: shards` data YAML: streamed batches train, validation reads shards or a folder,
`--resume` from an epoch boundary replays the next epoch exactly, and two gloo ranks keep identical weights."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from yolokit.data.shards import write_shards
from yolokit.engine import TrainConfig, train
from yolokit.models import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
RACCOON = ROOT / "configs" / "data" / "raccoon.yaml"


@pytest.fixture(scope="module")
def shard_yaml(tmp_path_factory):
    from tests.conftest import GET_DATA, SHARED

    if not SHARED.is_dir():
        pytest.skip(GET_DATA.format(path=SHARED))
    out = tmp_path_factory.mktemp("shards")
    write_shards(RACCOON, out, shard_size=8)
    return out / "data.yaml"


def _cfg(shared, data, out, **kw):
    d = shared / "yolov3_tiny_darknet"
    base = dict(model=str(d / "yolov3-tiny.cfg"), weights=str(d / "yolov3-tiny.weights"), data=str(data),
                out=str(out), epochs=2, imgsz=64, batch=4, nbs=4, burn_in=1, lr=1e-3, limit_train=12,
                limit_val=2, workers=2, progress=False, tensorboard=False, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
def test_train_from_shards_resumes_exactly(shared, shard_yaml, tmp_path, capsys):
    straight = train(_cfg(shared, shard_yaml, tmp_path / "a"))
    assert straight["epochs_run"] == 2
    assert "12 images streamed from 2 shard(s), 3 batches of 4 per process per epoch" in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "a" / "results.csv")))
    assert [r["images"] for r in rows] == ["12", "12"] and all(r["map50"] != "" for r in rows)
    last = load_checkpoint(tmp_path / "a" / "last.pt")

    # stopped after epoch 1 (3 updates), then --resume: the same weights as the uninterrupted run
    train(_cfg(shared, shard_yaml, tmp_path / "b", max_updates=3))
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 0
    resumed = train(_cfg(shared, shard_yaml, tmp_path / "b", resume=str(tmp_path / "b" / "last.pt")))
    assert resumed["epochs_run"] == 1
    again = load_checkpoint(tmp_path / "b" / "last.pt")
    for key in ("raw_model", "model"):
        for name, value in last[key].items():
            torch.testing.assert_close(again[key][name], value, rtol=0, atol=0, msg=f"{key}.{name}")


def test_validation_from_a_folder_split(shared, shard_yaml, tmp_path):
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(f"format: shards\ntrain: {shard_yaml.parent}/train/train-{{000000..000019}}.tar\n"
                     f"val: {{data: {RACCOON}, split: val}}\n")
    result = train(_cfg(shared, mixed, tmp_path / "run", epochs=1, limit_train=4, workers=0))
    assert result["epochs_run"] == 1 and result["history"][-1]["images"] == 4


SCRIPT = """
import sys, torch, torch.distributed as dist
from yolokit.engine import TrainConfig, train
d = sys.argv[1]
cfg = TrainConfig(model=d + "/yolov3-tiny.cfg", weights=d + "/yolov3-tiny.weights", data=sys.argv[2],
                  out=sys.argv[3], epochs=1, imgsz=64, batch=4, nbs=8, burn_in=1, lr=1e-2, limit_train=20,
                  limit_val=2, workers=1, progress=False, tensorboard=False, device="cpu")
result = train(cfg)
torch.save({k: v.detach().clone() for k, v in result["raw_model"].named_parameters()},
           f"{sys.argv[3]}/rank{dist.get_rank()}.pt")
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_two_gloo_ranks_train_from_shards_in_step(shared, shard_yaml, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(shared / "yolov3_tiny_darknet"), str(shard_yaml), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # 20 samples, 2 ranks, batch 4: 10 each, ceil(10 / 4) = 3 batches (4, 4, 2) on both
    assert "20 images streamed from 3 shard(s), 3 batches of 4 per process per epoch" in proc.stdout
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


@pytest.mark.slow
def test_a_shard_broken_mid_run_is_one_line_from_a_worker(shared, tmp_path):
    """A shard that breaks after the run started (truncated; its shards.json still counts it) fails inside a
    DataLoader worker: the command prints one line naming the shard, not the worker's traceback."""
    write_shards(RACCOON, tmp_path / "shards", shard_size=40)
    first = tmp_path / "shards" / "train" / "train-000000.tar"
    first.write_bytes(first.read_bytes()[:7000])
    d = shared / "yolov3_tiny_darknet"
    cmd = [sys.executable, "-m", "yolokit", "train", "--model", str(d / "yolov3-tiny.cfg"), "--data",
           str(tmp_path / "shards" / "data.yaml"), "--epochs", "1", "--imgsz", "64", "--workers", "2",
           "--limit-val", "2", "--out", str(tmp_path / "run"), "--no-progress"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = proc.stderr.strip().splitlines()
    assert err[-1].startswith(f"yolokit train: error: {first}: cannot read this shard ("), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
