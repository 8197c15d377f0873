"""Run folders for the commands that write results (``detect``, ``track``, ``eval --out``, ``hog detect``).

The rule is training's (:mod:`yolokit.engine.runs`): a run never writes into a folder that holds another run's
files. ``--out`` (or the command's default, ``runs/detect``) is used when it is absent or empty; otherwise the
next free name of its series: ``runs/detect2``, ``runs/detect3``, ... (``runs/v1`` -> ``runs/v1-2``).
``exist_ok`` writes into the folder itself. A folder is claimed by creating it (``mkdir`` fails when another
run created it first), so two runs started at the same moment still get two folders.

Every such command ends by listing the files it wrote (:func:`written_lines`).
"""

from __future__ import annotations

import os
from pathlib import Path

from yolokit.engine.runs import folder_series


def choose_run_folder(out: str | Path | None, default: str, exist_ok: bool = False) -> tuple[Path, str]:
    """``(folder, why)``: the folder this run writes to, created, and a few words on why that one."""
    base = Path(out if out is not None else default)
    if base.exists() and not base.is_dir():  # --out naming a file: say so, rather than write beside it
        from yolokit.errors import ConfigError

        raise ConfigError(f"--out {base}: an existing file, not a folder (give a folder for the results)")
    if exist_ok:
        base.mkdir(parents=True, exist_ok=True)
        return base, "--exist-ok: writing into it even if it holds files"
    for folder in folder_series(base):
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            if not folder.is_dir() or any(folder.iterdir()):
                continue
        why = "a new run" if folder == base else f"{base} holds another run's files, --exist-ok would write into it"
        return folder, why
    raise AssertionError("unreachable: the series is endless")


def written_lines(paths, limit: int = 20) -> list[str]:
    """``wrote N files:`` then one path per line (the first ``limit``, then how many more), in the order written;
    duplicates (a file rewritten) are listed once."""
    seen = list(dict.fromkeys(Path(p) for p in paths))
    if not seen:
        return ["wrote no files"]
    lines = [f"wrote {len(seen)} file{'s' if len(seen) != 1 else ''}:"]
    lines += [f"  {p}" for p in seen[:limit]]
    if len(seen) > limit:
        lines.append(f"  ... and {len(seen) - limit} more in {os.path.commonpath([str(p) for p in seen])}")
    return lines
