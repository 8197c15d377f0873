"""DDP: two gloo processes on the CPU (torchrun) train a few steps and end with identical weights."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, torch, torch.distributed as dist
from yolokit.engine import TrainConfig, train
d = sys.argv[1]
cfg = TrainConfig(model=d + "/yolov3-tiny.cfg", weights=d + "/yolov3-tiny.weights", data=sys.argv[2],
                  out=sys.argv[3], epochs=1, imgsz=64, batch=2, nbs=4, burn_in=1, lr=1e-2, limit_train=8,
                  limit_val=2, progress=False, tensorboard=False, max_updates=2)
result = train(cfg)
rank = dist.get_rank()
torch.save({k: v.detach().clone() for k, v in result["raw_model"].named_parameters()}, f"{sys.argv[3]}/rank{rank}.pt")
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_two_gloo_processes_keep_identical_weights(shared, tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(shared / "yolov3_tiny_darknet"), str(ROOT / "configs" / "data" / "raccoon.yaml"), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stdout  # the trainer saw the world size
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    # and the weights did move (two synchronised updates happened)
    from yolokit.models import load

    start = load(shared / "yolov3_tiny_darknet" / "yolov3-tiny.cfg",
                 shared / "yolov3_tiny_darknet" / "yolov3-tiny.weights").state_dict()
    assert not torch.equal(a["layers.12.conv.weight"], start["layers.12.conv.weight"])


ELASTIC = """
import os, signal, sys
import torch.distributed as dist
from yolokit.engine import TrainConfig
from yolokit.engine.trainer import Trainer


class KilledAfterEpoch1(Trainer):
    def end_epoch(self, epoch, row):
        stop = super().end_epoch(epoch, row)  # rank 0 has written last.pt of this epoch before this returns
        if epoch == 0 and self.rank == 1 and os.environ["TORCHELASTIC_RESTART_COUNT"] == "0":
            os.kill(os.getpid(), signal.SIGKILL)
        return stop


d = sys.argv[1]
cfg = TrainConfig(model=d + "/yolov3-tiny.cfg", weights=d + "/yolov3-tiny.weights", data=sys.argv[2],
                  out=sys.argv[3], epochs=2, imgsz=64, batch=2, nbs=4, burn_in=1, lr=1e-2, limit_train=4,
                  limit_val=1, progress=False, tensorboard=False)
KilledAfterEpoch1(cfg).run()
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_resumes_from_last_pt(shared, tmp_path):
    import csv

    from yolokit.models import load_checkpoint

    script = tmp_path / "elastic_train.py"
    script.write_text(ELASTIC)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--max-restarts=1",
           str(script), str(shared / "yolov3_tiny_darknet"), str(ROOT / "configs" / "data" / "raccoon.yaml"),
           str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"elastic restart 1: resuming from {out / 'last.pt'}" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elastic_train.py", "run"]  # no run2
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    with open(out / "results.csv", newline="") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]


@pytest.mark.slow
def test_two_nodes_through_c10d_rendezvous_restart_and_resume(shared, tmp_path):
    """2 nodes x 1 process on localhost (two torchrun agents meeting through c10d): the node whose worker is
    killed restarts it, the other node restarts its worker for the new rendezvous, and both resume."""
    import csv
    import socket

    from yolokit.models import load_checkpoint

    script = tmp_path / "elastic_train.py"
    script.write_text(ELASTIC)
    out = tmp_path / "run"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1", "--max-restarts=1",
           "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=yolokit-test",
           str(script), str(shared / "yolov3_tiny_darknet"), str(ROOT / "configs" / "data" / "raccoon.yaml"),
           str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    try:
        results = [node.communicate(timeout=300) for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    for node, (_, err) in zip(nodes, results):
        assert node.returncode == 0, err[-3000:]
    stdout = "".join(o for o, _ in results)
    assert f"elastic restart 1: resuming from {out / 'last.pt'}" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elastic_train.py", "run"]
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    with open(out / "results.csv", newline="") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]


@pytest.mark.slow
def test_a_killed_worker_resumes_a_shard_run_to_the_same_weights(shared, tmp_path):
    """Training from streamed shards (issue 24): a rank killed after epoch 1 is restarted by torchrun, the run
    resumes from last.pt at the epoch boundary, and ends with the weights of a run that was never killed."""
    from yolokit.data.shards import write_shards
    from yolokit.models import load_checkpoint

    write_shards(ROOT / "configs" / "data" / "raccoon.yaml", tmp_path / "shards", shard_size=2)
    data = tmp_path / "shards" / "data.yaml"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    finals = {}
    for kind, restarts in (("killed", "--max-restarts=1"), ("straight", "--max-restarts=0")):
        body = ELASTIC if kind == "killed" else ELASTIC.replace('== "0"', '== "never"')
        script = tmp_path / f"{kind}.py"
        script.write_text(body)
        out = tmp_path / kind
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", restarts,
               str(script), str(shared / "yolov3_tiny_darknet"), str(data), str(out)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert ("elastic restart 1: resuming from" in proc.stdout) == (kind == "killed")
        finals[kind] = load_checkpoint(out / "last.pt")
        assert finals[kind]["epoch"] == 1
    for name, value in finals["straight"]["raw_model"].items():
        torch.testing.assert_close(finals["killed"]["raw_model"][name], value, rtol=0, atol=0, msg=name)
