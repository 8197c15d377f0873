"""Benchmarks. Each ``yolokit bench NAME`` lives in ``yolokit/bench/NAME.py`` and exposes
``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.

``--write BENCHMARKS.md`` replaces that benchmark's section of the file with the figures of this run
and the command that produced them.
"""

from __future__ import annotations

import importlib

HELP = "speed/accuracy benchmarks (nms, infer, data, eval, train, video, hog)"
BENCHES = ("nms", "infer", "data", "eval", "train", "video", "hog", "tta", "track")


def add_arguments(parser):
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name in BENCHES:
        try:
            module = importlib.import_module(f"yolokit.bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"yolokit.bench.{name}":
                continue
            raise
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        p.add_argument("--write", metavar="MD", help="update this benchmark's section in a markdown file")
        module.add_arguments(p)
        p.set_defaults(_bench_run=module.run)


def run(args):
    return args._bench_run(args)
