"""Training decodes every image once to find the bad ones; clean verdicts are remembered by path, size and
modification time, so a second run decodes nothing unchanged, and a file changed since is decoded again."""

import shutil

import pytest

import yolokit.data.images as images
from yolokit.data import load_dataset


def _dataset(shared, tmp_path, n=4):
    src = shared / "raccoon"
    (tmp_path / "images").mkdir(parents=True)
    (tmp_path / "annotations").mkdir()
    for xml in sorted((src / "annotations").glob("*.xml"))[:n]:
        shutil.copy(xml, tmp_path / "annotations" / xml.name)
        shutil.copy(src / "images" / (xml.stem + ".jpg"), tmp_path / "images" / (xml.stem + ".jpg"))
    return {"format": "voc", "root": str(tmp_path), "names": ["raccoon"],
            "splits": {"train": {"images": "images", "annotations": "annotations"}}}


def test_clean_decodes_are_remembered_and_changed_files_decoded_again(shared, tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOKIT_CACHE_DIR", str(tmp_path / "cache"))
    spec = _dataset(shared, tmp_path / "data")
    calls = []
    real = images.verify_image
    monkeypatch.setattr(images, "verify_image", lambda p: calls.append(p) or real(p))

    first = load_dataset(spec, "train", decode=True)
    assert len(first) == 4 and len(calls) == 4
    calls.clear()
    again = load_dataset(spec, "train", decode=True)
    assert len(again) == 4 and calls == []            # nothing decoded twice

    victim = sorted((tmp_path / "data" / "images").glob("*.jpg"))[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])        # truncated since: its size changed
    third = load_dataset(spec, "train", decode=True)
    assert [p.name for p in calls] == [victim.name]
    assert len(third) == 3 and [str(p.file) for p in third.problems] == [str(victim)]
    calls.clear()
    load_dataset(spec, "train", decode=True)          # a bad image is never remembered: reported every time
    assert [p.name for p in calls] == [victim.name]
