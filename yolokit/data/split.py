"""``yolokit split``: stratified, reproducible train/val/test lists (the lectures' 70-20-10 rule).

Images carry several classes, so plain per-class stratification is not defined; this is iterative
stratification (Sechidis, Tsoumakas & Vlahavas, 2011): take the class with the fewest images still
unassigned, give each of its images to a part that has none of that class yet (if the class has images
enough for every part), else to the part that most lacks that class (ties: the part that most lacks
images, then the seeded RNG), repeat. A repair pass then makes every class that has at least as
many images as there are parts appear in every part, moving an image only from a part that keeps the
class. Background images (no boxes) are dealt out to fill the parts' image quotas. Only lists are
written; images never move.
"""

from __future__ import annotations

import numpy as np

from yolokit.fileio import write_text_atomic

PART_NAMES = {2: ("train", "val"), 3: ("train", "val", "test")}


def stratified_split(label_sets: list[set[int]], ratios, seed: int = 0) -> list[int]:
    """Assign item ``i`` (with classes ``label_sets[i]``) to a part; returns the part index per item."""
    rng = np.random.default_rng(seed)
    ratios = np.asarray(ratios, float) / np.sum(ratios)
    n, k = len(label_sets), len(ratios)
    classes = sorted({c for s in label_sets for c in s})
    # desired[part, class] = ratio * number of images with that class
    per_class = {c: [i for i in range(n) if c in label_sets[i]] for c in classes}
    want = {c: ratios * len(per_class[c]) for c in classes}
    have = {c: np.zeros(k) for c in classes}
    want_n, have_n = ratios * n, np.zeros(k)
    part = [-1] * n
    left = {c: set(v) for c, v in per_class.items()}
    while any(left.values()):
        c = min((c for c in classes if left[c]), key=lambda c: (len(left[c]), c))  # rarest first
        items = sorted(left[c])
        rng.shuffle(items)
        for i in items:
            # lexicographic: a part still without this class (when the class can cover every part), then
            # the part that most lacks the class, then the part that most lacks images, then chance
            missing = (have[c] == 0) & (len(per_class[c]) >= k)
            score = np.stack([missing, want[c] - have[c], want_n - have_n, rng.random(k)])
            p = int(np.lexsort(score[::-1])[-1])
            part[i] = p
            have_n[p] += 1
            for c2 in label_sets[i]:
                have[c2][p] += 1
                left[c2].discard(i)
    background = [i for i in range(n) if part[i] < 0]
    rng.shuffle(background)
    for i in background:
        p = int(np.argmax(want_n - have_n + 1e-9 * rng.random(k)))
        part[i] = p
        have_n[p] += 1
    _repair(label_sets, part, k, classes)
    return part


def _repair(label_sets, part, k, classes):
    for c in classes:
        items = [i for i in range(len(part)) if c in label_sets[i]]
        if len(items) < k:
            continue
        for p in range(k):
            counts = np.bincount([part[i] for i in items], minlength=k)
            if counts[p] > 0:
                continue
            # move an image of class c from the part richest in c, preferring images whose other classes
            # stay present in that part after the move
            src = int(np.argmax(counts))
            cands = [i for i in items if part[i] == src]

            def harm(i):
                return sum(1 for c2 in label_sets[i] if sum(1 for j in range(len(part))
                                                            if part[j] == src and c2 in label_sets[j]) == 1)
            best = min(cands, key=lambda i: (harm(i), len(label_sets[i]), i))
            part[best] = p


