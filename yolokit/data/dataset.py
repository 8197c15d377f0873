"""The dataset object returned by :func:`yolokit.data.load_dataset`."""

from __future__ import annotations

from collections import Counter

import numpy as np

from yolokit.data.images import read_image
from yolokit.data.sample import ProblemReport, Record, Sample


class DetectionDataset:
    """A list of :class:`Record` plus class names; ``dataset[i]`` decodes the image into a :class:`Sample`.

    Attributes: ``class_names``, ``records``, ``problems`` (a :class:`ProblemReport`), ``format``,
    ``split``, ``source``; for COCO also ``coco`` (the pycocotools object), ``index_to_cat_id`` (list) and
    ``cat_id_to_index`` (dict) -- both directions of the category mapping (None for VOC/YOLO txt).
    A torch ``DataLoader`` can use it directly (it is picklable; no open handles).
    """

    def __init__(self, records: list[Record], class_names: list[str], problems: ProblemReport, *,
                 fmt: str, split: str, source: str, coco=None, index_to_cat_id=None):
        self.records = records
        self.class_names = list(class_names)
        self.problems = problems
        self.format = fmt
        self.split = split
        self.source = source
        self.coco = coco
        self.index_to_cat_id = list(index_to_cat_id) if index_to_cat_id is not None else None
        self.cat_id_to_index = ({c: i for i, c in enumerate(self.index_to_cat_id)}
                                if self.index_to_cat_id is not None else None)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Sample:
        r = self.records[i]
        image = read_image(r.path)  # DataError names the file if it went bad since indexing
        h, w = image.shape[:2]
        if (h, w) != tuple(r.size):
            from yolokit.errors import DataError

            raise DataError(f"{r.path}: decoded size {w}x{h} differs from the indexed {r.size[1]}x{r.size[0]}")
        return Sample(image=image, boxes=r.boxes.astype(np.float32), labels=r.labels.copy(), image_id=r.image_id,
                      path=r.path, orig_size=(h, w), difficult=r.difficult.copy(), iscrowd=r.iscrowd.copy())

    def __getstate__(self):
        state = dict(self.__dict__)
        state["coco"] = None  # the pycocotools index is large and only needed for evaluation
        return state

    @property
    def num_boxes(self) -> int:
        return sum(len(r.boxes) for r in self.records)

    def per_class(self) -> dict[str, int]:
        """Box counts per class name (every name listed, zeros included)."""
        c = Counter(int(v) for r in self.records for v in r.labels)
        return {n: c.get(i, 0) for i, n in enumerate(self.class_names)}

    def __repr__(self) -> str:
        return (f"DetectionDataset({self.format}, split={self.split!r}, images={len(self)}, "
                f"boxes={self.num_boxes}, classes={len(self.class_names)}, problems: {self.problems.summary()})")
