"""Convert a dataset between COCO JSON, Pascal VOC XML and YOLO txt (images are never copied).

  yolokit convert configs/data/voc2012_rodm.yaml --to coco --out runs/voc_as_coco
  yolokit convert --format coco --images DIR --annotations instances.json --to yolo --out runs/as_yolo

Writes the annotations plus OUT/data.yaml, a dataset description of the result (its images point
back at the original folders). Boxes a format cannot hold (YOLO txt: iscrowd) are counted and reported.
"""

from __future__ import annotations

HELP = "convert a dataset between COCO JSON, Pascal VOC XML and YOLO txt"


def add_arguments(parser):
    parser.add_argument("data", nargs="?", help="dataset description YAML (configs/data/*.yaml)")
    parser.add_argument("--to", required=True, choices=("coco", "voc", "yolo"), help="target format")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--split", action="append", help="convert only this split (repeatable; default: all)")
    parser.add_argument("--format", choices=("voc", "coco", "yolo"), help="source format, when giving paths")
    parser.add_argument("--images", help="image folder (with --format)")
    parser.add_argument("--annotations", help="VOC XML folder, COCO JSON or YOLO labels folder (with --format)")
    parser.add_argument("--names", help="class names: a file or a comma list (with --format)")


def run(args) -> int:
    from pathlib import Path

    from yolokit.data.check import spec_from_paths
    from yolokit.data.convert import convert
    from yolokit.errors import ConfigError

    if args.data is None:
        if not (args.format and args.images):
            raise ConfigError("give a dataset YAML, or --format and --images (and --annotations)")
        names = args.names
        if names is not None:
            names = [n.strip() for n in names.split(",")] if "," in names else str(Path(names).resolve())
        spec = spec_from_paths(args.format, args.images, args.annotations, names)
    else:
        spec = args.data
    result = convert(spec, args.to, args.out, args.split)
    for split, s in result["splits"].items():
        extra = []
        if s["crowd_dropped"]:
            extra.append(f"{s['crowd_dropped']} iscrowd boxes left out (YOLO txt cannot mark them)")
        if s["difficult_lost"]:
            extra.append(f"{s['difficult_lost']} difficult flags lost (YOLO txt cannot hold them)")
        print(f"{split}: {s['images']} images, {s['written']} of {s['boxes']} boxes written"
              + ("; " + "; ".join(extra) if extra else ""))
    if len(result["problems"]):
        print(f"source problems: {len(result['problems'])} (run `yolokit check` for the list)")
    print(f"wrote {result['yaml']}")
    return 0