def write_list(out, name: str, files: list[str]):
    """``<name>.txt`` (one file name a line, Darknet's list format) when every name is plain; else
    ``<name>.csv`` with a ``filename`` column written by the csv module, so a name holding spaces, a comma or a
    line break reads back whole (:func:`yolokit.data.voc.read_list` takes both). The other form of an earlier
    run is removed, so a folder never holds two lists for one part."""
    import csv
    import io

    plain = all(f and not any(c.isspace() or ord(c) < 32 for c in f) and not f.startswith("#") for f in files)
    lst, other = (out / f"{name}.txt", out / f"{name}.csv") if plain else (out / f"{name}.csv", out / f"{name}.txt")
    if plain:
        write_text_atomic(lst, "".join(f + "\n" for f in files))
    else:
        buf = io.StringIO(newline="")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["filename"])
        w.writerows([f] for f in files)
        write_text_atomic(lst, buf.getvalue())
    other.unlink(missing_ok=True)
    return lst


def split_dataset(spec, ratios, seed: int, out_dir, splits: list[str] | None = None) -> dict:
    """Split the images of ``spec`` (all splits merged, or ``splits``) into lists under ``out_dir``.

    Writes ``<part>.txt`` (image file names, one per line; ``<part>.csv`` when a name holds a space or a line
    break) and ``data.yaml`` (the source description with
    these parts as its splits). Returns ``{"parts": {name: {"images", "per_class"}}, "yaml": Path}``.
    """
    import os
    from pathlib import Path

    import yaml

    from yolokit.data.config import read_spec
    from yolokit.data.load import load_dataset
    from yolokit.data.sample import ProblemReport
    from yolokit.errors import ConfigError

    ratios = [float(r) for r in ratios]
    if len(ratios) not in PART_NAMES or min(ratios) <= 0 or abs(sum(ratios) - 1) > 1e-6:
        raise ConfigError(f"--ratios: give 2 or 3 positive numbers summing to 1 (e.g. 0.7 0.2 0.1), got {ratios}")
    data, root, source = read_spec(spec)
    # Relative paths are computed between RESOLVED paths: a root reached through a symlink (../shared as a
    # link) would otherwise give a list path whose ".." climbs out of the link's target, not out of the link.
    root = root.resolve()
    names = splits or list(data["splits"])
    if any(isinstance(data["splits"].get(s), list) for s in names):
        raise ConfigError(f"{source}: a split made of several parts (e.g. VOC 07+12) cannot be re-split; "
                          "give --split for a one-folder split")
    defs = [{k: v for k, v in data["splits"][s].items() if k != "list"} for s in names if s in data["splits"]]
    if len(defs) != len(names):
        raise ConfigError(f"{source}: unknown split in {names}; it has {list(data['splits'])}")
    if any(d != defs[0] for d in defs):
        raise ConfigError(f"{source}: splits {names} use different folders; choose one with --split")
    records, seen, problems = [], set(), ProblemReport()
    for s in names:
        ds = load_dataset(spec, s)
        problems.extend(ds.problems)  # the records left out are named to the user (yolokit split prints them)
        for r in ds.records:
            if r.path not in seen:
                seen.add(r.path)
                records.append(r)
    class_names = ds.class_names
    parts = stratified_split([set(int(v) for v in r.labels) for r in records], ratios, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    part_names = PART_NAMES[len(ratios)]
    result = {"parts": {}, "yaml": out / "data.yaml", "problems": problems}
    desc = {k: v for k, v in data.items() if k != "splits"}
    desc["description"] = (f"{len(ratios)}-way stratified split {ratios} (seed {seed}) of {source} "
                           f"by yolokit split")
    desc["root"] = os.path.relpath(root, out.resolve())  # names files stay relative to the same root
    desc["splits"] = {}
    for p, name in enumerate(part_names):
        chosen = sorted((r for r, q in zip(records, parts) if q == p), key=lambda r: r.path.name)
        lst = write_list(out, name, [r.path.name for r in chosen])
        per_class = {n: 0 for n in class_names}
        for r in chosen:
            for v in set(int(x) for x in r.labels):
                per_class[class_names[v]] += 1
        result["parts"][name] = {"images": len(chosen), "per_class": per_class, "list": lst}
        desc["splits"][name] = dict(defs[0], list=os.path.relpath(lst.resolve(), root))
    write_text_atomic(result["yaml"], yaml.safe_dump(desc, sort_keys=False))
    return result
