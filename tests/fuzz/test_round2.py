"""Round 2 of bad input (issue 25): resource exhaustion, silent or wrong outputs, signals and full disks, valid
data that crashed training. Archives and downloads have their own module (test_data_get.py).

Every input is generated here from the real files of ../shared/data. Outcomes as in test_fuzz.py: exit 2 with
one ``error:`` line holding every needle, exit 0/1 with a line that holds them, never a traceback -- and, for
the resource cases, no large allocation (the process runs under a 3 GB address-space limit where it matters).
"""

from __future__ import annotations

import csv
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.conftest import ROOT, TINY, VIDEO02, good_yolo, jpeg, jpeg2, run_cli, write_coco, coco_doc
from tests.fuzz.test_fuzz import FAST, MICRO_CFG, check_outcome, micro_cfg


def _yaml(tmp: Path, spec: dict) -> Path:
    path = tmp / "data.yaml"
    path.write_text(json.dumps(spec))
    return path


def _with(yaml_path: Path, **change) -> Path:
    spec = json.loads(yaml_path.read_text())
    spec.update(change)
    yaml_path.write_text(json.dumps(spec))
    return yaml_path


def alias_bomb(tmp: Path) -> Path:
    """The YAML "billion laughs": 10 levels of 10 aliases, 10^10 nodes once expanded, 1 kB on disk."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for k in range(1, 10):
        lines.append(f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 10) + "]")
    path = tmp / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nformat: yolo\nroot: .\nsplits: {val: {images: images}}\n")
    return path


def fifo(tmp: Path, name: str) -> Path:
    path = tmp / name
    os.mkfifo(path)
    return path


def micro_checkpoint(tmp: Path, settings: dict) -> Path:
    from yolokit.models import build_model
    from yolokit.models.checkpoint import save_checkpoint

    model = build_model(MICRO_CFG, source="micro.cfg")
    model.settings = settings
    return save_checkpoint(model, tmp / "micro.pt")


def onnx_with_metadata(tmp: Path, meta_text: str) -> Path:
    """The micro model exported to ONNX, its yolokit metadata replaced by ``meta_text``."""
    import onnx

    try:
        from yolokit.models.onnx import export_onnx
    except ImportError:  # before the exporter moved from apps.export into models.onnx
        from yolokit.apps.export import export_onnx
    from yolokit.models import build_model
    from yolokit.models.onnx import META_KEY

    path = tmp / "micro.onnx"
    export_onnx(build_model(MICRO_CFG, source="micro.cfg").eval(), path, imgsz=64)
    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != META_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, meta_text
    onnx.save(proto, str(path))
    return path


def onnx_meta(tmp: Path, **change) -> str:
    from yolokit.models import build_model
    from yolokit.models.onnx import model_metadata

    meta = model_metadata(build_model(MICRO_CFG, source="micro.cfg"), 64)
    meta.update(change)
    return json.dumps(meta)


def mot_dets(tmp: Path, frame: int) -> Path:
    path = tmp / "det.txt"
    path.write_text(f"1,-1,10,10,20,20,0.9,-1,-1,-1\n{frame},-1,10,10,20,20,0.9,-1,-1,-1\n")
    return path


def unnamed_yolo(tmp: Path, label: str) -> Path:
    yaml = good_yolo(tmp)
    (tmp / "labels" / "a.txt").write_text(label)
    spec = json.loads(yaml.read_text())
    del spec["names"]
    yaml.write_text(json.dumps(spec))
    return yaml


def voc_outside(tmp: Path) -> Path:
    """A VOC XML whose stem matches no image and whose <filename> is an absolute path to an image outside."""
    from tests.fuzz.conftest import voc_xml, write_voc

    outside = tmp / "elsewhere" / "secret.jpg"
    outside.parent.mkdir()
    outside.write_bytes(jpeg2())
    ds = tmp / "ds"
    yaml = write_voc(ds, voc_xml((10, 10, 100, 100)))
    xml = voc_xml((10, 10, 100, 100)).replace("<filename>a.jpg</filename>", f"<filename>{outside}</filename>")
    (ds / "annotations" / "b.xml").write_text(xml)
    return yaml


def deep_json(tmp: Path, depth: int = 200_000) -> Path:
    path = tmp / "deep.json"
    path.write_text("[" * depth + "]" * depth)
    return path


def link_loop_images(tmp: Path) -> Path:
    folder = tmp / "imgs"
    folder.mkdir()
    (folder / "x.jpg").write_bytes(jpeg())
    (folder / "sub").symlink_to(".")
    return folder


def two_sources(tmp: Path) -> tuple[Path, Path]:
    a, b = tmp / "a" / "images", tmp / "b" / "images"
    for folder, data in ((a, jpeg()), (b, jpeg2())):
        folder.mkdir(parents=True)
        (folder / "x.jpg").write_bytes(data)
    return a, b


def many_classes(tmp: Path, n: int = 10_000) -> tuple[Path, Path]:
    """A YOLO dataset with a names list of ``n`` classes (boxes of classes 0 and n-1), and predictions."""
    yaml = good_yolo(tmp)
    (tmp / "labels" / "b.txt").write_text(f"{n - 1} 0.4 0.5 0.3 0.3\n")
    _with(yaml, names=[f"class{k}" for k in range(n)])
    preds = [{"image_id": "a", "category_id": 0, "bbox": [195, 83, 260, 250], "score": 0.9},
             {"image_id": "b", "category_id": n - 1, "bbox": [112, 173, 135, 148], "score": 0.8},
             {"image_id": "b", "category_id": 5, "bbox": [10, 10, 50, 50], "score": 0.3}]
    pred = tmp / "pred.json"
    pred.write_text(json.dumps(preds))
    return yaml, pred


TINY_CFG, TINY_WEIGHTS = TINY / "yolov3-tiny.cfg", TINY / "yolov3-tiny.weights"

CASES = {
    # --- resource exhaustion: refused before anything large is allocated or read --------------------------
    "detect/weights-dev-zero": lambda t: (["detect", t / "p.jpg", "--model", micro_cfg(t), "--weights", "/dev/zero",
                                           *FAST, "--out", t / "o"], 2, ["/dev/zero", "not a regular file"]),
    "check/data-yaml-dev-zero": lambda t: (["check", "--data", "/dev/zero"], 2, ["/dev/zero", "not a regular file"]),
    "check/data-yaml-fifo": lambda t: (["check", "--data", fifo(t, "d.yaml")], 2, ["d.yaml", "FIFO"]),
    "train/preset-dev-zero": lambda t: (["train", "--config", "/dev/zero"], 2, ["/dev/zero", "not a regular file"]),
    "check/yaml-alias-bomb": lambda t: (["check", "--data", alias_bomb(t)], 2, ["bomb.yaml", "aliases expand"]),
    "detect/checkpoint-imgsz-2^20": lambda t: (["detect", t / "p.jpg", "--model", micro_checkpoint(t, {"imgsz": 2**20}),
                                                "--no-progress", "--out", t / "o"], 2,
                                               ["micro.pt", "settings.imgsz", "4096"]),
    "detect/imgsz-flag-2^20": lambda t: (["detect", t / "p.jpg", "--model", micro_cfg(t), "--random-weights",
                                          "--imgsz", str(2**20), "--out", t / "o"], 2, ["--imgsz", "4096"]),
    "detect/onnx-input-size-2^20": lambda t: (["detect", t / "p.jpg", "--model", onnx_with_metadata(
        t, onnx_meta(t, input_size=[2**20, 2**20])), "--no-progress", "--out", t / "o"], 2,
        ["micro.onnx", "input_size", "4096"]),
    "check/yolo-class-1e9-no-names": lambda t: (["check", "--data", unnamed_yolo(t, "1000000000 0.5 0.5 0.2 0.2\n")],
                                                1, ["a.txt", "class 1000000000"]),
    "track/dets-frame-1e9": lambda t: (["track", "--dets", mot_dets(t, 10**9), "--out", t / "r.txt"], 2,
                                       ["det.txt:2", "frame 1000000000"]),
    # --- silent or wrong outputs ---------------------------------------------------------------------------
    "check/voc-filename-outside": lambda t: (["check", "--data", voc_outside(t)], 1, ["b.xml", "points outside"]),
    "check/class-name-newline": lambda t: (["check", "--data", _with(good_yolo(t), names=["rac\ncoon"])], 1,
                                           ["class name 0", "line break"]),
    "check/coco-category-newline": lambda t: (["check", "--data", write_coco(t, coco_doc(
        categories=[{"id": 1, "name": "rac\ncoon"}]))], 1, ["instances.json", "categories[0]", "line break"]),
    "detect/onnx-class-names-string": lambda t: (["detect", t / "p.jpg", "--model", onnx_with_metadata(
        t, onnx_meta(t, class_names="raccoon")), "--no-progress", "--out", t / "o"], 2,
        ["micro.onnx", "class_names must be a list of strings"]),
    "detect/onnx-metadata-not-json": lambda t: (["detect", t / "p.jpg", "--model", onnx_with_metadata(t, "{heads: ["),
                                                 "--no-progress", "--out", t / "o"], 2, ["micro.onnx", "malformed JSON"]),
    "detect/onnx-metadata-deep": lambda t: (["detect", t / "p.jpg", "--model", onnx_with_metadata(
        t, "[" * 200_000 + "]" * 200_000), "--no-progress", "--out", t / "o"], 2, ["micro.onnx", "nested too deeply"]),
    "detect/onnx-heads-without-keys": lambda t: (["detect", t / "p.jpg", "--model", onnx_with_metadata(
        t, onnx_meta(t, heads=[{"stride": [8, 8]}])), "--no-progress", "--out", t / "o"], 2, ["micro.onnx", "heads"]),
    "eval/pred-json-200000-deep": lambda t: (["eval", "--data", good_yolo(t), "--pred", deep_json(t)], 2,
                                             ["deep.json", "nested too deeply"]),
    "check/coco-5000-digit-id": lambda t: (["check", "--data", write_coco(t, None, raw=json.dumps(coco_doc()).replace(
        '"id": 1,', '"id": ' + "9" * 5000 + ",", 1))], 1, ["instances.json", "too many digits"]),
    "detect/out-is-a-file": lambda t: (["detect", t / "p.jpg", "--model", micro_cfg(t), "--random-weights", *FAST,
                                        "--out", t / "p.jpg"], 2, ["--out", "existing file"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_round2_bad_input(name, tmp_path, shared):
    (tmp_path / "p.jpg").write_bytes(jpeg2())
    argv, code, needles = CASES[name](tmp_path)
    check_outcome(argv, code, needles, run_cli(argv))


def test_resource_cases_stay_small(tmp_path, shared):
    """The files that allocated 12-15 GB before, in a child process limited to 3 GB of address space."""
    bomb = alias_bomb(tmp_path)
    dets = mot_dets(tmp_path, 10**9)
    script = (f"import sys; from yolokit.cli import main; "
              f"codes = [main(['check', '--data', '/dev/zero']), main(['check', '--data', {str(bomb)!r}]), "
              f"main(['track', '--dets', {str(dets)!r}, '--out', {str(tmp_path / 'r.txt')!r}])]; "
              f"sys.exit(0 if codes == [2, 2, 2] else 1)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", f"import resource; resource.setrlimit(resource.RLIMIT_AS, "
                           f"(3 << 30, 3 << 30)); {script}"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_recursive_glob_through_a_link_loop_detects_each_image_once(tmp_path, shared):
    folder = link_loop_images(tmp_path)
    code, out, err = run_cli(["detect", f"{folder}/**/*.jpg", "--model", micro_cfg(tmp_path), "--random-weights",
                              *FAST, "--out", tmp_path / "o"])
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["x.jpg"]


def test_same_named_images_from_two_sources_get_distinct_outputs(tmp_path, shared):
    a, b = two_sources(tmp_path)
    code, out, err = run_cli(["detect", a, b, "--model", micro_cfg(tmp_path), "--random-weights", *FAST,
                              "--save-json", "--out", tmp_path / "o"])
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == ["images.json", "images_2.json", "x.jpg", "x_2.jpg"], names


def test_class_names_with_commas_and_slashes_in_every_writer(tmp_path, shared):
    yaml = good_yolo(tmp_path)
    _with(yaml, names=["rac,coon", "a/b", "a_b"])
    (tmp_path / "labels" / "b.txt").write_text("1 0.4 0.5 0.3 0.3\n2 0.6 0.5 0.2 0.2\n")
    preds = [{"image_id": "a", "category_id": 0, "bbox": [195, 83, 260, 250], "score": 0.9},
             {"image_id": "b", "category_id": 1, "bbox": [112, 173, 135, 148], "score": 0.8},
             {"image_id": "b", "category_id": 2, "bbox": [270, 198, 90, 99], "score": 0.7}]
    (tmp_path / "pred.json").write_text(json.dumps(preds))
    code, out, err = run_cli(["eval", "--data", yaml, "--pred", tmp_path / "pred.json", "--plots",
                              "--out", tmp_path / "o"])
    assert code == 0, err
    with open(tmp_path / "o" / "confusion_matrix.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["# rac,coon", "a/b", "a_b", "background"] and all(len(r) == 4 for r in rows)
    pr = sorted(p.name for p in (tmp_path / "o" / "pr").glob("pr_*.png") if p.name != "pr_curves.png")
    assert len(pr) == 3 and "pr_a_b.png" in pr, pr  # a/b and a_b: two files
    # YOLO's names.txt (one name a line) takes the comma and the slash; the names read back the same
    code, out, err = run_cli(["convert", "--data", yaml, "--to", "yolo", "--out", tmp_path / "c"])
    assert code == 0, err
    from yolokit.data import load_dataset

    assert load_dataset(tmp_path / "c" / "data.yaml", "val").class_names == ["rac,coon", "a/b", "a_b"]


@pytest.mark.slow
def test_eval_plots_with_10000_classes(tmp_path, shared):
    yaml, pred = many_classes(tmp_path)
    code, out, err = run_cli(["eval", "--data", yaml, "--pred", pred, "--plots", "--out", tmp_path / "o"])
    assert code == 0, err
    assert (tmp_path / "o" / "confusion_matrix.png").is_file()
    rows = list(csv.reader(open(tmp_path / "o" / "confusion_matrix.csv", newline="")))
    assert rows[0] == ["# true", "predicted", "count"] and len(rows) < 10
    with open(tmp_path / "o" / "metrics.txt") as f:
        assert "n/a" in f.read()  # classes without ground truth


def test_split_round_trips_names_with_spaces_and_newlines(tmp_path, shared):
    from yolokit.data import load_dataset
    from yolokit.data.split import split_dataset

    names = ["a b.jpg", "c  d.jpg", "e\nf.jpg", "g,h.jpg", "plain.jpg", 'q"uote.jpg']
    images = {n: (jpeg() if k % 2 else jpeg2()) for k, n in enumerate(names)}
    yaml = good_yolo(tmp_path)
    for n, data in images.items():
        (tmp_path / "images" / n).write_bytes(data)
        (tmp_path / "labels" / (Path(n).stem + ".txt")).write_text("0 0.5 0.5 0.2 0.2\n")
    result = split_dataset(yaml, [0.5, 0.5], 0, tmp_path / "split")
    back = [r.path.name for p in result["parts"] for r in load_dataset(result["yaml"], p).records]
    assert sorted(back) == sorted(names + ["a.jpg", "b.jpg"])


# --- signals and full disks ------------------------------------------------------------------------------
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_in_torch_save_is_a_write_error_not_runtime_error(tmp_path, monkeypatch):
    from yolokit import fileio
    from yolokit.errors import WriteError
    from yolokit.models import build_model
    from yolokit.models.checkpoint import save_checkpoint

    model = build_model(MICRO_CFG, source="micro.cfg")
    real = fileio._Recorder.write
    calls = []

    def fill(self, data):
        calls.append(len(data))
        if len(calls) > 2:
            self.error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise self.error
        return real(self, data)

    monkeypatch.setattr(fileio._Recorder, "write", fill)
    with pytest.raises(WriteError) as info:  # an OSError: the trainer's SaveError mapping sees errno ENOSPC
        save_checkpoint(model, tmp_path / "last.pt")
    assert info.value.errno == errno.ENOSPC and "disk is full" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no temporary file left

    def interrupt(self, data):
        self.error = KeyboardInterrupt()
        raise self.error

    monkeypatch.setattr(fileio._Recorder, "write", interrupt)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C inside torch.save reaches the "interrupted" path
        save_checkpoint(model, tmp_path / "last.pt")


def test_full_disk_in_convert_and_eval_is_one_line(tmp_path, monkeypatch, shared):
    yaml = good_yolo(tmp_path)
    monkeypatch.setattr(Path, "write_text", _enospc)
    argv = ["convert", "--data", yaml, "--to", "voc", "--out", tmp_path / "c"]
    check_outcome(argv, 2, ["disk is full"], run_cli(argv))
    monkeypatch.undo()
    (tmp_path / "pred.json").write_text("[]")
    monkeypatch.setattr(os, "fsync", _enospc)
    argv = ["eval", "--data", yaml, "--pred", tmp_path / "pred.json", "--out", tmp_path / "e"]
    check_outcome(argv, 2, ["disk is full"], run_cli(argv))


def test_interrupted_eval_out_never_looks_complete(tmp_path, monkeypatch, shared):
    import yolokit.eval.plots as plots

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "plot_pr_curves", killed)
    yaml = good_yolo(tmp_path)
    (tmp_path / "pred.json").write_text("[]")
    code, out, err = run_cli(["eval", "--data", yaml, "--pred", tmp_path / "pred.json", "--plots",
                              "--out", tmp_path / "e"])
    assert code == 130
    assert not (tmp_path / "e" / "metrics.json").exists()  # metrics.json marks a finished evaluation


def test_video_is_renamed_into_place_only_when_closed(tmp_path, shared):
    import cv2

    from yolokit.apps.pipeline import VideoSink
    from yolokit.apps.sources import open_source

    sink = VideoSink(tmp_path / "v.mp4", 25.0, lambda image, dets: image)
    for frame, _ in zip(open_source(str(VIDEO02)), range(3)):
        sink(frame, None)
    assert not (tmp_path / "v.mp4").exists()  # a kill now leaves only the hidden partial file
    sink.close()
    assert (tmp_path / "v.mp4").is_file() and not list(tmp_path.glob(".*partial*"))
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    assert cap.read()[0]
    cap.release()


# --- valid data never crashes training -----------------------------------------------------------------
@pytest.mark.slow
def test_one_epoch_on_the_coco128_preset(tmp_path, shared):
    """configs/data/coco128_yolo.yaml with COCO-pretrained yolov3-tiny: 7 of 80 classes have no val box (16 val
    images here leave most without one); validation crashed on them before."""
    out = tmp_path / "run"
    code, stdout, err = run_cli(["train", "--model", TINY_CFG, "--weights", TINY_WEIGHTS, "--data",
                                 ROOT / "configs" / "data" / "coco128_yolo.yaml", "--epochs", "1", "--imgsz", "128",
                                 "--batch", "8", "--limit-train", "8", "--limit-val", "16", "--device", "cpu",
                                 "--workers", "0", "--no-progress", "--out", out])
    assert code == 0, err[-2000:]
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
    rows = list(csv.DictReader(open(out / "results.csv", newline="")))
    assert len(rows) == 1 and rows[0]["map50"] not in ("", "None", "nan")
