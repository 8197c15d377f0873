"""``yolokit data get`` against a local mirror (127.0.0.1 only) serving archives in the publishers' layouts,
built at test time from ../shared/data: download, resume, checksums, idempotence, staged extraction."""

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from tests.data.mirror import Mirror, coco_zips, github_zip, voc_trainval_tar
from yolokit.cli import main
from yolokit.data import load_dataset
from yolokit.data import catalog
from yolokit.data import download as dl
from yolokit.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]
VOC_TAR = "VOCtrainval_11-May-2012.tar"
VOC_SPLIT = {"val": {"images": "VOCdevkit/VOC2012/JPEGImages", "annotations": "VOCdevkit/VOC2012/Annotations",
                     "list": "VOCdevkit/VOC2012/ImageSets/Main/trainval.txt"}}


def _write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture
def voc_mirror(shared, tmp_path):
    tar = voc_trainval_tar(shared, tmp_path / VOC_TAR)
    with Mirror() as m:
        sha = m.add(VOC_TAR, tar.read_bytes())
        spec = {"format": "voc", "root": str(tmp_path / "datasets" / "voc"), "names": str(
            shared / "voc2012_rodm" / "data" / "database" / "voc.names"),
            "download": [{"url": m.url(VOC_TAR), "sha256": sha, "size": tar.stat().st_size}], "splits": VOC_SPLIT}
        yield m, _write(tmp_path / "voc.yaml", spec), spec


