#!/usr/bin/env python
"""Train a model: the same as `yolokit train ...`; also the script to run under torchrun for DDP."""

import sys

from yolokit.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
