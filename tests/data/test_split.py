"""``yolokit split``: stratified, reproducible, lists only."""

from collections import Counter
from pathlib import Path

from yolokit.cli import main
from yolokit.data import load_dataset
from yolokit.data.split import stratified_split

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


def test_single_class_split_hits_the_ratios_exactly():
    parts = stratified_split([{0}] * 180 + [set()] * 20, [0.7, 0.2, 0.1], seed=0)
    assert Counter(parts) == {0: 140, 1: 40, 2: 20}


def test_rare_classes_reach_every_part():
    # class 1 has exactly 3 images: one per part; class 2 has 2 images: cannot reach all three parts
    sets = [{0}] * 40 + [{0, 1}] * 3 + [{2}] * 2
    parts = stratified_split(sets, [0.7, 0.2, 0.1], seed=4)
    assert sorted(parts[40:43]) == [0, 1, 2]
    assert parts == stratified_split(sets, [0.7, 0.2, 0.1], seed=4)


def test_split_cli_voc2012(shared, tmp_path, capsys):
    assert main(["split", str(CONFIGS / "voc2012_rodm.yaml"), "--ratios", "0.7", "0.2", "0.1", "--seed", "3",
                 "--out", str(tmp_path / "a")]) == 0
    assert main(["split", str(CONFIGS / "voc2012_rodm.yaml"), "--seed", "3", "--out", str(tmp_path / "b")]) == 0
    assert main(["split", str(CONFIGS / "voc2012_rodm.yaml"), "--seed", "4", "--out", str(tmp_path / "c")]) == 0
    lists = {d: {p: (tmp_path / d / f"{p}.txt").read_text().split() for p in ("train", "val", "test")} for d in "abc"}
    assert lists["a"] == lists["b"] and lists["a"] != lists["c"]
    a = lists["a"]
    everything = a["train"] + a["val"] + a["test"]
    assert len(everything) == len(set(everything)) == 100
    assert 60 <= len(a["train"]) <= 75 and 15 <= len(a["val"]) <= 25
    parts = {p: load_dataset(tmp_path / "a" / "data.yaml", p) for p in ("train", "val", "test")}
    whole = load_dataset(CONFIGS / "voc2012_rodm.yaml", "val")
    images_with = Counter(c for r in whole.records for c in set(r.labels.tolist()))
    for p, ds in parts.items():
        present = {c for r in ds.records for c in r.labels.tolist()}
        assert {c for c, n in images_with.items() if n >= 3} <= present, p
    assert sum(ds.num_boxes for ds in parts.values()) == 273


def test_split_refuses_bad_ratios_and_mixed_folders(shared, tmp_path, capsys):
    assert main(["split", str(CONFIGS / "raccoon.yaml"), "--ratios", "0.7", "0.2", "--out", str(tmp_path)]) == 2
    assert "--ratios" in capsys.readouterr().err
    assert main(["split", str(CONFIGS / "coco128.yaml"), "--out", str(tmp_path)]) == 2
    assert "different folders" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written on error


def test_split_through_a_symlinked_root(shared, tmp_path):
    """The data reached through a symlink (as when ../shared is a link): the lists must still be found."""
    (tmp_path / "link").symlink_to(shared / "voc2012_rodm", target_is_directory=True)
    (tmp_path / "cfg").mkdir()
    desc = (CONFIGS / "voc2012_rodm.yaml").read_text().replace("../../../shared/data/voc2012_rodm", "../link")
    assert "../link/data/database" in desc
    (tmp_path / "cfg" / "voc.yaml").write_text(desc)
    assert main(["split", str(tmp_path / "cfg" / "voc.yaml"), "--seed", "1", "--out", str(tmp_path / "out")]) == 0
    parts = {p: load_dataset(tmp_path / "out" / "data.yaml", p) for p in ("train", "val", "test")}
    assert sum(len(ds) for ds in parts.values()) == 100
    assert sum(ds.num_boxes for ds in parts.values()) == 273