def test_voc_tar_download_check_counts_and_idempotent(voc_mirror, capsys):
    m, y, spec = voc_mirror
    assert main(["data", "get", str(y)]) == 0
    root = Path(spec["root"])
    assert (root / ".yolokit" / f"{VOC_TAR}.done").is_file()
    assert not (root / ".yolokit" / "downloads").exists()  # the archive is removed after extraction
    capsys.readouterr()
    # the counts of ../shared/data/voc2012_rodm/PROVENANCE.txt: 100 images, 273 boxes (38 difficult)
    assert main(["check", str(y), "--json", "--no-decode"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["images"], out["boxes"]) == (100, 273)
    ds = load_dataset(y, "val")
    assert sum(int(r.difficult.sum()) for r in ds.records) == 38 and len(ds.class_names) == 20
    # a second call verifies the marker and the split paths, and fetches nothing
    n = len(m.requests)
    assert main(["data", "get", str(y)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(m.requests) == n


def test_resume_after_interrupted_transfer(voc_mirror, capsys):
    m, y, spec = voc_mirror
    size = spec["download"][0]["size"]
    m.cut(VOC_TAR, size // 3)
    assert main(["data", "get", str(y)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "rerun to resume" in err
    root = Path(spec["root"])
    part = root / ".yolokit" / "downloads" / f"{VOC_TAR}.part"
    assert part.stat().st_size == size // 3
    with pytest.raises(dl.DatasetMissing, match="yolokit data get"):  # nothing looks complete
        load_dataset(y, "val")
    assert main(["data", "get", str(y)]) == 0
    assert m.requests[-1] == (VOC_TAR, f"bytes={size // 3}-")
    assert m.served[VOC_TAR] == size  # the second transfer sent only the rest
    assert len(load_dataset(y, "val")) == 100


def test_server_without_range_support_restarts(shared, tmp_path):
    tar = voc_trainval_tar(shared, tmp_path / VOC_TAR)
    with Mirror(ranges=False) as m:
        sha = m.add(VOC_TAR, tar.read_bytes())
        m.cut(VOC_TAR, 1000)
        spec = {"format": "voc", "root": str(tmp_path / "voc"), "splits": VOC_SPLIT,
                "download": [{"url": m.url(VOC_TAR), "sha256": sha}]}
        y = _write(tmp_path / "voc.yaml", spec)
        with pytest.raises(DataError):
            dl.get(y, progress=False, log=lambda *a: None)
        dl.get(y, progress=False, log=lambda *a: None)  # 200 instead of 206: starts over, still correct
    assert m.served[VOC_TAR] == 1000 + tar.stat().st_size
    assert len(load_dataset(y, "val", check_images=False)) == 100


def test_bad_checksum_is_one_line_and_extracts_nothing(voc_mirror, capsys):
    m, y, spec = voc_mirror
    spec["download"][0]["sha256"] = "0" * 64
    _write(y, spec)
    assert main(["data", "get", str(y)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "sha256 mismatch" in err and "nothing was extracted" in err
    root = Path(spec["root"])
    assert not (root / "VOCdevkit").exists()
    assert not list((root / ".yolokit").glob("*.done"))
    assert not (root / ".yolokit").exists()  # the bad file is not kept for a resume, nor the empty folders


def test_interrupted_extraction_never_looks_complete(voc_mirror, monkeypatch):
    m, y, spec = voc_mirror
    real = dl._merge

    def crash(src, dst):
        real(next(src.iterdir()).parent, dst)  # everything is moved into place ...
        raise KeyboardInterrupt  # ... and the process dies before the marker is written

    monkeypatch.setattr(dl, "_merge", crash)
    with pytest.raises(KeyboardInterrupt):
        dl.get(y, progress=False, keep_archives=True, log=lambda *a: None)
    root = Path(spec["root"])
    assert (root / "VOCdevkit" / "VOC2012" / "Annotations").is_dir()
    with pytest.raises(dl.DatasetMissing, match="unfinished"):
        load_dataset(y, "val")
    monkeypatch.setattr(dl, "_merge", real)
    n = len(m.requests)
    dl.get(y, progress=False, log=lambda *a: None)  # the kept archive is extracted again, not fetched again
    assert len(m.requests) == n
    assert len(load_dataset(y, "val")) == 100


def test_coco_zips_in_the_publishers_layout_merge_into_one_root(shared, tmp_path, capsys):
    zips = coco_zips(shared, tmp_path)
    with Mirror() as m:
        entries = [{"url": "http://127.0.0.1:1/unreachable/" + name, "sha256": m.add(name, p.read_bytes()),
                    "mirrors": [m.url(name)]} for name, p in zips.items()]  # publisher down -> mirror
        spec = {"format": "coco", "root": str(tmp_path / "coco"), "download": entries,
                "splits": {"train": {"images": "train2017", "annotations": "annotations/instances_train2017.json"},
                           "val": {"images": "val2017", "annotations": "annotations/instances_val2017.json"}}}
        y = _write(tmp_path / "coco.yaml", spec)
        assert main(["data", "get", str(y)]) == 0
    capsys.readouterr()
    assert main(["check", str(y), "--json", "--no-decode", "--split", "train"]) == 0
    out = json.loads(capsys.readouterr().out)
    # ../shared/data/coco128_cocojson/PROVENANCE.txt: 128 images, 939 annotations (10 iscrowd), 80 categories
    assert (out["images"], out["boxes"], len(out["per_class"])) == (128, 939, 80)
    assert sorted(p.name for p in (tmp_path / "coco").iterdir()) == [".yolokit", "annotations", "train2017", "val2017"]


def test_github_archive_without_checksum_records_sha256_and_leaves_hand_copies_alone(shared, tmp_path,
                                                                                      monkeypatch, capsys):
    z = github_zip(shared / "raccoon", "raccoon_dataset-93938849301895fb73909842ba04af9b602f677a",
                   tmp_path / "raccoon_dataset-93938849.zip")
    home = tmp_path / "home"
    with Mirror() as m:
        sha = m.add(z.name, z.read_bytes())
        monkeypatch.setenv("YOLOKIT_DATA_ROOT", str(home))
        with pytest.raises(dl.DatasetMissing, match="yolokit data get raccoon"):
            load_dataset(ROOT / "configs" / "data" / "raccoon.yaml", "train")
        assert main(["data", "get", "raccoon", "--mirror", m.base]) == 0
        assert sha in capsys.readouterr().out  # "no published checksum; sha256 ... recorded"
        done = json.loads((home / "raccoon" / ".yolokit" / f"{z.name}.done").read_text())
        assert done["checksums"]["sha256"] == sha
        assert len(load_dataset(ROOT / "configs" / "data" / "raccoon.yaml", "train")) == 160
        # the shared copy has every file but no marker: `get` must not download over it
        monkeypatch.setenv("YOLOKIT_DATA_ROOT", str(shared))
        n = len(m.requests)
        assert main(["data", "get", "raccoon", "--mirror", m.base]) == 0
        assert "not fetched by yolokit" in capsys.readouterr().out and len(m.requests) == n


def test_missing_files_print_the_get_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("YOLOKIT_DATA_ROOT", str(tmp_path))
    data = str(ROOT / "configs" / "data" / "coco128.yaml")
    assert main(["check", data]) == 2
    assert "get them with: yolokit data get coco128" in capsys.readouterr().err
    assert main(["eval", "--data", data, "--pred", str(tmp_path / "none.json")]) == 2
    assert "yolokit data get coco128" in capsys.readouterr().err
    assert main(["train", "--model", str(ROOT / "configs/models/yolov3-tiny.cfg"), "--data", data,
                 "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    assert "yolokit data get coco128" in capsys.readouterr().err


def test_big_downloads_need_consent(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOKIT_DATA_ROOT", str(tmp_path))
    with pytest.raises(ConfigError, match="--yes"):
        dl.get("coco", log=lambda *a: None)  # 20 GB: refused before any connection is made
    assert not (tmp_path / "coco").exists()


def test_archive_members_outside_the_root_are_refused(tmp_path):
    import tarfile

    evil = tmp_path / "evil.tar"
    (tmp_path / "x.txt").write_text("x")
    with tarfile.open(evil, "w") as tf:
        tf.add(tmp_path / "x.txt", "../escaped.txt")
    with pytest.raises(DataError, match="outside"):
        dl.extract(evil, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()


def test_presets_and_descriptors_agree():
    """Each archive of a shipped preset is listed, with the same URL, checksums and size, in data/."""
    described = {}
    for p in (ROOT / "data").glob("*.yaml"):
        for a in catalog.parse_download(yaml.safe_load(p.read_text())["download"], str(p)):
            described[a.file] = a
    for p in (ROOT / "configs" / "data").glob("*.yaml"):
        raw = yaml.safe_load(p.read_text())
        for a in catalog.parse_download(raw["download"], str(p)) if raw.get("download") else []:
            assert described.get(a.file) == a, (p.name, a.file)
    assert {"voc", "coco", "raccoon", "coco128"} <= set(catalog.available())


def test_checksum_algorithms_all_checked(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"yolokit")
    a = catalog.Archive("http://x/a.bin", "a.bin", {"md5": hashlib.md5(b"yolokit").hexdigest(),
                                                "sha1": hashlib.sha1(b"yolokit").hexdigest()})
    assert dl.verify(f, a)["sha256"] == hashlib.sha256(b"yolokit").hexdigest()
    a.checksums["sha1"] = "1" * 40
    with pytest.raises(DataError, match="sha1 mismatch"):
        dl.verify(f, a)
    assert not f.exists()


def test_voc_and_coco_presets_read_the_publishers_layouts(shared, tmp_path, monkeypatch, capsys):
    """configs/data/voc.yaml (07+12 trainval -> 07 test) and coco.yaml on small trees in the layouts the
    real archives unpack to, made of the shared VOC2012 sample and COCO128 (linked, not copied)."""
    db = shared / "voc2012_rodm" / "data" / "database"
    ids = sorted(p.stem for p in (db / "gts" / "pascalvoc_format").glob("*.xml"))
    parts = {("VOC2007", "trainval"): ids[:30], ("VOC2007", "test"): ids[30:50], ("VOC2012", "trainval"): ids[50:]}
    for (year, split), chosen in parts.items():
        devkit = tmp_path / "voc" / "VOCdevkit" / year
        for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
            (devkit / sub).mkdir(parents=True, exist_ok=True)
        for i in chosen:
            (devkit / "Annotations" / f"{i}.xml").symlink_to(db / "gts" / "pascalvoc_format" / f"{i}.xml")
            (devkit / "JPEGImages" / f"{i}.jpg").symlink_to(db / "images" / f"{i}.jpg")
        (devkit / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(i + "\n" for i in chosen))
    (tmp_path / "coco").mkdir()
    for sub in ("annotations", "train2017", "val2017"):
        (tmp_path / "coco" / sub).symlink_to(shared / "coco128_cocojson" / sub, target_is_directory=True)
    monkeypatch.setenv("YOLOKIT_DATA_ROOT", str(tmp_path))
    presets = ROOT / "configs" / "data"
    train, val = load_dataset(presets / "voc.yaml", "train"), load_dataset(presets / "voc.yaml", "val")
    assert (len(train), len(val)) == (80, 20)
    assert {r.image_id for r in val.records} == set(ids[30:50])  # VOC2007 test only
    assert train.num_boxes + val.num_boxes == 273
    assert sum(int(r.difficult.sum()) for ds in (train, val) for r in ds.records) == 38
    assert train.class_names == val.class_names and len(train.class_names) == 20
    assert main(["check", str(presets / "voc.yaml"), "--json", "--no-decode"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["images"], out["boxes"]) == (100, 273)  # 80 train + 20 val images
    coco = load_dataset(presets / "coco.yaml", "train", check_images=False)
    assert (len(coco), coco.num_boxes, len(coco.class_names)) == (128, 939, 80)


def test_check_download_fetches_first_then_leaves_it(shared, tmp_path, monkeypatch, capsys):
    z = github_zip(shared / "raccoon", "raccoon_dataset-93938849301895fb73909842ba04af9b602f677a",
                   tmp_path / "raccoon_dataset-93938849.zip")
    monkeypatch.setenv("YOLOKIT_DATA_ROOT", str(tmp_path / "home"))
    data = str(ROOT / "configs" / "data" / "raccoon.yaml")
    with Mirror() as m:
        m.add(z.name, z.read_bytes())
        monkeypatch.setenv("YOLOKIT_DATA_MIRROR", m.base)
        assert main(["check", data, "--no-decode", "--download"]) == 0
        out = capsys.readouterr().out
        assert "raccoon_dataset-93938849.zip (size unknown)" in out and "problems: none" in out
        n = len(m.requests)
        assert main(["check", data, "--no-decode", "--download"]) == 0  # present: nothing fetched
        assert len(m.requests) == n == 1


def test_a_complete_part_file_is_not_fetched_again(voc_mirror):
    m, y, spec = voc_mirror
    root = Path(spec["root"])
    part = root / ".yolokit" / "downloads" / f"{VOC_TAR}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(m.httpd.files[VOC_TAR])  # the transfer ended but the rename did not happen
    dl.get(y, progress=False, log=lambda *a: None)
    assert m.requests == [(VOC_TAR, f"bytes={spec['download'][0]['size']}-")] and VOC_TAR not in m.served
    assert len(load_dataset(y, "val", check_images=False)) == 100


def test_dir_moves_the_data_root_of_a_preset_only(shared, tmp_path, monkeypatch, capsys, voc_mirror):
    m, y, spec = voc_mirror
    with pytest.raises(ConfigError, match="does not use"):  # a fixed root cannot be redirected silently
        dl.get(y, str(tmp_path / "elsewhere"), log=lambda *a: None)
    z = github_zip(shared / "raccoon", "raccoon_dataset-93938849301895fb73909842ba04af9b602f677a",
                   tmp_path / "raccoon_dataset-93938849.zip")
    monkeypatch.delenv("YOLOKIT_DATA_ROOT", raising=False)
    m.add(z.name, z.read_bytes())
    assert main(["data", "get", "raccoon", "--dir", str(tmp_path / "disk"), "--mirror", m.base]) == 0
    assert "export YOLOKIT_DATA_ROOT=" in capsys.readouterr().out
    assert (tmp_path / "disk" / "raccoon" / "images" / "raccoon-1.jpg").is_file()
    monkeypatch.setenv("YOLOKIT_DATA_ROOT", str(tmp_path / "disk"))
    assert len(load_dataset(ROOT / "configs" / "data" / "raccoon.yaml", "val")) == 40
