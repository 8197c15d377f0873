"""Shared helpers for ``yolokit bench``: timing, the checkout's paths, and printing/writing a result.

The benchmarks live in the source checkout (``benchmarks/``), outside the ``yolokit`` package: they read
``../shared/data`` and the checkout's ``configs/``, which an installed wheel does not have."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

from yolokit.report import write_section

#: The source checkout this folder sits in (its ``configs/`` are the benches' presets).
ROOT = Path(__file__).resolve().parents[1]
#: ``../shared/data`` beside the checkout: the real models, datasets and videos the benches run on.
SHARED_DATA = ROOT.parent / "shared" / "data"


def timeit(fn: Callable[[], object], warmup: int = 2, repeat: int = 10) -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 1,
                sync: Callable[[], object] = lambda: None) -> dict[str, list[float]]:
    """Wall times (ms) of each contender over ``repeat`` rounds, after ``warmup`` untimed ones.

    Every round runs every contender once, so a burst of load from another process lands on all of them; the
    order rotates from round to round, so no contender always runs right after the same one (whose threads,
    caches and memory it would otherwise inherit). ``sync`` waits for the device (``torch.cuda.synchronize``)."""
    names = list(fns)
    times = {name: [] for name in names}
    for round_ in range(warmup + repeat):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            t0 = time.perf_counter()
            fns[name]()
            sync()
            if round_ >= warmup:
                times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def paired_ratio(times: dict[str, list[float]], name: str, peer: str) -> float:
    """Median over rounds of ``name``'s time / ``peer``'s time in the same round."""
    return statistics.median(a / b for a, b in zip(times[name], times[peer]))


def publish(args, name: str, body: str) -> None:
    """Print a benchmark's result and, with ``--write FILE``, replace its section ``name`` in that file."""
    print(body)
    if getattr(args, "write", None):
        write_section(args.write, name, body)
        print(f"updated section '{name}' of {args.write}")
