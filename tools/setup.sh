#!/usr/bin/env bash
# Create .venv (if missing) and install yolokit with its test extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, with torchvision pinned to the matching release: an unpinned torchvision can pull a
# torch that does not match it ("operator torchvision::nms does not exist").
.venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.14.1}" "torchvision==${TORCHVISION_VERSION:-0.29.1}"
.venv/bin/python -m pip install -q -e ".[dev]"
# TIDE's reference (tests only). --no-deps: it requires opencv-python 5, which would overwrite the cv2/ of
# opencv-python-headless 4.x (see pyproject's dev extra for its other dependencies).
.venv/bin/python -m pip install -q --no-deps "tidecv==1.0.1"
