"""Convert a dataset between COCO JSON, Pascal VOC XML and YOLO txt (images are never copied).

  yolokit convert --data configs/data/voc2012_rodm.yaml --to coco --out runs/voc_as_coco
  yolokit convert --format coco --images DIR --annotations instances.json --to yolo --out runs/as_yolo
  yolokit convert configs/data/coco.yaml --to shards --shard-size 1000 --out /data/coco_shards

Writes the annotations plus OUT/data.yaml, a dataset description of the result (its images point
back at the original folders). Boxes a format cannot hold (YOLO txt: iscrowd) are counted and reported.
--to shards writes OUT/<split>/<split>-NNNNNN.tar (image bytes + a JSON of boxes per sample, the WebDataset
layout) and OUT/<split>/shards.json; yolokit.data.stream.ShardStream streams them across ranks and workers.
"""

from __future__ import annotations

HELP = "convert a dataset between COCO JSON, Pascal VOC XML and YOLO txt"


def add_arguments(parser):
    from yolokit.cli import add_data_argument

    add_data_argument(parser, required=False)
    parser.add_argument("--to", required=True, choices=("coco", "voc", "yolo", "shards"),
                        help="target format (shards: WebDataset-style tar shards for streaming, yolokit/data/shards.py)")
    parser.add_argument("--shard-size", type=int, default=1000, help="with --to shards: samples per shard")
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
            raise ConfigError("give --data YAML, or --format and --images (and --annotations)")
        names = args.names
        if names is not None:
            names = [n.strip() for n in names.split(",")] if "," in names else str(Path(names).resolve())
        spec = spec_from_paths(args.format, args.images, args.annotations, names)
    else:
        spec = args.data
    if args.to == "shards":
        from yolokit.data.shards import write_shards

        result = write_shards(spec, args.out, args.split, args.shard_size)
        for split, s in result["splits"].items():
            print(f"{split}: {s['samples']} samples in {s['shards']} shards"
                  + (f"; {s['skipped']} unreadable images left out (listed in the manifest)" if s["skipped"] else "")
                  + f" -> {s['manifest']}")
        print(f"wrote {result['yaml']} (train on it: yolokit train --data {result['yaml']})")
        return 0
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
        from yolokit.data.sample import ProblemReport

        report = ProblemReport(list(result["problems"]))  # left out, never written; the first one is named
        print(f"source problems: {len(report)}: {report.summary()} (`yolokit check` lists them)")
    print(f"wrote {result['yaml']}")
    return 0
