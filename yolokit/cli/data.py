"""Get the datasets of the shipped presets (or of any data YAML with a ``download:`` list).

  yolokit data list                          # names, sizes, where each one goes, what is there already
  yolokit data get raccoon                   # -> $YOLOKIT_DATA_ROOT/raccoon (default: datasets/ in the clone)
  yolokit data get voc --dir /big/disk --yes # VOC 07+12 (2.9 GB) under /big/disk; set YOLOKIT_DATA_ROOT=/big/disk
  yolokit data get my_data.yaml              # any YAML with download: [{url, sha256}]

Progress bar, resume of a broken download (HTTP Range), checksums, extraction into the YAML's root.
A second call checks the completion markers and does nothing. Over 1 GB needs --yes (or a "y" at the
prompt). Descriptors of every dataset (URLs, mirrors, sizes, checksums, licence, layout): data/README.md.
"""

from __future__ import annotations

HELP = "download, verify and extract a dataset (voc, coco, coco128, raccoon, ...) into its root"


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    g = sub.add_parser("get", help="download + verify + extract (idempotent)")
    g.add_argument("target", metavar="NAME|YAML", help="a shipped name (yolokit data list) or a data YAML")
    g.add_argument("--dir", help="data folder standing for $YOLOKIT_DATA_ROOT (default: that variable, else "
                                 "datasets/ in the clone)")
    g.add_argument("--yes", action="store_true", help="do not ask before downloads over 1 GB")
    g.add_argument("--mirror", help="base URL tried first: MIRROR/<archive file> (also $YOLOKIT_DATA_MIRROR)")
    g.add_argument("--keep-archives", action="store_true", help="keep the archives after extraction")
    g.add_argument("--force", action="store_true", help="fetch even when the files are there but were not "
                                                        "fetched by yolokit")
    sub.add_parser("list", help="the datasets yolokit can get, their size and state")


def run(args) -> int:
    import sys

    from yolokit.data.catalog import DATA_ROOT_ENV
    from yolokit.data.download import get

    if args.action == "list":
        list_datasets()
        return 0

    def confirm(question):
        if not sys.stdin.isatty():
            return False
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    result = get(args.target, args.dir, yes=args.yes, confirm=confirm, mirror=args.mirror,
                 keep_archives=args.keep_archives, force=args.force)
    if args.dir is not None:
        print(f"the presets find it with: export {DATA_ROOT_ENV}={args.dir}")
    print(f"ready: {result['root']}")
    return 0


def list_datasets() -> None:
    """One row per data root: names that fetch into the same folder (``coco`` and its descriptor
    ``coco2017``; ``voc`` = ``voc2007`` + ``voc2012``) share it, the size is the sum of the archives'
    published sizes ("unknown" where a publisher gives none, as GitHub's archives), the state is what the
    markers and files say."""
    from yolokit.data.catalog import available, read_target
    from yolokit.data.download import download_started, marker_ok
    from yolokit.report import human_size

    rows = {}
    for name in available():
        root, archives, path, raw = read_target(name)
        row = rows.setdefault(root, {"names": [], "archives": {}})
        row["names"].append(name)
        for a in archives:
            row["archives"].setdefault(a.file, a)
    table = [("NAME", "SIZE", "STATE", "ROOT")]
    for root, row in rows.items():
        archives = list(row["archives"].values())
        sizes = [a.size for a in archives]
        size = human_size(sum(sizes)) if all(sizes) else "unknown" if not any(sizes) else f">= {human_size(sum(s or 0 for s in sizes))}"
        done = sum(marker_ok(root, a) for a in archives)
        part = sum(p.stat().st_size for p in (root / ".yolokit" / "downloads").glob("*.part")) \
            if (root / ".yolokit" / "downloads").is_dir() else 0
        state = ("complete" if done == len(archives) else
                 f"partial ({done}/{len(archives)} archives" + (f", {human_size(part)} downloaded)" if part else ")")
                 if done or part or download_started(root) else
                 "present (not fetched by yolokit)" if root.is_dir() and any(root.iterdir()) else "absent")
        names = row["names"][0] + (f" ({', '.join(row['names'][1:])})" if row["names"][1:] else "")
        table.append((names, size, state, str(root)))
    widths = [max(len(r[k]) for r in table) for k in range(3)]
    for r in table:
        print(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
