"""Track objects with stable ids: a detector plus SORT or ByteTrack, on video or on MOT detection files.

Examples:
  yolokit track traffic.avi --model yolov3-tiny.cfg --weights yolov3-tiny.weights --classes car truck bus
  yolokit track traffic.avi --model best.pt --tracker sort --save-json
  yolokit track street.avi --model runs/hog/people.npz         # a HOG+SVM model works the same
  yolokit track --dets MOT15/TUD-Campus/det/det.txt --out runs/track/TUD-Campus.txt
  yolokit track --dets det.txt --out res.txt --gt gt.txt

On a video (same pipeline and prediction path as `yolokit detect`): OUT/<name>.mp4 with a colour per
track id and short trails, OUT/<name>.txt in the MOTChallenge format (frame,id,x,y,w,h,score,-1,-1,-1;
frames 1-based) and, with --save-json, OUT/<name>.json (COCO results plus "track_id").
--conf is the detector's threshold; its default here is low (0.1) because ByteTrack uses the weak boxes
(between --conf and --track-conf) to continue tracks through occlusions. With --dets, every box of the file
is used unless --conf is given (some detection files carry raw, even negative, scores).

With --dets (the MOTChallenge public-detections protocol: lines frame,-1,x,y,w,h,score,...): no model;
--out names the result file; --gt scores it (MOTA, IDF1, ID switches; needs yolokit[track]).
"""

from __future__ import annotations

import time
from pathlib import Path

HELP = "track objects with stable ids (SORT, ByteTrack) on video or MOTChallenge detections"

#: The detector's --conf on video: low, for ByteTrack's second association.
VIDEO_CONF = 0.1
#: Tracker options -> the tracker classes that take them.
_TRACKER_OPTIONS = {"track_conf": ("bytetrack",), "new_track_conf": ("bytetrack",), "min_hits": ("sort",),
                    "match_iou": ("sort", "bytetrack"), "max_age": ("sort", "bytetrack")}


def add_arguments(parser) -> None:
    from yolokit.cli.detect import add_model_arguments, add_output_arguments

    parser.add_argument("source", nargs="*", help="video file, webcam index, stream URL, or images (in order)")
    # --model: also a HOG+SVM .npz from `yolokit hog train` (any yolokit detector can be tracked)
    parser.add_argument("--dets", metavar="DET.txt", help="track MOTChallenge detections instead of running a model")
    parser.add_argument("--gt", metavar="GT.txt", help="with --dets: score the result against this ground truth")
    add_model_arguments(parser, required=False)
    add_output_arguments(parser, default_out="runs/track")
    parser.set_defaults(conf=None)  # video: 0.1; --dets: the whole file (see the module docstring)
    parser.add_argument("--batch", type=int, default=1, help="frames per forward pass (video)")
    add_tracker_arguments(parser)


def add_tracker_arguments(parser) -> None:
    """The tracker and its birth/death parameters (unset ones keep the tracker's published defaults)."""
    g = parser.add_argument_group("tracker")
    g.add_argument("--tracker", choices=("bytetrack", "sort"), default="bytetrack", help="default: %(default)s")
    g.add_argument("--track-conf", type=float,
                   help="ByteTrack: boxes at or above are associated first and may start tracks; weaker ones "
                        "only continue tracks (default 0.6, the ByteTrack paper's)")
    g.add_argument("--new-track-conf", type=float,
                   help="ByteTrack: least score of a box that starts a track (default --track-conf + 0.1: 0.7, "
                        "the paper's)")
    g.add_argument("--match-iou", type=float, help="least IoU of a match (SORT 0.3; ByteTrack 0.2, IoU x score)")
    g.add_argument("--max-age", type=int,
                   help="frames a track survives without a match (SORT 1; ByteTrack 30)")
    g.add_argument("--min-hits", type=int, help="SORT: matches in a row before a track is shown (default 3)")
    g.add_argument("--per-class", action="store_true", help="match boxes only to tracks of the same class")
    g.add_argument("--kalman-box", action="store_true",
                   help="report the Kalman-filtered box instead of the matched detection (SORT always does)")


def build_tracker(args, low_conf: float):
    """The tracker named by ``--tracker`` with the options given; an option the tracker lacks, or a value
    out of range, is a one-line error. Score thresholds are not limited to [0, 1]: some MOT detection
    files (MOT17's DPM boxes) carry raw scores."""
    from yolokit.errors import ConfigError
    from yolokit.settings import check_fraction, check_int
    from yolokit.track import make_tracker

    checks = {"track_conf": lambda k, v: v, "new_track_conf": lambda k, v: v, "match_iou": check_fraction,
              "max_age": lambda k, v: check_int(k, v, 0), "min_hits": lambda k, v: check_int(k, v, 0)}
    kwargs = {}
    for name, takers in _TRACKER_OPTIONS.items():
        value = getattr(args, name)
        if value is None:
            continue
        if args.tracker not in takers:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} applies to {' and '.join(takers)}, not --tracker {args.tracker}")
        kwargs[name] = checks[name](name, value)
    if args.tracker == "bytetrack":  # SORT reports the Kalman box anyway and has no low-score pass
        kwargs["low_conf"] = low_conf
        kwargs["kalman_box"] = args.kalman_box
    return make_tracker(args.tracker, per_class=args.per_class, **kwargs)


