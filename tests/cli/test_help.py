"""Every ``--help`` (commands and their sub-commands) exits 0 and shows each option's default."""

import argparse
import re

import pytest

from yolokit.cli import HelpFormatter, build_parser, main


def _subparsers(parser, path=()):
    """(command path, parser) for every command and sub-command (hog train, bench nms, ...)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + (name,), sub
                yield from _subparsers(sub, path + (name,))


COMMANDS = [path for path, _ in _subparsers(build_parser())]


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_the_main_commands_are_all_there():
    names = {p[0] for p in COMMANDS}
    assert {"detect", "train", "eval", "export", "check", "convert", "split", "anchors", "hog", "compare"} <= names
    assert ("hog", "train") in COMMANDS and ("hog", "detect") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_help_exits_0_and_shows_every_default(path, capsys):
    with pytest.raises(SystemExit) as info:
        main([*path, "--help"])
    assert info.value.code == 0
    printed = capsys.readouterr().out
    text = _flat(printed)
    parser = dict(_subparsers(build_parser()))[path]
    missing = []
    for action in parser._actions:
        if not action.option_strings or action.help is argparse.SUPPRESS:
            continue
        formatter = parser._get_formatter()  # this option's block of the help, as --help printed it
        formatter.add_argument(action)
        block = formatter.format_help()
        assert re.sub(r"\s", "", block) in re.sub(r"\s", "", printed), action.option_strings  # wrapping differs
        if HelpFormatter._shows_default(action) and not re.search(r"\bdefault[: ]", block):
            missing.append(max(action.option_strings, key=len))
    if path == ("train",):  # train's options default to "not given" (preset/resume); TrainConfig's are shown
        from yolokit.settings import TrainConfig

        for flag in ("--epochs", "--imgsz", "--batch", "--lr", "--device", "--workers", "--val-conf"):
            key = flag[2:].replace("-", "_")
            default = getattr(TrainConfig, key)  # None: chosen by the recipe (yolokit.engine.recipe) at run time
            shown = "(default: the recipe's" if default is None else f"(default: {default})"
            assert f"{flag} {key.upper()} " in text and shown in text
    assert not missing, f"options without their default in --help: {missing}"


def test_known_defaults_are_printed(capsys):
    for argv, shown in ((["detect"], ["(default: 0.25)", "(default: auto)", "(default: 300)"]),
                        (["eval"], ["--match-iou MATCH_IOU VOC: least IoU", "(default: 0.5)", "(default: 100)"]),
                        (["split"], ["(default: [0.7, 0.2, 0.1])"])):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        text = _flat(capsys.readouterr().out)
        for s in shown:
            assert s in text, (argv, s)


@pytest.mark.parametrize("argv, old, new", [
    (["eval", "--data", "d.yaml", "--max-dets", "10"], "--max-dets", "--coco-max-dets"),
    (["eval", "--data", "d.yaml", "--save-dir", "d"], "--save-dir", "--out"),
    (["detect", "x.jpg", "--model", "m", "--nosave"], "--nosave", "--no-save"),
    (["compare", "--data", "d", "--sizes", "128", "160"], "--sizes", "--imgsz"),
    (["compare", "--data", "d", "--table-size", "160"], "--table-size", "--table-imgsz"),
])
def test_old_spellings_are_unknown_flags_that_name_the_new_one(capsys, argv, old, new):
    # no hidden aliases at 0.1.0: an old spelling is an error whose one line says which flag is meant
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"unrecognized argument {old}: use {new}" in line


@pytest.mark.parametrize("command", ["check", "convert", "split", "anchors"])
def test_data_positional_is_the_same_as_data_flag(command, capsys):
    from yolokit.cli import _merge_data

    extra = ["--to", "coco", "--out", "o"] if command == "convert" else []
    a = build_parser().parse_args([command, "d.yaml", *extra])
    b = build_parser().parse_args([command, "--data", "d.yaml", *extra])
    _merge_data(a), _merge_data(b)
    assert a.data == b.data == "d.yaml"
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "data_positional" not in capsys.readouterr().out
    assert main([command, "a.yaml", "--data", "b.yaml", *extra]) == 2
    assert "dataset given twice: --data b.yaml and a.yaml" in capsys.readouterr().err


def test_data_is_required_where_there_is_no_other_source(capsys):
    assert main(["split"]) == 2
    assert "--data: required" in capsys.readouterr().err


def test_parser_and_settings_do_not_import_torch():
    """--help stays instant: building every parser and a cpu settings object imports no torch."""
    import subprocess
    import sys

    code = ("import sys; from yolokit.cli import build_parser; build_parser(); "
            "from yolokit.settings import PredictSettings; from yolokit.settings import TrainConfig; "
            "PredictSettings(device='cpu'); TrainConfig(model='m', data='d'); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_info_takes_the_model_as_word_or_flag(capsys):
    assert main(["info", "yolov3-tiny", "-q"]) == 0
    word = capsys.readouterr().out
    assert main(["info", "--model", "yolov3-tiny", "-q"]) == 0
    assert capsys.readouterr().out == word and "BFLOPs: 5.565" in word
    assert main(["info"]) == 2
    assert "give a model" in capsys.readouterr().err
