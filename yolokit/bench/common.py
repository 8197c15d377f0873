"""Shared helpers for ``yolokit bench``: timing and writing a section of BENCHMARKS.md."""

from __future__ import annotations

import platform
import re
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

from yolokit.report import markdown_table  # noqa: F401  (re-exported for the benches)


#: ``../shared/data`` beside the checkout: the real models, datasets and videos the benches run on.
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


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


def machine_line() -> str:
    """One line naming the hardware and library versions a figure was measured with."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {torch.get_num_threads()} torch threads, {dev}; "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def command_line() -> str:
    """The command that is running, as a user would type it."""
    return "yolokit " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def write_section(path: str | Path, name: str, body: str) -> None:
    """Replace (or append) the block between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``.

    ``body`` is markdown; the command and machine line are added so every figure is reproducible.
    """
    path = Path(path)
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = (f"{start}\n{body.rstrip()}\n\nCommand: `{command_line()}`  \n"
             f"Machine: {machine_line()}  \nDate: {time.strftime('%Y-%m-%d')}\n{end}")
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def publish(args, name: str, body: str) -> None:
    """Print a benchmark's result and, with ``--write FILE``, replace its section ``name`` in that file."""
    print(body)
    if getattr(args, "write", None):
        write_section(args.write, name, body)
        print(f"updated section '{name}' of {args.write}")
