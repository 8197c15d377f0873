"""Plain-text reporting shared by the commands that print tables (benchmarks, ``yolokit compare``)."""

from __future__ import annotations

import platform
import re
import shlex
import sys
import time
from pathlib import Path


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub markdown table; floats are printed with 3 significant decimals."""
    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def human_size(n: float) -> str:
    """A byte count for people: ``"512 B"``, ``"1.5 MB"`` (decimal units, as download sizes are given)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


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
