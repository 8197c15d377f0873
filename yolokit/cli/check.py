"""Check a dataset: counts per class and split, and every problem with its file.

  yolokit check --data configs/data/coco128_yolo.yaml
  yolokit check --format voc --images ../shared/data/raccoon/images --annotations ../shared/data/raccoon/annotations
  yolokit check --data configs/data/raccoon.yaml --json

Problems: missing / corrupt / truncated images, labels without images, images without labels
(allowed: background), out-of-bounds boxes (clipped), zero-area boxes, unknown classes, malformed
XML/JSON/txt (file and line). Exit code 0 when nothing but background images was found, else 1.
"""

from __future__ import annotations

HELP = "count boxes per class/split and list every problem in a dataset (VOC, COCO, YOLO txt)"


def add_arguments(parser):
    from yolokit.cli import add_data_argument

    add_data_argument(parser, required=False)
    parser.add_argument("--split", action="append", help="check only this split (repeatable; default: all)")
    parser.add_argument("--format", choices=("voc", "coco", "yolo"), help="format, when giving paths instead of a YAML")
    parser.add_argument("--images", help="image folder (with --format)")
    parser.add_argument("--annotations", help="VOC XML folder, COCO JSON file or YOLO labels folder (with --format)")
    parser.add_argument("--names", help="class names: a .names/.txt/.yaml file or a comma list (with --format)")
    parser.add_argument("--no-decode", action="store_true", help="read image headers only (faster, misses corrupt pixels)")
    parser.add_argument("--json", action="store_true", help="print {images, boxes, per_class, problems} as JSON")
    parser.add_argument("--download", action="store_true", help="fetch --data first if its files are missing")


def run(args) -> int:
    import json

    from yolokit.data.check import NOTICES, as_json, check_dataset, format_text, spec_from_paths
    from yolokit.errors import ConfigError

    if args.data is not None:
        if args.format or args.images or args.annotations:
            raise ConfigError("give either --data YAML or --format/--images/--annotations, not both")
        spec = args.data
        if args.download:
            from yolokit.data.download import ensure

            ensure(spec)
    else:
        if not (args.format and args.images):
            raise ConfigError("give --data YAML, or --format and --images (and --annotations)")
        names = args.names
        if names is not None and "," in names:
            names = [n.strip() for n in names.split(",")]
        elif names is not None:
            from pathlib import Path

            names = str(Path(names).resolve())
        spec = spec_from_paths(args.format, args.images, args.annotations, names)
    result = check_dataset(spec, args.split, decode=not args.no_decode)
    if args.json:
        print(json.dumps(as_json(result), indent=1))
    else:
        print(format_text(result))
    return 0 if all(p.kind in NOTICES for p in result["problems"]) else 1
