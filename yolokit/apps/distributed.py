"""``detect`` over many processes under ``torchrun``: each rank runs the ordinary pipeline on its contiguous
block of the images, and rank 0 writes the one merged ``--save-json`` file.

    torchrun --nproc_per_node=2 -m yolokit detect photos/ --model best.pt --save-json --out runs/detect

Why contiguous blocks (rank r gets images ``[r * n // world, (r + 1) * n // world)``): the merged file is the
ranks' results concatenated in rank order -- the same rows in the same order as one process writes. Annotated
images go straight to ``--out`` from every rank (their names differ). A video, webcam or stream has no images
to deal out: rank 0 runs it, the other ranks skip it. Evaluation (``eval --model``) is
:mod:`yolokit.eval.distributed`'s.
"""

from __future__ import annotations

import json
from pathlib import Path


def join(device="cpu") -> tuple[int, int]:
    """Join the process group torchrun describes (no-op outside torchrun); ``(rank, world)``. Call it before
    loading the model, so that a CUDA process takes the GPU of its ``LOCAL_RANK``."""
    from yolokit.engine.distributed import init_from_env

    info = init_from_env(device)
    return info.rank, info.world


def block(n: int, rank: int, world: int) -> range:
    """Rank ``rank``'s contiguous share of ``n`` items (``n // world`` or one more)."""
    return range(rank * n // world, (rank + 1) * n // world)


class RankPart:
    """This process's share of one source (all of it in one process) and the merge of its ``--save-json``."""

    def __init__(self, source, rank: int = 0, world: int = 1):
        from yolokit.apps.sources import ImageSource

        self.name, self.rank, self.world = source.name, rank, world
        self.source = source
        if world > 1:
            if source.kind == "images":
                part = [source.paths[i] for i in block(len(source.paths), rank, world)]
                self.source = ImageSource(part, f"{source.name}.part{rank}")  # its own JSON until the merge
            elif rank != 0:
                self.source = None  # a video / stream: rank 0's alone

    def merge(self, outputs: list[Path]) -> list[Path]:
        """Every rank calls this after its pipeline (image sources under torchrun): the part JSONs become
        ``OUT/<name>.json`` on rank 0, in image order; returns this rank's outputs with the part replaced
        (rank 0: the merged file; the others: nothing for the JSON)."""
        if self.world == 1 or self.source is None or self.source.kind != "images":
            return outputs
        import torch.distributed as dist

        from yolokit.fileio import write_text_atomic

        part = next((p for p in outputs if p.name == f"{self.source.name}.json"), None)
        if part is None:  # no --save-json (the same on every rank)
            return outputs
        rows = json.loads(part.read_text())
        gathered = [None] * self.world if self.rank == 0 else None
        dist.gather_object(rows, gathered, dst=0)
        part.unlink()
        rest = [p for p in outputs if p != part]
        if self.rank != 0:
            return rest
        merged = part.with_name(f"{self.name}.json")
        write_text_atomic(merged, json.dumps([r for rank_rows in gathered for r in rank_rows]))
        return rest + [merged]
