"""MIT-Adobe FiveK readers: the three layouts, the 4,500/500 rule, clear errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image

from prefstyle.data.fivek import (
    TRAIN_COUNT,
    FiveKDataset,
    detect_layout,
    image_key,
    normalize_expert,
)
from prefstyle.errors import PrefstyleError


def _png(path: Path, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (2, 2), (value, value, value)).save(path)


def _names(n: int) -> list[str]:
    return [f"a{i:04d}" for i in range(1, n + 1)]


def _folder(root: Path, folder: str, names: list[str], suffix: str = ".png", value: int = 0) -> None:
    order = names[:]
    random.Random(0).shuffle(order)  # creation order must not matter
    for name in order:
        _png(root / folder / f"{name}{suffix}", value)


def test_folders_layout(tmp_path: Path):
    names = _names(4)
    for name in names:  # FiveK's own long names on the input side, short ids on the expert side
        _png(tmp_path / "input" / f"{name}-jmac_DSC{name[1:]}.tif")
    _folder(tmp_path, "expertA", names, ".jpg")
    _folder(tmp_path, "ExpertC", names, ".png")
    (tmp_path / "input" / ".DS_Store").write_text("x")
    (tmp_path / "input" / "notes.txt").write_text("x")
    (tmp_path / "README").write_text("x")

    ds = FiveKDataset(tmp_path, experts=("c", "expertA"), split="all")
    assert ds.kind == "folders" and ds.experts == ("C", "A") and len(ds) == 4
    name, inp, targets = ds[0]
    assert name == "a0001" and inp.name == "a0001-jmac_DSC0001.tif"
    assert targets == {"C": tmp_path / "ExpertC/a0001.png", "A": tmp_path / "expertA/a0001.jpg"}
    assert [it.name for it in ds] == names
    assert ds.users() == ["C", "A"]
    assert [p.target.parent.name for p in ds.by_user("A")] == ["expertA"] * 4
    assert [p.name for p in ds.references("C", 2)] == ["a0001", "a0002"]
    assert ds.references("C", 2, seed=5) == ds.references("C", 2, seed=5)
    with pytest.raises(PrefstyleError, match="not requested"):
        ds.by_user("B")


def test_pie_msm_layout(tmp_path: Path):
    names = _names(3)
    for e in ("A", "C"):
        _folder(tmp_path, f"Expert{e}", names, ".jpg")
        _folder(tmp_path, f"Expert{e}_input", names, ".jpg")
    ds = FiveKDataset(tmp_path, experts=("C", "A"), split="all")
    assert ds.kind == "pie-msm"
    item = ds[2]
    assert item.input == tmp_path / "ExpertC_input/a0003.jpg"
    assert item.targets == {"C": tmp_path / "ExpertC/a0003.jpg", "A": tmp_path / "ExpertA/a0003.jpg"}
    layout = detect_layout(tmp_path)
    assert layout.experts == ("A", "C") and layout.inputs["A"].name == "ExpertA_input"


def test_starenhancer_layout_flat_and_presplit(tmp_path: Path):
    flat = tmp_path / "Full-Res"
    names = _names(5)
    for folder in ("01-Experts-A", "03-Experts-C", "06-Input-ExpertC1.5"):
        _folder(flat, folder, names, ".jpg")
    ds = FiveKDataset(flat, experts=("A",), split="test", train_count=3)
    assert ds.kind == "starenhancer"
    assert [it.name for it in ds] == ["a0004", "a0005"]
    assert ds[0].input.parent.name == "06-Input-ExpertC1.5"

    data = tmp_path / "data"
    train, test = _names(6)[:4], _names(6)[4:]
    for split, members in (("train", train), ("valid", test), ("test", test)):
        for folder in (
            "01-Experts-A",
            "02-Experts-B",
            "03-Experts-C",
            "04-Experts-D",
            "05-Experts-E",
            "06-Input-ExpertC1.5",
        ):
            _folder(data / split, folder, members, ".jpg")
    assert set(detect_layout(data)) == {"train", "test"}
    tr = FiveKDataset(data, experts="A, B,C,expertD,E", split="train")
    te = FiveKDataset(data, experts=("E",), split="test")
    al = FiveKDataset(data, experts=("C",), split="all")
    assert [it.name for it in tr] == train and [it.name for it in te] == test
    assert [it.name for it in al] == train + test
    assert tr[0].targets["E"] == data / "train/05-Experts-E/a0001.jpg"
    assert te[0].input == data / "test/06-Input-ExpertC1.5/a0005.jpg"


def test_split_by_sorted_file_order(tmp_path: Path):
    names = _names(10)
    _folder(tmp_path, "input", names)
    _folder(tmp_path, "expertC", names)
    train = FiveKDataset(tmp_path, split="train", train_count=9)
    test = FiveKDataset(tmp_path, split="test", train_count=9)
    assert [it.name for it in train] == names[:9]
    assert [it.name for it in test] == ["a0010"]
    assert len(FiveKDataset(tmp_path, split="all", train_count=9)) == 10
    with pytest.raises(PrefstyleError, match="split='all'"):
        FiveKDataset(tmp_path, split="test", train_count=10)


def test_standard_4500_500_split(tmp_path: Path):
    (tmp_path / "input").mkdir()
    for name in reversed(_names(5000)):  # empty files: only names matter to the split
        (tmp_path / "input" / f"{name}.jpg").touch()
    (tmp_path / "expertC").symlink_to("input", target_is_directory=True)
    train = FiveKDataset(tmp_path, split="train")
    test = FiveKDataset(tmp_path, split="test")
    assert TRAIN_COUNT == 4500
    assert len(train) == 4500 and len(test) == 500
    assert (train[0].name, train[-1].name, test[0].name, test[-1].name) == ("a0001", "a4500", "a4501", "a5000")
    assert train[0].targets["C"] == tmp_path / "expertC/a0001.jpg"


def test_errors_are_clear(tmp_path: Path):
    with pytest.raises(PrefstyleError, match="no such folder"):
        FiveKDataset(tmp_path / "missing")
    (tmp_path / "photos").mkdir()
    (tmp_path / "edits").mkdir()
    with pytest.raises(PrefstyleError, match="matches no MIT-Adobe FiveK layout.*found: edits, photos"):
        FiveKDataset(tmp_path)

    root = tmp_path / "fivek"
    _folder(root, "input", _names(4))
    _folder(root, "expertC", _names(3))
    with pytest.raises(PrefstyleError, match=r"1 photos in .*input have no counterpart in .*expertC: a0004"):
        FiveKDataset(root, split="all")
    _png(root / "expertC" / "a0004.png")
    _png(root / "expertC" / "a0005.png")
    with pytest.raises(PrefstyleError, match=r"expertC have no counterpart in .*input: a0005"):
        FiveKDataset(root, split="all")
    (root / "expertC" / "a0005.png").unlink()
    _png(root / "expertC" / "a0004.jpg")
    with pytest.raises(PrefstyleError, match="two files for photo 'a0004'"):
        FiveKDataset(root, split="all")
    (root / "expertC" / "a0004.jpg").unlink()
    assert len(FiveKDataset(root, split="all")) == 4
    with pytest.raises(PrefstyleError, match="expert D not found"):
        FiveKDataset(root, experts=("D",), split="all")
    with pytest.raises(PrefstyleError, match="unknown FiveK expert"):
        FiveKDataset(root, experts=("Z",), split="all")
    with pytest.raises(PrefstyleError, match="unknown FiveK split"):
        FiveKDataset(root, split="valid")
    with pytest.raises(PrefstyleError, match="needs more than 4500"):
        FiveKDataset(root, split="train")

    pie = tmp_path / "pie"
    _folder(pie, "ExpertA", _names(2))
    _folder(pie, "ExpertA_input", _names(2))
    _folder(pie, "ExpertC", _names(2))
    _folder(pie, "ExpertC_input", _names(1))
    with pytest.raises(PrefstyleError, match="no counterpart"):
        FiveKDataset(pie, experts=("A", "C"), split="all")

    star = tmp_path / "star"
    _folder(star / "train", "01-Experts-A", _names(2))
    _folder(star / "train", "06-Input-ExpertC1.5", _names(2))
    with pytest.raises(PrefstyleError, match="split folder test/ is missing"):
        FiveKDataset(star, experts=("A",), split="test")


def test_names():
    assert [normalize_expert(x) for x in ("c", "C", "expertC", "Expert C", "expert_c")] == ["C"] * 5
    assert image_key(Path("a0042-kme_0204.dng")) == "a0042"
    assert image_key(Path("A0042.JPG")) == "a0042"
    assert image_key(Path("a00421.jpg")) == "a00421"
    assert image_key(Path("IMG_0001.jpg")) == "IMG_0001"
