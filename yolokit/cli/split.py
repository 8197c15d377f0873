"""Split a dataset into train/val(/test) lists, stratified by class and reproducible from a seed.

  yolokit split --data configs/data/raccoon.yaml --ratios 0.7 0.2 0.1 --seed 0 --out runs/raccoon_split

Writes OUT/train.txt, val.txt, test.txt (image file names) and OUT/data.yaml (the dataset with these
splits). Images are never moved or copied. All splits of --data are pooled unless --split is given.
"""

from __future__ import annotations

HELP = "stratified, seeded train/val/test lists (70-20-10 by default); never moves images"


def add_arguments(parser):
    from yolokit.cli import add_data_argument

    add_data_argument(parser)
    parser.add_argument("--ratios", nargs="+", type=float, default=[0.7, 0.2, 0.1], help="2 or 3 fractions summing to 1")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffle (the same seed, the same lists)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/split/<data name>_seed<S>)")
    parser.add_argument("--split", action="append", help="pool only these splits of --data (repeatable; default: all)")


def run(args) -> int:
    from pathlib import Path

    from yolokit.data.split import split_dataset

    out = args.out or Path("runs") / "split" / f"{Path(args.data).stem}_seed{args.seed}"
    result = split_dataset(args.data, args.ratios, args.seed, out, args.split)
    parts = result["parts"]
    names = list(next(iter(parts.values()))["per_class"])
    width = max([len(n) for n in names] + [6])
    print("images per class".ljust(width) + "".join(f"{p:>8}" for p in parts))
    print("images".ljust(width) + "".join(f"{v['images']:>8}" for v in parts.values()))
    for n in names:
        print(n.ljust(width) + "".join(f"{v['per_class'][n]:>8}" for v in parts.values()))
    print(f"wrote {', '.join(str(v['list']) for v in result['parts'].values())} and {result['yaml']}")
    if len(result.get("problems", ())):
        import sys

        print(f"{args.data}: {result['problems'].summary()} (`yolokit check` lists them)", file=sys.stderr)
    return 0
