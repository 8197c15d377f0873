"""Fine-tuning across seeds: N seeds of ``yolokit train`` with only ``--model``, ``--weights``, ``--data`` (the
default recipe), on raccoon and voc2012_rodm, from yolov3-tiny's COCO Darknet weights; mean / min / max val AP50
(best.pt, the figure ``yolokit eval --model best.pt`` reports) and the wall clock of each run.

* ``--recipe readme`` runs the README's hand-set raccoon flags (6 epochs, 320, lr 0.005, burn-in 10, freeze 10,
  no mosaic) instead; ``--recipe both`` runs both.
* ``--ref REF`` runs the same seeds with the code of git ref REF too (``git archive`` into a temp folder, the
  same command line), so a regression shows in one table.
* voc2012_rodm has one split of 100 images; the bench trains on the first 80 (file name order) and validates
  on the last 20 (a data YAML written into ``--out``). Classes without a val box have no AP (n/a) and are left
  out of the mean.

Each run is a ``python -m yolokit train`` subprocess (the same door a user takes); its last line
(``best val AP50 X at epoch N``) is the figure.
"""

from __future__ import annotations

import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, SHARED_DATA as SHARED

HELP = "N seeds of the default fine-tune recipe on raccoon and voc2012_rodm: mean/min/max AP50, wall time"
DATASETS = ("raccoon", "voc2012_rodm")
README_FLAGS = ["--epochs", "6", "--imgsz", "320", "--batch", "16", "--nbs", "16", "--lr", "0.005", "--burn-in",
                "10", "--freeze", "10", "--mosaic", "0"]


def add_arguments(parser):
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--data", default=",".join(DATASETS), help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--recipe", choices=("default", "readme", "both"), default="default")
    parser.add_argument("--ref", help="also run the same at this git ref (e.g. HEAD~5, a tag)")
    parser.add_argument("--out", default="runs/bench_finetune", help="training outputs go under this folder")
    parser.add_argument("--extra", default="", help="more `yolokit train` flags for every run, quoted")


def _voc_yaml(out: Path) -> Path:
    """voc2012_rodm as 80 train / 20 val images (file name order): list files and a data YAML under ``out``."""
    root = SHARED / "voc2012_rodm" / "data" / "database"
    stems = sorted(p.stem for p in (root / "images").glob("*.jpg"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "voc_train.txt").write_text("\n".join(stems[:80]) + "\n")
    (out / "voc_val.txt").write_text("\n".join(stems[80:]) + "\n")
    split = "{{images: images, annotations: gts/pascalvoc_format, list: {}}}"
    text = (f"format: voc\nroot: {root}\nnames: voc.names\nsplits:\n"
            f"  train: {split.format(out.resolve() / 'voc_train.txt')}\n"
            f"  val: {split.format(out.resolve() / 'voc_val.txt')}\n")
    path = out / "voc2012_rodm_80_20.yaml"
    path.write_text(text)
    return path


def _data_yaml(name: str, out: Path) -> Path:
    return ROOT / "configs" / "data" / "raccoon.yaml" if name == "raccoon" else _voc_yaml(out)


def _train(code: Path, args: list[str]) -> tuple[float | None, float, str]:
    """One ``python -m yolokit train`` with the package at ``code``: (best val AP50, wall seconds, last line)."""
    env = {**os.environ, "PYTHONPATH": str(code), "YOLOKIT_DATA_ROOT": os.environ.get("YOLOKIT_DATA_ROOT",
                                                                                      str(SHARED))}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "yolokit", "train", *args, "--no-progress"], cwd=code, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    text = proc.stdout + proc.stderr
    m = re.search(r"best val AP50 ([0-9.]+)", text)
    last = text.strip().splitlines()[-1] if text.strip() else f"exit {proc.returncode}"
    return (float(m.group(1)) if m else None), wall, last


