"""The detection pipeline: decode -> preprocess -> infer -> postprocess -> draw/encode, overlapped.

Three threads, so that everything but the forward pass hides behind it:

* a reader thread decodes and letterboxes frames into a bounded queue (bounded so a fast decoder
  cannot fill memory while a slow model falls behind);
* the calling thread batches the frames and runs the model, nothing else;
* a writer thread runs the NMS, maps boxes back to the frame, draws and encodes.

OpenCV and torch release the GIL in their heavy calls, so the threads really overlap. Ctrl-C stops
the reader, lets the writer finish the frames it already has and closes the video file, so the
output is playable. Each stage's time is summed in :class:`StageTimes`.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from yolokit.apps.sources import Frame, ImageSource, VideoSource
from yolokit.errors import DataError
from yolokit.models.predict import concat_batches

STAGES = ("decode", "preprocess", "infer", "postprocess", "draw/encode")
_END = object()


@dataclass
class StageTimes:
    """Seconds spent per stage (summed over frames, whichever thread ran it) and the wall time."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    frames: int = 0
    wall: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def per_frame_ms(self) -> dict[str, float]:
        n = max(self.frames, 1)
        return {k: 1000.0 * v / n for k, v in self.seconds.items()}

    @property
    def fps(self) -> float:
        return self.frames / self.wall if self.wall > 0 else 0.0

    def summary(self) -> str:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.per_frame_ms().items())
        return f"{self.frames} frames in {self.wall:.2f} s = {self.fps:.1f} FPS end-to-end; ms/frame: {stages}"


class ThreadedReader:
    """Iterate a source's frames, decoded ahead by a background thread into a bounded queue.

    ``prepare(frame)``, when given, also runs in that thread and its result is what is queued."""

    def __init__(self, source: Iterable[Frame], maxsize: int = 16, timings: StageTimes | None = None,
                 prepare: Callable[[Frame], object] | None = None):
        self.source = source
        self.prepare = prepare
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.stop_event = threading.Event()
        self.timings = timings
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="yolokit-reader", daemon=True)

    def _put(self, item) -> bool:
        while not self.stop_event.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for frame in self.source:
                if self.timings is not None:
                    self.timings.add("decode", frame.decode_s)
                if not self._put(frame if self.prepare is None else self.prepare(frame)):
                    return
        except BaseException as exc:  # handed to the consumer, re-raised there
            self.error = exc
        finally:
            self._put(_END)

    def __iter__(self):
        self.thread.start()
        while True:
            item = self.queue.get()
            if item is _END:
                break
            yield item
        self.thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self.stop_event.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        if self.thread.is_alive():
            self.thread.join(timeout=5)


def batched(frames: Iterable[Frame], size: int):
    """Group frames into lists of ``size`` (the last may be shorter)."""
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --------------------------------------------------------------------------------------- sinks
class VideoSink:
    """Annotated video at the input's fps and frame size: H.264 in .mp4 when PyAV is installed (browsers play it),
    else OpenCV's mp4v with a one-line note (:mod:`yolokit.apps.video`); .avi gets MJPG."""

    def __init__(self, path: str | Path, fps: float, draw: Callable[[np.ndarray, object], np.ndarray]):
        self.path = Path(path)
        self.fps = fps
        self.draw = draw
        self.writer = None
        self.written = 0

    def __call__(self, frame: Frame, dets) -> None:
        from yolokit.apps.video import open_video_writer

        if self.writer is None:
            h, w = frame.image.shape[:2]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # encoded under a hidden temporary name, renamed at close: a run killed (SIGTERM) or a disk that
            # fills mid-way never leaves an unplayable file under the final name
            self.writer = open_video_writer(self.partial, self.fps, (w, h))
        self.writer.write(self.draw(frame.image, dets))
        self.written += 1

    @property
    def partial(self) -> Path:
        return self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()  # flushes the encoder and writes the index: the file is playable after this
            self.writer = None
            import os

            os.replace(self.partial, self.path)


class ImageSink:
    """One annotated image per input image, same name, under ``directory``."""

    def __init__(self, directory: str | Path, draw: Callable[[np.ndarray, object], np.ndarray]):
        self.directory = Path(directory)
        self.draw = draw
        self.written = 0
        self.paths: list[Path] = []

    def __call__(self, frame: Frame, dets) -> None:
        import cv2

        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / (frame.out_name or frame.name)  # distinct per input (sources.distinct_outputs)
        if not cv2.imwrite(str(path), self.draw(frame.image, dets)):
            raise DataError(f"{path}: OpenCV could not write it")
        self.written += 1
        self.paths.append(path)

    def close(self) -> None:
        pass


