"""The ``yolokit`` console script.

Each subcommand lives in ``yolokit/cli/<name>.py`` and exposes ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules import their heavy
dependencies inside ``run`` so that ``yolokit --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# The order shown by ``yolokit --help``. A name whose module is absent is simply not offered.
COMMANDS = (
    "detect", "train", "eval", "convert", "check", "split", "anchors", "data",
    "info", "export", "hog", "compare", "bench",
)


def _load_command(name: str):
    try:
        return importlib.import_module(f"yolokit.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"yolokit.cli.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    from yolokit import __version__

    parser = argparse.ArgumentParser(prog="yolokit", description="YOLO-family detection toolkit.")
    parser.add_argument("--version", action="version", version=f"yolokit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = _load_command(name)
        if module is None:
            continue
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from yolokit.errors import YolokitError

    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except YolokitError as exc:
        print(f"yolokit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"yolokit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
