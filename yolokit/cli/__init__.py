"""The ``yolokit`` console script.

Each subcommand lives in ``yolokit/cli/<name>.py`` and exposes ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules import their heavy
dependencies inside ``run`` so that ``yolokit --help`` stays instant.

One name per concept in every command: ``--conf`` (the detector's score threshold), ``--iou`` (NMS IoU),
``--imgsz``, ``--max-det``, ``--device`` (default ``auto``: CUDA when available), ``--batch``, ``--data``,
``--split``, ``--no-*`` switches; an old or foreign spelling is an unknown flag whose error line says which flag
is meant. Values are validated once, where a command builds its
typed settings (:mod:`yolokit.settings`); a bad one is one ``yolokit CMD: error: --flag VALUE: ...`` line and
exit status 2, like argparse's own errors.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import sys

# The order shown by ``yolokit --help``. A name whose module is absent is simply not offered.
COMMANDS = (
    "detect", "train", "eval", "convert", "check", "split", "anchors", "data",
    "info", "export", "hog", "compare", "track", "bench", "partial",
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (examples keep their lines) and every option's default in its help.

    A default is shown unless it says nothing: None (the help then says what happens), an empty value, the
    off state of a switch, or a help text that already states its default. Options without a help text get
    one that shows their default.
    """

    @staticmethod
    def _shows_default(action) -> bool:
        d = action.default
        if any(d is v for v in (None, False, argparse.SUPPRESS)):  # identity: a default of 0 or 0.0 is shown
            return False
        if isinstance(d, (str, list, tuple, dict)) and not d:
            return False
        if isinstance(action, argparse._StoreConstAction) and d is True:  # a --no-X switch
            return False
        return bool(action.option_strings) or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE)

    def _get_help_string(self, action):
        text = action.help or ""
        if "%(default)" in text or "(default" in text or not self._shows_default(action):
            return text
        return (text + " (default: %(default)s)").strip()

    def _format_action(self, action):
        if not action.help and self._shows_default(action):
            action = copy.copy(action)  # argparse prints nothing after an option without help
            action.help = "(default: %(default)s)"
        return super()._format_action(action)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help uses :class:`HelpFormatter`; sub-commands (``hog train``, ``bench nms``)
    are built with the same class, so every ``--help`` shows its defaults."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def add_data_argument(parser, required: bool = True, help: str = "dataset description YAML "
                                                                   "(configs/data/*.yaml)") -> None:
    """``--data YAML``; the dataset given as the first positional word (the older form) is still accepted."""
    parser.add_argument("--data", metavar="YAML", help=help + ("" if required else " (or --format/--images/...)"))
    parser.add_argument("data_positional", nargs="?", metavar="DATA", help=argparse.SUPPRESS)
    parser.set_defaults(_data_required=required)


def _merge_data(args) -> None:
    """``yolokit check DATA`` = ``yolokit check --data DATA``; both given and different is an error."""
    from yolokit.errors import ConfigError

    if not hasattr(args, "data_positional"):
        return
    positional = args.data_positional
    del args.data_positional
    if positional is not None:
        if args.data is not None and args.data != positional:
            raise ConfigError(f"dataset given twice: --data {args.data} and {positional}")
        args.data = positional
    if args.data is None and args._data_required:
        raise ConfigError("--data: required (a dataset YAML, e.g. --data configs/data/raccoon.yaml)")