class Worker:
    """Run ``fn(*item)`` for every submitted item in one background thread, in order, fed by a
    bounded queue; an exception stops the work and is re-raised by the next submit() or close()."""

    def __init__(self, fn: Callable[..., None], maxsize: int = 16):
        self.fn = fn
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="yolokit-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _END:
                break
            if self.error is not None:
                continue  # keep draining so submit() never blocks forever
            try:
                self.fn(*item)
            except BaseException as exc:
                self.error = exc

    def submit(self, *item) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def close(self) -> None:
        self.queue.put(_END)
        self.thread.join()
        if self.error is not None:
            raise self.error


class CocoResults:
    """Detections as a COCO results list: ``bbox`` = [x, y, w, h] pixels; ``image_id`` = the frame
    number for video, and for images the file's stem (an int when numeric, as COCO's
    ``000000000009.jpg`` -> 9), which is what yolokit datasets use; ``category_id`` in
    ``yolokit eval``'s convention (COCO's 91-id space for the 80 COCO classes, else the class index),
    so ``yolokit eval --pred`` reads the file back."""

    def __init__(self, class_names: list[str] | None = None, video: bool = False):
        from yolokit.eval.inputs import default_category_ids

        self.class_names = class_names
        self.category_ids = default_category_ids(class_names) if class_names else None
        self.video = video
        self.results: list[dict] = []

    def add(self, frame: Frame, dets) -> None:
        from yolokit.eval.coco import detections_to_coco
        from yolokit.eval.voc import Detections

        stem = Path(frame.name).stem
        image_id = frame.index if self.video else int(stem) if stem.isdigit() else stem
        rows = np.asarray(dets, dtype=np.float64)
        rows = rows.reshape(-1, 7 if rows.ndim == 2 and rows.shape[1] == 7 else 6)  # 7: tracks, id last
        labels = rows[:, 5].astype(np.int64)
        ids = list(self.category_ids or [])
        ids += range(len(ids), int(labels.max(initial=-1)) + 1)  # a class without a known id keeps its index
        det = Detections(rows[:, :4], rows[:, 4], labels, np.zeros(len(rows), np.int64))
        for r, row in zip(rows, detections_to_coco(det, [image_id], ids, box_decimals=2, score_decimals=5)):
            c = int(r[5])
            if self.class_names is not None and 0 <= c < len(self.class_names):
                row["category_name"] = self.class_names[c]
            if not self.video:
                row["file_name"] = frame.name
            if len(r) == 7:
                row["track_id"] = int(r[6])
            self.results.append(row)

    def write(self, path: str | Path) -> Path:
        from yolokit.eval.coco import save_coco_results

        return save_coco_results(path, self.results)


# ------------------------------------------------------------------------------------ driver
@dataclass
class RunResult:
    timings: StageTimes
    frames: int
    failed: int
    outputs: list[Path]  # every file written, in order
    interrupted: bool = False


