"""Benchmarks. Each ``yolokit bench NAME`` lives in the source checkout's ``benchmarks/NAME.py`` (outside the
installed package: the benches read ``../shared/data`` and the checkout's configs) and exposes ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``.

``--write BENCHMARKS.md`` replaces that benchmark's section of the file with the figures of this run
and the command that produced them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

HELP = "speed/accuracy benchmarks (nms, infer, data, eval, train, video, hog); from a source checkout"
BENCHES = ("nms", "infer", "data", "eval", "train", "finetune", "video", "hog", "tta", "track", "scale")
MISSING = ("yolokit bench: the benchmarks are not installed with yolokit; run them from a source checkout "
           "(git clone, then `pip install -e .` and `yolokit bench ...` there)")


def _benchmarks():
    """The checkout's ``benchmarks`` package, or None when yolokit runs from an install without it.

    The checkout root (the folder above ``yolokit/``) goes on ``sys.path`` when it holds ``benchmarks/``, so the
    command works from any directory of an editable install."""
    root = Path(__file__).resolve().parents[2]
    if (root / "benchmarks" / "__init__.py").is_file() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module("benchmarks")
    except ModuleNotFoundError as exc:
        if exc.name == "benchmarks":
            return None
        raise


def add_arguments(parser):
    if _benchmarks() is None:
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        parser.set_defaults(_bench_run=lambda args: print(MISSING, file=sys.stderr) or 2)
        return
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name in BENCHES:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"benchmarks.{name}":
                continue
            raise
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        p.add_argument("--write", metavar="MD", help="update this benchmark's section in a markdown file")
        module.add_arguments(p)
        p.set_defaults(_bench_run=module.run)


def run(args):
    return args._bench_run(args)