def run(args) -> int:
    from yolokit.errors import ConfigError

    if args.dets:
        if args.source or args.model:
            raise ConfigError("--dets tracks a detection file: give no SOURCE and no --model")
        return _run_dets(args)
    if args.gt:
        raise ConfigError("--gt scores a --dets run; for a video there is no ground truth here")
    if not args.source or not args.model:
        raise ConfigError("give a SOURCE and --model, or --dets DET.txt")
    return _run_video(args)


def _run_dets(args) -> int:
    from yolokit.track.mot import detections_by_frame, read_mot, track_detections, write_mot

    low = float("-inf") if args.conf is None else args.conf
    tracker = build_tracker(args, low_conf=low)
    frames, n = detections_by_frame(read_mot(args.dets))
    frames = [d[d[:, 4] >= low] for d in frames]
    tracks = track_detections(tracker, frames)
    if args.out is None:  # a new run folder, as for video (--out names a file or a folder exactly)
        from yolokit.cli.detect import run_folder

        args.exist_ok = False
        run_folder(args)
    out = Path(args.out)
    if out.suffix.lower() != ".txt":  # a directory: name the file after the sequence
        out = out / f"{_sequence_name(Path(args.dets))}.txt"
    write_mot(out, tracks)
    ids = {int(i) for t in tracks for i in t[:, 6]}
    print(f"{args.dets}: {n} frames, {len(ids)} tracks ({args.tracker})")
    print(f"wrote {out}")
    if args.gt:
        from yolokit.track.metrics import format_summary, score_files

        print(format_summary(score_files({_sequence_name(Path(args.dets)): (args.gt, out)})))
    return 0


def _sequence_name(det_path: Path) -> str:
    """MOTChallenge layout <seq>/det/det.txt -> <seq>; otherwise the file's stem."""
    if det_path.parent.name == "det" and det_path.parent.parent.name:
        return det_path.parent.parent.name
    return det_path.stem


def _run_video(args) -> int:
    import numpy as np

    from yolokit.apps.draw import TrackDrawer
    from yolokit.apps.outputs import written_lines
    from yolokit.apps.sources import open_source
    from yolokit.cli.detect import run_folder, run_sources
    from yolokit.track.mot import write_mot

    hog = Path(args.model).suffix.lower() == ".npz"
    if args.conf is None:
        args.conf = VIDEO_CONF
    s = _settings(args, hog)  # the detector's flags, each bad value one line, before anything is opened
    tracker = build_tracker(args, low_conf=s.conf)
    sources = [open_source(src) for src in args.source]  # fail on a bad SOURCE before loading the model
    predictor = _hog_predictor(args, s) if hog else _yolo_predictor(args, s)
    names = predictor.class_names
    out = run_folder(args)  # one run folder for all the sources
    written: list[Path] = []
    status = 0
    for source in sources:
        tracker.reset()
        per_frame: dict[int, object] = {}

        def stage(frame, dets):
            tracks = tracker.update(dets)
            per_frame[frame.index] = tracks
            return tracks

        t0 = time.perf_counter()
        status = run_sources([source], predictor, args, batch=s.batch, written=written, stage=stage,
                             draw=TrackDrawer(names))
        wall = time.perf_counter() - t0
        if per_frame:
            n = max(per_frame) + 1  # MOT frames are 1-based: frame.index 0 -> 1
            empty = np.empty((0, 7))
            written.append(write_mot(out / f"{source.name}.txt", [per_frame.get(i, empty) for i in range(n)]))
        print(track_summary(source.name, per_frame, wall, args.tracker))
        if status:
            break
    print("\n".join(written_lines(written)))
    return status


def track_summary(name: str, per_frame: dict, seconds: float, tracker: str) -> str:
    """One line per video: ``NAME: 37 tracks over 300 frames (2.4 per frame), 18.5 FPS (bytetrack)``."""
    rows = [t for t in per_frame.values() if len(t)]
    ids = {int(i) for t in rows for i in t[:, 6]}
    frames = len(per_frame)
    shown = sum(len(t) for t in rows)
    fps = frames / seconds if seconds > 0 else 0.0
    return (f"{name}: {len(ids)} tracks over {frames} frames ({shown / max(frames, 1):.1f} per frame), "
            f"{fps:.1f} FPS end-to-end ({tracker})")


def _settings(args, hog: bool):
    """Detect's validated :class:`~yolokit.settings.PredictSettings` (a HOG model: CPU, --imgsz the longer side)."""
    from yolokit.cli.detect import settings

    s = settings(args)
    if not hog:
        args.device = s.device
    return s


def _yolo_predictor(args, s):
    from yolokit.cli.detect import load_model, parse_classes
    from yolokit.models.predict import Predictor

    model = load_model(args)
    return Predictor(model, s.imgsz, s.conf, s.iou, s.max_det, device=s.device, bgr=True,  # OpenCV frames: BGR
                     classes=parse_classes(args.classes, getattr(model, "class_names", None)))


def _hog_predictor(args, s):
    from yolokit.cli.detect import hog_predictor

    return hog_predictor(args, s)
