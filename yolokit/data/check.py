"""``yolokit check``: counts per class and split, and every problem with its file."""

from __future__ import annotations

from pathlib import Path

from yolokit.data.sample import Problem, ProblemReport
from yolokit.errors import DataError

# Problem kinds that do not remove anything from the data.
NOTICES = ("background",)


def spec_from_paths(fmt: str, images: str, annotations: str | None, names=None) -> dict:
    """A one-split ("all") description from command-line paths (relative to the working directory)."""
    split = {"images": str(Path(images).resolve())}
    if annotations is not None:
        split["labels" if fmt == "yolo" else "annotations"] = str(Path(annotations).resolve())
    spec = {"format": fmt, "root": ".", "splits": {"all": split}}
    if names is not None:
        spec["names"] = names
    return spec


def check_dataset(spec, splits: list[str] | None = None, decode: bool = True) -> dict:
    """Read every split of ``spec`` (or ``splits``), decode every image when ``decode`` and return::

        {"splits": {name: {"images", "boxes", "per_class"}}, "class_names": [...],
         "images": n, "boxes": n, "per_class": {...}, "problems": [Problem, ...]}

    Splits that cannot be read at all (a malformed JSON, a missing folder) become one problem each.
    """
    from yolokit.data.config import read_spec
    from yolokit.data.load import load_dataset
    from yolokit.data.download import DatasetMissing
    from yolokit.errors import ConfigError

    data, root, source = read_spec(spec)
    names = splits or list(data["splits"])
    out = {"splits": {}, "class_names": [], "images": 0, "boxes": 0, "per_class": {}, "problems": []}
    for split in names:
        try:
            ds = load_dataset(spec, split, decode=decode)  # the verdict training gets
        except DatasetMissing:
            raise  # not a problem of the data: its files are absent (the message says how to get them)
        except (DataError, ConfigError) as exc:
            ann = data["splits"].get(split, {})
            ann = ann.get("annotations") if isinstance(ann, dict) else None
            file = str(root / ann) if ann else source
            msg = str(exc)
            for prefix in (file, str(Path(file).resolve())):
                if msg.startswith(prefix):
                    msg = msg[len(prefix):].lstrip(":").strip()
            out["problems"].append(Problem(file, f"split '{split}' cannot be read: {msg}", "malformed"))
            continue
        report = ProblemReport(list(ds.problems))
        records = ds.records
        per_class = {n: 0 for n in ds.class_names}
        for r in records:
            for v in r.labels:
                per_class[ds.class_names[int(v)]] += 1
        nboxes = sum(len(r.boxes) for r in records)
        out["splits"][split] = {"images": len(records), "boxes": nboxes, "per_class": per_class,
                                "problems": report.summary()}
        out["images"] += len(records)
        out["boxes"] += nboxes
        for n, c in per_class.items():
            out["per_class"][n] = out["per_class"].get(n, 0) + c
        if len(ds.class_names) > len(out["class_names"]):
            out["class_names"] = list(ds.class_names)
        out["problems"].extend(report.problems)
    return out


def as_json(result: dict) -> dict:
    """The ``--json`` form: exactly images, boxes, per_class, problems [{file, problem}]."""
    return {"images": result["images"], "boxes": result["boxes"], "per_class": result["per_class"],
            "problems": [p.as_dict() for p in result["problems"]]}


def format_text(result: dict) -> str:
    """Counts per class and split as a table, then every problem (one line each, file first)."""
    splits = list(result["splits"])
    header = ["class"] + splits + (["total"] if len(splits) > 1 else [])
    rows = [["images"] + [result["splits"][s]["images"] for s in splits] + ([result["images"]] if len(splits) > 1 else []),
            ["boxes"] + [result["splits"][s]["boxes"] for s in splits] + ([result["boxes"]] if len(splits) > 1 else [])]
    for n in result["per_class"]:
        rows.append([n] + [result["splits"][s]["per_class"].get(n, 0) for s in splits]
                    + ([result["per_class"][n]] if len(splits) > 1 else []))
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    probs = result["problems"]
    lines.append("")
    if not probs:
        lines.append("problems: none")
    else:
        from collections import Counter

        c = Counter(p.kind for p in probs)
        lines.append(f"problems: {len(probs)} (" + ", ".join(f"{n} {k}" for k, n in sorted(c.items())) + ")")
        lines += [f"  {p.file}: {p.problem}" for p in probs]
    return "\n".join(lines)