def _checkout(ref: str) -> Path:
    """The tree of git ``ref`` in a temp folder (its ``yolokit`` package and ``configs``)."""
    folder = Path(tempfile.mkdtemp(prefix="yolokit-ref-"))
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _runs(args):
    """Yield (code label, data name, recipe, seed, AP50, wall, command)."""
    from benchmarks.common import SHARED_DATA

    d = SHARED_DATA / "yolov3_tiny_darknet"
    out = Path(args.out).resolve()
    codes = [("this tree", ROOT)] + ([(f"git {args.ref}", _checkout(args.ref))] if args.ref else [])
    recipes = ["default", "readme"] if args.recipe == "both" else [args.recipe]
    for name in args.data.split(","):
        data = _data_yaml(name, out)
        for recipe in recipes:
            for label, code in codes:
                for seed in range(args.seeds):
                    cmd = ["--model", str(d / "yolov3-tiny.cfg"), "--weights", str(d / "yolov3-tiny.weights"),
                           "--data", str(data), "--seed", str(seed),
                           "--out", str(out / f"{name}-{recipe}-{label.replace(' ', '_')}-s{seed}"), "--exist-ok",
                           *(README_FLAGS if recipe == "readme" else []), *shlex.split(args.extra)]
                    ap, wall, last = _train(code, cmd)
                    print(f"{label} {name} {recipe} seed {seed}: AP50 {ap} in {wall:.0f} s ({last})", flush=True)
                    yield label, name, recipe, seed, ap, wall, cmd


def run(args) -> int:
    from yolokit.report import markdown_table

    results: dict = {}
    commands = {}
    for label, name, recipe, seed, ap, wall, cmd in _runs(args):
        results.setdefault((label, name, recipe), []).append((seed, ap, wall))
        shown = " ".join(shlex.quote(c) for c in cmd if c != "--exist-ok")
        commands[(name, recipe)] = re.sub(r"--seed \d+ --out \S+", "--seed S", shown).replace(
            str(ROOT) + "/", "").replace(str(ROOT.parent) + "/", "../")
    rows = []
    for (label, name, recipe), runs in results.items():
        aps = [ap for _, ap, _ in runs if ap is not None]
        walls = [w for _, _, w in runs]
        per_seed = ", ".join(f"{ap:.3f}" if ap is not None else "failed" for _, ap, _ in runs)
        if aps:
            rows.append([name, recipe, label, per_seed, f"{statistics.mean(aps):.3f}", f"{min(aps):.3f}",
                         f"{max(aps):.3f}", f"{max(aps) - min(aps):.3f}", f"{statistics.mean(walls) / 60:.1f}"])
        else:
            rows.append([name, recipe, label, per_seed, "", "", "", "", f"{statistics.mean(walls) / 60:.1f}"])
    body = "\n".join([
        f"yolov3-tiny (COCO Darknet weights) fine-tuned with seeds 0..{args.seeds - 1}; val AP50 of best.pt (VOC "
        "all-point, IoU 0.5). raccoon: the README's 160 train / 40 val split; voc2012_rodm: 80 train / 20 val "
        "(file name order). `default` = only --model/--weights/--data (the recipe line of each run says what "
        "it chose); `readme` = the README's hand-set raccoon flags. Wall clock per run on this shared 2-core "
        "CPU (other jobs running: an upper bound).",
        "",
        markdown_table(["data", "recipe", "code", "AP50 per seed", "mean", "min", "max", "spread", "min/run"],
                       rows),
        "",
        "Commands (S = seed):",
        "",
        *[f"- `yolokit train {c}`" for c in commands.values()],
        "",
        f"`yolokit bench finetune --seeds {args.seeds} --data {args.data} --recipe {args.recipe}"
        + (f" --ref {args.ref}" if args.ref else "") + (f" --extra {shlex.quote(args.extra)}" if args.extra else "")
        + "`",
    ])
    print(body)
    if args.write:
        from yolokit.report import write_section

        write_section(args.write, "train-finetune-seeds", body)
    return 0