def _load_command(name: str):
    try:
        return importlib.import_module(f"yolokit.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"yolokit.cli.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    from yolokit import __version__

    parser = Parser(prog="yolokit", description="YOLO-family detection toolkit.")
    parser.add_argument("--version", action="version", version=f"yolokit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = _load_command(name)
        if module is None:
            continue
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def default_omp_wait_policy() -> None:
    """``OMP_WAIT_POLICY=PASSIVE`` unless the user set it (``ACTIVE`` brings back spinning).

    OpenMP threads spin at every barrier by default; on a shared CPU (another job, a video decoder thread, the
    writer thread) that spinning steals the cores the partner thread needs: yolov3-tiny's detect per frame took
    1.0-1.4x OpenCV DNN's time with the default and 0.4-0.5x with PASSIVE, in the same runs (BENCHMARKS.md
    "infer-defaults"). libgomp reads the variable once, when
    torch loads it, so this only acts before torch is imported (the console script's start)."""
    import os

    if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


#: Spellings of YOLOv5 / ultralytics -> what yolokit calls the same thing. ``--iou-thres`` is YOLOv5's NMS IoU
#: everywhere (detect.py, val.py): it maps to --iou, never to eval's matching IoU (README "Command-line names and
#: checks" says why it is refused rather than taken).
FOREIGN_FLAGS = {
    "--conf-thres": "use --conf (the detector's score threshold, YOLOv5's --conf-thres)",
    "--conf-threshold": "use --conf (the detector's score threshold)",
    "--iou-thres": "use --iou (the NMS IoU, as YOLOv5's --iou-thres; eval's AP matching IoU is --match-iou)",
    "--iou-threshold": "use --iou (the NMS IoU; eval's AP matching IoU is --match-iou)",
    "--img-size": "use --imgsz (the network input side)",
    "--img": "use --imgsz (the network input side)",
    "--source": "the source needs no flag, it is the first word: yolokit detect photo.jpg --model ...",
    "--project": "use --out (the run folder; runs/detect, runs/detect2, ... by default)",
    "--name": "use --out (the run folder; runs/detect, runs/detect2, ... by default)",
    "--view-img": "use --show",
    "--save-txt": "use --save-json (COCO results, as `yolokit eval --pred` reads them)",
    "--cfg": "use --model (a Darknet .cfg is given as --model)",
    "--track-thresh": "use --track-conf (ByteTrack's track_thresh)",
    "--match-thresh": "use --match-iou (ByteTrack's match_thresh is a cost, 1 - IoU: 0.8 there is --match-iou 0.2)",
    "--track-buffer": "use --max-age (frames a lost track is kept)",
    # yolokit's own spellings before 0.1.0 (no aliases kept)
    "--save-dir": "use --out (the run folder)",
    "--sizes": "use --imgsz (compare: the input sizes to sweep)",
    "--table-size": "use --table-imgsz",
    "--max-dets": "use --coco-max-dets (COCO's maxDets; the detector's limit is --max-det)",
    "--nosave": "use --no-save",
}
#: ultralytics' ``key=value`` words -> the flag.
FOREIGN_WORDS = {"conf": "--conf", "iou": "--iou", "imgsz": "--imgsz", "source": "the first word",
                 "model": "--model", "device": "--device", "batch": "--batch", "epochs": "--epochs",
                 "data": "--data", "classes": "--classes", "project": "--out", "name": "--out"}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    """The visible ``--`` option strings of ``parser`` (hidden aliases left out)."""
    return [s for a in parser._actions if a.help is not argparse.SUPPRESS for s in a.option_strings
            if s.startswith("--")]


def _subparser(parser: argparse.ArgumentParser, argv: list[str]):
    """The sub-command parser that ``argv`` selects (``hog detect``: the deepest) and its command words."""
    words = []
    for word in argv:
        if word.startswith("-"):
            continue
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            break
        if word in subs[0].choices:
            parser = subs[0].choices[word]
            words.append(word)
        else:
            break
    return parser, words


def unknown_flag_hint(flag: str, options: list[str]) -> str:
    """The hint after ``unrecognized argument FLAG``: the yolokit spelling of a YOLOv5/ultralytics flag, else the
    closest flags of the command (difflib), else a pointer to ``--help``."""
    import difflib

    name = flag.split("=", 1)[0]
    if name in FOREIGN_FLAGS:
        return FOREIGN_FLAGS[name]
    bare = name.lstrip("-")  # --confidence -> --conf: a prefix either way is the best guess
    prefix = [o for o in options if bare.startswith(o.lstrip("-")) or o.lstrip("-").startswith(bare)]
    close = list(dict.fromkeys(prefix + difflib.get_close_matches(name, options, n=3, cutoff=0.7)))[:3]
    return f"did you mean {', '.join(close)}?" if close else "see --help for this command's flags"


def _foreign_words(argv: list[str]) -> str | None:
    """One error line for spellings argparse would accept but misread: ultralytics' ``conf=0.3`` (taken as a
    source named ``conf=0.3``) and ``--weights best.pt`` (yolokit's --weights is a Darknet .weights file)."""
    for i, word in enumerate(argv):
        key, _, value = word.partition("=")
        if value and not word.startswith("-") and key in FOREIGN_WORDS:
            flag = FOREIGN_WORDS[key]
            fix = f"{flag} {value}" if flag.startswith("--") else f"give {value} as {flag}"
            return f"{word}: yolokit takes flags, not key=value words: {fix}"
        if word == "--weights" and i + 1 < len(argv) and argv[i + 1].lower().endswith((".pt", ".pth")):
            return (f"--weights {argv[i + 1]}: a checkpoint is the model itself, give it as --model {argv[i + 1]} "
                    f"(--weights is for a Darknet .weights file beside a --model .cfg)")
    return None


def parse(parser: argparse.ArgumentParser, argv: list[str] | None):
    """``parser.parse_args(argv)``, except that an unknown flag is reported by its sub-command with a hint
    (``yolokit detect: error: unrecognized argument --conf-thres: yolokit spells it --conf ...``) and two
    foreign spellings argparse would misread are refused (:func:`_foreign_words`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    sub, words = _subparser(parser, argv)
    problem = _foreign_words(argv) if words else None
    if not words and argv and not argv[0].startswith("-"):  # `yolokit detec ...`, `yolokit predict ...`
        import difflib

        commands = [c for a in parser._actions if isinstance(a, argparse._SubParsersAction) for c in a.choices]
        close = {"predict": "detect", "val": "eval", "benchmark": "bench"}.get(argv[0])
        close = [close] if close else difflib.get_close_matches(argv[0], commands, n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}?" if close else "`yolokit --help` lists the commands"
        problem = f"unknown command {argv[0]!r}: {hint}"
    if problem is None:
        args, extra = parser.parse_known_args(argv)
        if not extra:
            return args
        unknown = [w for w in extra if w.startswith("-")]
        if unknown:
            problem = f"unrecognized argument {unknown[0]}: {unknown_flag_hint(unknown[0], _options(sub))}"
        else:
            problem = f"unrecognized arguments: {' '.join(extra)}"
    sub.print_usage(sys.stderr)
    print(f"{sub.prog}: error: {problem}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, so a closed pipe is caught below and not at interpreter exit
        return code
    except BrokenPipeError:
        # `yolokit data list | head -3`: the reader left; stop quietly, as Unix tools do (Python docs, "signal")
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the closed pipe


def error_text(exc: Exception) -> str:
    """The message of a yolokit error. One raised in a DataLoader worker process comes back re-raised with the
    worker's traceback as its message ("Caught DataError in DataLoader worker process 0. Original Traceback
    ..."): its last line holds the original message."""
    text = str(exc)
    if "Original Traceback" in text:
        last = text.strip().splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text


def _main(argv: list[str] | None = None) -> int:
    from yolokit.errors import YolokitError

    default_omp_wait_policy()
    args = parse(build_parser(), argv)
    try:
        _merge_data(args)
        return int(args._run(args) or 0)
    except YolokitError as exc:
        print(f"yolokit {args.command}: error: {error_text(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk (or quota, read-only file system) under any writer: one line, not a traceback
        if exc.errno not in (28, 122, 30):
            raise
        from yolokit.errors import WriteError

        print(f"yolokit {args.command}: error: {WriteError(exc.errno, exc.strerror, exc.filename)}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # a command may say what is on disk and how to continue (train: --resume)
        print(f"yolokit {args.command}: interrupted" + (f"; {exc}" if str(exc) else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
