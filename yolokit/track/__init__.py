"""Multi-object tracking on top of any yolokit detector (SORT, ByteTrack), MOTChallenge I/O, scoring (drawing
tracks on frames: :class:`yolokit.apps.draw.TrackDrawer`).

* :mod:`yolokit.track.trackers` -- :class:`Sort`, :class:`ByteTrack`: ``update(dets [K,6]) -> tracks [M,7]``
* :mod:`yolokit.track.kalman` -- batched constant-velocity Kalman filters over boxes
* :mod:`yolokit.track.assign` -- IoU matrix and linear assignment (scipy)
* :mod:`yolokit.track.mot` -- MOTChallenge txt files (public-detections protocol, results)
* :mod:`yolokit.track.metrics` -- MOTA/IDF1/ID switches via py-motmetrics (``pip install yolokit[track]``)
"""

from yolokit.track.trackers import ByteTrack, Sort, make_tracker

__all__ = ["ByteTrack", "Sort", "make_tracker"]
