"""Unknown flags: the sub-command's own error line with "did you mean", and the yolokit spelling of the flags
YOLOv5/ultralytics users type."""

import pytest

from yolokit.cli import main, unknown_flag_hint


def _error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("argv, expected", [
    (["detect", "x.jpg", "--model", "m.cfg", "--conf-thres", "0.3"],
     "yolokit detect: error: unrecognized argument --conf-thres: use --conf"),
    (["detect", "x.jpg", "--model", "m.cfg", "--iou-thres", "0.5"], "use --iou (the NMS IoU"),
    (["eval", "--data", "d.yaml", "--iou-thres", "0.5"], "eval's AP matching IoU is --match-iou"),  # not taken
    (["detect", "x.jpg", "--model", "m.cfg", "--img-size", "640"], "use --imgsz"),
    (["detect", "--source", "x.jpg", "--model", "m.cfg"], "the source needs no flag"),
    (["detect", "x.jpg", "--weights", "best.pt"], "give it as --model best.pt"),
    (["detect", "conf=0.3", "--model", "m.pt"], "conf=0.3: yolokit takes flags, not key=value words: --conf 0.3"),
    (["detect", "x.jpg", "--model", "m.cfg", "--confidence", "0.3"], "did you mean --conf?"),
    (["hog", "detect", "x.jpg", "--model", "m.npz", "--max-detections", "3"],
     "yolokit hog detect: error: unrecognized argument --max-detections: did you mean --max-det?"),
    (["track", "v.avi", "--model", "m.cfg", "--track-thresh", "0.5"], "use --track-conf"),
])
def test_unknown_flag_lines(capsys, argv, expected):
    assert expected in _error(capsys, argv)


def test_hint_falls_back_to_help():
    assert unknown_flag_hint("--zzz", ["--conf", "--iou"]) == "see --help for this command's flags"
    assert unknown_flag_hint("--ioux", ["--conf", "--iou"]) == "did you mean --iou?"


@pytest.mark.parametrize("argv, expected", [
    (["detec", "x.jpg"], "yolokit: error: unknown command 'detec': did you mean detect?"),
    (["predict", "x.jpg"], "unknown command 'predict': did you mean detect?"),  # ultralytics' mode name
    (["zzz"], "`yolokit --help` lists the commands"),
])
def test_unknown_command(capsys, argv, expected):
    assert expected in _error(capsys, argv)
