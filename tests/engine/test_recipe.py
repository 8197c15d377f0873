"""The recipe: values chosen from the dataset size, the batch and the cfg's [net] keys when no flag sets them,
each with its source; a schedule that cannot train is an error (tests/engine/test_runs.py)."""

from pathlib import Path

import pytest
import torch

from yolokit.settings import TrainConfig
from yolokit.engine.precision import autocast_dtype, describe
from yolokit.engine.recipe import cfg_recipe, recipe_line, resolve

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "configs" / "models" / "yolov3-tiny.cfg")


def _cfg(**kw):
    return TrainConfig(model=TINY, data="d", **kw)


def test_a_small_set_gets_enough_updates_and_a_warmup_in_epochs():
    net, origin = cfg_recipe(TINY)
    assert origin == "yolov3-tiny.cfg" and net["learning_rate"] == 0.001 and net["policy"] == "steps"
    cfg, src = resolve(_cfg(), n_train=160, net=net)  # raccoon: 160 images, batch 16
    assert (cfg.nbs, src["nbs"]) == (16, "cfg, scaled")  # the cfg's batch=64 -> 10 updates an epoch, not 2.5
    assert (cfg.epochs, src["epochs"]) == (12, "scaled")  # 1920 images shown
    assert (cfg.burn_in, src["burn_in"]) == (10, "cfg, scaled")  # one epoch, not Darknet's 1000 updates
    # the cfg's optimizer and schedule, its steps (400000, 450000 of max_batches 500200) as fractions of the run
    assert (cfg.lr, cfg.momentum, cfg.weight_decay) == (0.001, 0.9, 0.0005) and src["lr"] == "cfg"
    assert cfg.schedule == "step" and cfg.steps == pytest.approx((0.7997, 0.8996), abs=1e-4) and cfg.scale == 0.1
    assert (cfg.mosaic, src["mosaic"]) == (0.0, "default")
    # the EMA averages the last tenth of the run (120 updates: window 12, decay 1 - 1/12), ramping up over a twentieth
    assert (cfg.ema_decay, cfg.ema_tau, src["ema_decay"]) == (0.916667, 6.0, "scaled")


def test_a_large_set_gets_darknets_nominal_batch_and_few_epochs():
    cfg, src = resolve(_cfg(), n_train=100_000, net=cfg_recipe(TINY)[0])
    assert cfg.nbs == 64 and cfg.epochs == 10
    assert cfg.burn_in == 1563  # one epoch: 6250 batches / accumulate 4


def test_warmup_floor_and_cap():
    cfg, _ = resolve(_cfg(), n_train=10, net={})  # 1 batch an epoch, 192 epochs -> capped at 100
    assert cfg.epochs == 100 and cfg.burn_in == 10  # the floor: 10 updates, not 1
    cfg, _ = resolve(_cfg(epochs=4), n_train=32, net={})  # 8 updates in all: the warm-up is at most a quarter
    assert cfg.burn_in == 2


def test_flags_win_and_say_so():
    cfg, src = resolve(_cfg(lr=0.01, nbs=32, epochs=3, burn_in=5, schedule="cosine", mosaic=0.5), n_train=160,
                       net=cfg_recipe(TINY)[0])
    assert (cfg.lr, cfg.nbs, cfg.epochs, cfg.burn_in, cfg.schedule, cfg.mosaic) == (0.01, 32, 3, 5, "cosine", 0.5)
    assert {src[k] for k in ("lr", "nbs", "epochs", "burn_in", "schedule", "mosaic")} == {"flag"}
    line = recipe_line(cfg, src, "yolov3-tiny.cfg")
    assert line.startswith("recipe: epochs 3 (flag), nbs 32 (flag), lr 0.01 (flag)")
    assert "momentum 0.9 (cfg yolov3-tiny.cfg)" in line and "steps" not in line  # no steps in a cosine schedule


def test_without_a_cfg_the_defaults_apply():
    assert cfg_recipe("tv:resnet18") == ({}, "") and cfg_recipe("run/best.pt") == ({}, "")
    cfg, src = resolve(TrainConfig(model="tv:resnet18", data="d"), n_train=160)
    assert (cfg.lr, cfg.schedule, src["lr"], src["schedule"]) == (0.005, "cosine", "default", "default")


def test_precision_follows_the_device():
    assert autocast_dtype(torch.device("cpu"), amp=False) is None
    assert autocast_dtype(torch.device("cuda"), amp=True) == torch.float16
    cpu = autocast_dtype(torch.device("cpu"))
    assert cpu in (None, torch.bfloat16)  # bf16 only where the CPU has it natively
    assert describe(cpu, True).endswith("channels_last")


def test_loader_workers_follow_the_device_and_the_cores(monkeypatch):
    from yolokit.engine.batches import loader_workers

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for cores, on_cpu, on_cuda in ((2, 0, 1), (4, 0, 3), (16, 4, 8), (64, 8, 8)):
        monkeypatch.setattr("os.cpu_count", lambda: cores)
        assert (loader_workers(cpu), loader_workers(cuda)) == (on_cpu, on_cuda), cores
