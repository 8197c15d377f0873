"""Thin wrapper: ``python tools/compare.py ARGS`` == ``yolokit compare ARGS``."""

import sys

from yolokit.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
