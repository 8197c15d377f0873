"""Run folders never collide, every run file is written atomically, and a failed save says what is on disk
(issue 12: runs never collide; atomic and consistent; disk full; training guards)."""

import csv
import errno
import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from yolokit.engine import LossWeights, SaveError, TrainConfig, train
from yolokit.engine import runs
from yolokit.errors import ConfigError
from yolokit.models import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
RACCOON = str(ROOT / "configs" / "data" / "raccoon.yaml")


def _cfg(shared, out, **kw):
    d = shared / "yolov3_tiny_darknet"
    base = dict(model=str(d / "yolov3-tiny.cfg"), weights=str(d / "yolov3-tiny.weights"), data=RACCOON,
                out=None if out is None else str(out), epochs=1, imgsz=64, batch=2, nbs=2, burn_in=1,
                limit_train=2, limit_val=1, progress=False, tensorboard=False)
    base.update(kw)
    return TrainConfig(**base)


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _rows(folder: Path) -> list[str]:
    with open(folder / "results.csv", newline="") as f:
        return [r["epoch"] for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def half_run(shared, tmp_path_factory):
    """A 2-epoch run stopped after epoch 1 (one update per epoch): last.pt holds epoch 1 of 2."""
    out = tmp_path_factory.mktemp("half") / "run"
    train(_cfg(shared, out, epochs=2, max_updates=1))
    assert load_checkpoint(out / "last.pt")["epoch"] == 0
    return out


# ----------------------------------------------------------------------------- choosing the folder
def test_new_run_takes_the_next_free_name(tmp_path):
    base = tmp_path / "train"
    assert runs.choose(str(base)).path == base  # nothing there yet
    base.mkdir()
    (base / "notes.txt").write_text("x")
    assert runs.choose(str(base)).path == base  # a folder without a run is fine
    (base / "results.csv").write_text("epoch\n")
    chosen = runs.choose(str(base))
    assert chosen.path == tmp_path / "train2" and "already holds a run" in chosen.reason
    assert runs.choose(str(base), exist_ok=True).path == base
    (tmp_path / "train2").mkdir()
    (tmp_path / "train2" / "last.pt").write_bytes(b"")
    assert runs.choose(str(base)).path == tmp_path / "train3"
    # a name ending in a digit gets a separator, not a different number
    (tmp_path / "yolov3").mkdir()
    (tmp_path / "yolov3" / "best.pt").write_bytes(b"")
    assert runs.choose(str(tmp_path / "yolov3")).path == tmp_path / "yolov3-2"
    # an elastic restart continues the newest run of the series
    assert runs.choose(str(base), restart=1).path == tmp_path / "train2"
    assert runs.choose(str(base), restart=1).resume == tmp_path / "train2" / "last.pt"


def test_claim_is_exclusive(tmp_path):
    base = tmp_path / "train"
    first = runs.claim(base, "epoch\n")
    second = runs.claim(base, "epoch\n")  # a second run started at the same moment
    assert (first, second) == (base, tmp_path / "train2")
    assert (base / "results.csv").read_text() == "epoch\n"


def test_resume_continues_only_in_the_folder_whose_last_pt_it_is(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"1")
    (run / "best.pt").write_bytes(b"2")
    own = runs.choose(None, str(run / "last.pt"))
    assert own.path == run and own.claim is None and own.resume == run / "last.pt"
    # best.pt is not the run's last.pt: a new folder beside it, the run itself untouched
    other = runs.choose(None, str(run / "best.pt"))
    assert other.path == tmp_path / "run2" and other.resume == run / "best.pt"
    # --out elsewhere: a new run there, even from the folder's own last.pt
    assert runs.choose(str(tmp_path / "else"), str(run / "last.pt")).path == tmp_path / "else"
    # a copy named last.pt in a folder of its own is that folder's last.pt
    (tmp_path / "copy").mkdir()
    shutil.copy(run / "last.pt", tmp_path / "copy" / "last.pt")
    assert runs.choose(None, str(tmp_path / "copy" / "last.pt")).path == tmp_path / "copy"
    # a copy beside the original under another name is not
    shutil.copy(run / "last.pt", run / "epoch1.pt")
    assert runs.choose(None, str(run / "epoch1.pt")).path == tmp_path / "run2"


def test_stray_temp_files_are_removed(tmp_path):
    for name in ("last.pt.abc123.tmp", "results.csv.x.tmp", "mine.tmp", "last.pt"):
        (tmp_path / name).write_bytes(b"")
    removed = runs.clean_temp_files(tmp_path)
    assert sorted(p.name for p in removed) == ["last.pt.abc123.tmp", "results.csv.x.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "mine.tmp"]  # not ours: kept


# ----------------------------------------------------------------------------- end to end
def test_second_train_into_the_same_out_leaves_the_first_run_byte_identical(shared, half_run, tmp_path, capsys):
    first = tmp_path / "train"
    shutil.copytree(half_run, first)
    (first / "last.pt.dead.tmp").write_bytes(b"killed mid-write")  # a second run must not even clean this
    before = _digest(first)
    result = train(_cfg(shared, first))
    assert _digest(first) == before
    assert result["out"] == str(tmp_path / "train2")
    assert sorted(_digest(tmp_path / "train2")) == ["best.pt", "last.pt", "results.csv"]
    assert f"run folder: {tmp_path / 'train2'}" in capsys.readouterr().out


def test_resume_of_a_copied_last_pt_does_not_touch_the_original(shared, half_run, tmp_path, capsys):
    from yolokit.cli import main

    original = tmp_path / "run"
    shutil.copytree(half_run, original)
    before = _digest(original)
    copy = tmp_path / "backup" / "epoch1.pt"
    copy.parent.mkdir()
    shutil.copy(original / "last.pt", copy)
    # the checkpoint's train_args name the original folder as out: it must not be used
    assert load_checkpoint(copy)["train_args"]["out"] == str(half_run)
    assert main(["train", "--resume", str(copy), "--no-progress"]) == 0
    assert _digest(original) == before
    assert f"run folder: {copy.parent}" in capsys.readouterr().out
    assert load_checkpoint(copy.parent / "last.pt")["epoch"] == 1
    assert _rows(copy.parent) == ["1", "2"]  # the rows of epoch 1 came with the checkpoint
    # the run's own last.pt continues in place
    own = tmp_path / "own"
    shutil.copytree(half_run, own)
    assert main(["train", "--resume", str(own / "last.pt"), "--no-progress"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup", "own", "run"]
    assert load_checkpoint(own / "last.pt")["epoch"] == 1 and _rows(own) == ["1", "2"]


@pytest.mark.parametrize("name, nth, code, says, on_disk", [
    # epoch 2's last.pt cannot be written: last.pt and results.csv still hold epoch 1
    ("last.pt", 1, errno.ENOSPC, "after epoch 2: the disk is full", (0, ["1"])),
    # a resumed run rewrites results.csv from last.pt first: refused at the start, nothing changes
    ("results.csv", 1, errno.EACCES, "at the start: permission denied", (0, ["1"])),
    # last.pt of epoch 2 written, its csv row not: the csv is one row behind until --resume rewrites it
    ("results.csv", 2, errno.ENOSPC, "after epoch 2: the disk is full", (1, ["1"])),
])
def test_a_failed_save_keeps_the_last_good_epoch_and_resume_continues(shared, half_run, tmp_path, monkeypatch,
                                                                      name, nth, code, says, on_disk):
    import yolokit.engine.checkpoints as trainer

    run = tmp_path / "run"
    shutil.copytree(half_run, run)
    real = trainer.write_atomic
    calls = []

    def failing(path, write):
        calls.append(Path(path).name)
        if calls.count(name) != nth or Path(path).name != name:
            return real(path, write)

        def half_then_fail(f):  # a real temp file, half written, then the error
            f.write(b"x" * 1000)
            raise OSError(code, "simulated")
        return real(path, half_then_fail)

    monkeypatch.setattr(trainer, "write_atomic", failing)
    with pytest.raises(SaveError) as info:
        train(_cfg(shared, None, epochs=2, resume=str(run / "last.pt")))
    msg = str(info.value)
    assert says in msg and f"--resume {run / 'last.pt'}" in msg and "\n" not in msg
    assert f"last.pt holds epoch {on_disk[0] + 1}" in msg
    assert not list(run.glob("*.tmp"))  # the half-written temp file is gone
    assert load_checkpoint(run / "last.pt")["epoch"] == on_disk[0] and _rows(run) == on_disk[1]
    if on_disk[0] == 1:
        assert "results.csv still ends one epoch earlier" in msg
    monkeypatch.setattr(trainer, "write_atomic", real)
    train(_cfg(shared, None, epochs=2, resume=str(run / "last.pt")))  # continues (or only rewrites the csv)
    assert load_checkpoint(run / "last.pt")["epoch"] == 1 and _rows(run) == ["1", "2"]


def test_disk_full_after_an_epoch_says_which_epoch_is_on_disk(shared, tmp_path, monkeypatch):
    import yolokit.engine.checkpoints as trainer

    real = trainer.write_atomic
    calls = {"last.pt": 0}

    def failing(path, write):
        if Path(path).name == "last.pt":
            calls["last.pt"] += 1
            if calls["last.pt"] == 2:  # epoch 2's last.pt
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, write)

    monkeypatch.setattr(trainer, "write_atomic", failing)
    with pytest.raises(SaveError, match=r"after epoch 2: the disk is full.*last.pt holds epoch 1, and "
                                        r"results.csv matches it"):
        train(_cfg(shared, tmp_path, epochs=2))
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 0 and _rows(tmp_path) == ["1"]


def test_nan_loss_says_that_nothing_is_on_disk_yet(shared, tmp_path):
    from yolokit.engine import NonFiniteLossError

    with pytest.raises(NonFiniteLossError, match="epoch 1, batch 1.*no checkpoint yet"):
        train(_cfg(shared, tmp_path, loss_weights={"lambda_obj": float("nan")}))


def test_nan_loss_after_an_epoch_names_the_checkpoint(shared, half_run, tmp_path):
    from yolokit.engine import NonFiniteLossError

    run = tmp_path / "run"
    shutil.copytree(half_run, run)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, batch 1.*last.pt holds epoch 1"):
        train(_cfg(shared, None, epochs=2, resume=str(run / "last.pt"), loss_weights={"lambda_obj": float("nan")}))


# ----------------------------------------------------------------------------- guards
def test_resume_with_other_classes_says_what_differs(shared, half_run):
    coco = str(ROOT / "configs" / "data" / "coco128_yolo.yaml")
    with pytest.raises(ConfigError, match=r"trained on 1 class\(es\) \(raccoon\).*has 80"):
        train(_cfg(shared, None, data=coco, epochs=2, resume=str(half_run / "last.pt")))


def test_resume_with_another_model_says_what_differs(shared, half_run):
    other = str(ROOT / "configs" / "models" / "yolo-lite.cfg")
    with pytest.raises(ConfigError, match=r"do not fit --model .*yolo-lite.cfg \(the checkpoint was trained as "
                                          r".*yolov3-tiny.cfg"):
        train(_cfg(shared, None, model=other, weights=None, epochs=2, resume=str(half_run / "last.pt")))


def test_schedule_that_never_reaches_its_learning_rate_is_an_error_with_the_fix():
    from yolokit.engine.recipe import check_schedule
    from yolokit.engine.schedule import BurnInSchedule

    def check(epochs, per_epoch, resumed=False, **kw):
        cfg = TrainConfig(model="m", data="d", epochs=epochs, lr=1e-3, schedule="cosine", **kw)
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
        sched = BurnInSchedule(opt, epochs * per_epoch, cfg.schedule, cfg.burn_in)
        return check_schedule(sched, cfg, per_epoch, resumed)

    # the case: 2 updates per epoch, 30 epochs, burn-in 100. The warm-up (it/100)^4 and the cosine meet
    # lowest at update 41: (42/100)^4 * (0.01 + 0.99 * (1 + cos(pi * 41/60)) / 2) = 0.0311 * 0.2353 = 0.0073
    with pytest.raises(ConfigError) as info:
        check(30, 2, burn_in=100)
    msg = str(info.value)
    assert "--burn-in 100 is more than this run's 60 optimizer update(s) (30 epoch(s) x 2)" in msg
    assert "peaks at 7.33e-06 (0.0073 x --lr 0.001)" in msg and "Lower --burn-in" in msg
    assert check(30, 10, burn_in=100) is None  # 300 updates: the burn-in completes
    with pytest.raises(ConfigError, match=r"\(5 epoch\(s\) x 100, --max-updates 10\)"):
        check(5, 100, burn_in=100, max_updates=10)
    # resumed near the end of a cosine schedule: the rate is meant to be low, a warning (returned), not an error
    cfg = TrainConfig(model="m", data="d", epochs=30, burn_in=1, lr=1e-3, schedule="cosine")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = BurnInSchedule(opt, 300, "cosine", 1)
    sched.load_state_dict({"it": 290})
    assert "the learning rate stays at or below 1.27e-05 (0.013 x --lr 0.001) for all 10" in \
        check_schedule(sched, cfg, 10, resumed=True)


def test_trainer_refuses_to_train_on_nothing(shared, tmp_path):
    cfg = _cfg(shared, tmp_path)
    cfg.epochs = 0  # past TrainConfig's own validation (library callers can do this)
    with pytest.raises(ConfigError, match="--epochs 0: must be an integer >= 1"):
        train(cfg)
    cfg.epochs, cfg.batch = 1, -4
    with pytest.raises(ConfigError, match="--batch -4"):
        train(cfg)
    assert not list(tmp_path.iterdir())  # nothing was written


def test_loss_weights_are_typed_and_checked():
    w = LossWeights.from_dict({"lambda_obj": 2, "ignore_thresh": "0.5"})
    assert w.lambda_obj == 2.0 and w.ignore_thresh == 0.5 and w.lambda_box is None
    assert w.for_heads("yolo") == {"lambda_obj": 2.0, "ignore_thresh": 0.5}
    with pytest.raises(ConfigError, match=r"--loss lambda_foo: unknown loss weight \(known: lambda_box, "):
        LossWeights.from_dict({"lambda_foo": 1})
    with pytest.raises(ConfigError, match="--loss lambda_box=-1: must be a finite number >= 0"):
        LossWeights.from_dict({"lambda_box": -1})
    with pytest.raises(ConfigError, match=r"--loss ignore_thresh: does not apply to \[detection\]"):
        w.for_heads("detection")
    with pytest.raises(ConfigError, match=r"--loss lambda_coord: does not apply to \[yolo\]/\[region\]"):
        LossWeights.from_dict({"lambda_coord": 5}).for_heads("yolo")