def run(source: ImageSource | VideoSource, predictor, out_dir: str | Path | None = None, *,
        batch: int = 1, save: bool = True, save_json: bool = False, show: bool = False,
        max_frames: int | None = None, progress: bool = True, class_names: list[str] | None = None,
        queue_size: int = 16, stage: Callable[[Frame, np.ndarray], np.ndarray] | None = None,
        draw: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> RunResult:
    """Detect on every frame of ``source`` and write annotated output under ``out_dir``.

    Video sources give ``out_dir/<name>.mp4`` (same fps and size as the input), image sources one
    annotated image per input (unless ``save`` is False); ``save_json`` adds ``out_dir/<name>.json``
    (COCO results). With ``out_dir=None`` nothing is drawn or written (pure throughput). Ctrl-C stops cleanly: the
    frames done so far are written and the video is closed (playable), ``interrupted`` is set.

    ``stage(frame, dets) -> rows``, when given, runs on each frame's detections in frame order (writer
    thread) and its rows are what is drawn (by ``draw(image, rows)``, default boxes and labels) and saved:
    ``yolokit track`` passes its tracker here ([K, 6] -> [M, 7] with track ids).
    """
    names = class_names if class_names is not None else getattr(predictor, "class_names", None)
    timings = StageTimes()
    out = _Outputs(source, Path(out_dir) if out_dir is not None else None, names, save, save_json, show, draw)
    frames_in = itertools.islice(source, max_frames) if max_frames is not None else source
    reader = ThreadedReader(frames_in, maxsize=queue_size, timings=timings,
                            prepare=_timed_preprocess(predictor, timings))
    finish = _finisher(predictor, stage, out, timings)
    worker = Worker(finish, queue_size) if out.shower is None else None  # --show: windows on the main thread
    bar = _progress_bar(source, max_frames) if progress else None
    interrupted = False
    t_start = time.perf_counter()
    try:
        for items in batched(reader, batch):
            frames = [f for f, _ in items]
            b = items[0][1] if len(items) == 1 else concat_batches([b for _, b in items])
            t0 = time.perf_counter()
            pred = predictor.infer(b)
            timings.add("infer", time.perf_counter() - t0)
            (worker.submit if worker is not None else finish)(frames, pred, b)
            timings.frames += len(frames)
            if bar is not None:
                bar.update(len(frames))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        reader.stop()
        try:
            if worker is not None:
                worker.close()
        finally:
            out.close()
            timings.wall = time.perf_counter() - t_start
            if bar is not None:
                bar.close()
    failed = len(source.failed) if isinstance(source.failed, list) else source.failed
    return RunResult(timings, timings.frames, failed, out.paths(), interrupted)


class _Outputs:
    """Where a run's detections go: the annotated video or images (``sink``), a window (``shower``) and the
    COCO results (``results``); ``draw(image, rows)`` annotates (default: boxes and ``name score`` labels)."""

    def __init__(self, source, out_dir: Path | None, names, save: bool, save_json: bool, show: bool, draw):
        from yolokit.apps.draw import draw_detections

        if draw is None:
            def draw(image, dets):
                return draw_detections(image, dets, names)

        self.source, self.out_dir, self.draw = source, out_dir, draw
        self.sink = None
        if out_dir is not None and save:
            self.sink = (VideoSink(out_dir / f"{source.name}.mp4", source.fps, draw) if source.kind == "video"
                         else ImageSink(out_dir, draw))
        self.shower = _Shower(source.name, draw) if show else None
        self.results = CocoResults(names, video=source.kind == "video") if save_json else None

    def emit(self, frame: Frame, dets) -> None:
        if self.results is not None:
            self.results.add(frame, dets)
        if self.sink is not None:
            self.sink(frame, dets)                      # draws in place, then encodes
        if self.shower is not None:
            self.shower.show(frame.image if self.sink is not None else self.draw(frame.image, dets))

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
        if self.shower is not None:
            self.shower.close()

    def paths(self) -> list[Path]:
        """The files written (after :meth:`close`): the video (if a frame arrived) or the images, then the JSON."""
        outputs: list[Path] = []
        if isinstance(self.sink, ImageSink):
            outputs.extend(self.sink.paths)
        elif self.sink is not None and self.sink.written:  # no frame arrived: no video file was opened
            outputs.append(self.sink.path)
        if self.results is not None and self.out_dir is not None:
            outputs.append(self.results.write(self.out_dir / f"{self.source.name}.json"))
        return outputs


def _timed_preprocess(predictor, timings: StageTimes):
    def prepare(frame: Frame):                      # reader thread
        t0 = time.perf_counter()
        b = predictor.preprocess([frame.image])
        timings.add("preprocess", time.perf_counter() - t0)
        return frame, b
    return prepare


def _finisher(predictor, stage, out: _Outputs, timings: StageTimes):
    """Post-processing, the optional ``stage`` and the outputs of one batch (writer thread; main with --show)."""
    def finish(frames: list[Frame], pred, b) -> None:
        t0 = time.perf_counter()
        dets = [d.cpu().numpy() for d in predictor.postprocess(pred, b)]
        if stage is not None:
            dets = [stage(f, d) for f, d in zip(frames, dets)]
        t1 = time.perf_counter()
        timings.add("postprocess", t1 - t0)
        for frame, d in zip(frames, dets):
            out.emit(frame, d)
        timings.add("draw/encode", time.perf_counter() - t1)
    return finish


def _progress_bar(source, max_frames: int | None):
    from tqdm import tqdm

    try:
        total = len(source)
    except TypeError:
        total = None
    if max_frames is not None:
        total = min(total, max_frames) if total is not None else max_frames
    return tqdm(total=total, unit="frame", desc=source.name, leave=False)


class _Shower:
    """``--show``: a window per source; needs a GUI build of OpenCV (opencv-python, not -headless)."""

    def __init__(self, name: str, draw):
        import cv2

        self.name = name
        self.draw = draw
        try:
            cv2.namedWindow(name, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            from yolokit.errors import ConfigError

            raise ConfigError("--show needs an OpenCV build with a GUI, and yolokit's opencv-python-headless has "
                              "none (installing opencv-python beside it breaks cv2: both provide it); drop --show "
                              "and open the written video or images instead "
                              f"({str(exc).strip().splitlines()[-1]})") from None

    def show(self, image: np.ndarray) -> None:
        import cv2

        cv2.imshow(self.name, image)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            raise KeyboardInterrupt

    def close(self) -> None:
        import cv2

        cv2.destroyWindow(self.name)
