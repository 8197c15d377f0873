#!/usr/bin/env python
"""Same as ``yolokit detect ...``: detection on images, directories, globs, videos, webcams, streams."""

import sys

from yolokit.cli import main

if __name__ == "__main__":
    sys.exit(main(["detect", *sys.argv[1:]]))
