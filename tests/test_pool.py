"""The content pool: bundled photos, user folders, deterministic crops, leak-free splits."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from prefstyle.data import photo_list
from prefstyle.data import photos as ph
from prefstyle.data.photos import (
    GREYSCALE_CHROMA,
    PhotoSource,
    bundled_photos,
    folder_photos,
    is_greyscale,
    mean_chroma,
    working_copy,
)
from prefstyle.data.pool import ContentPool, crop_boxes
from prefstyle.errors import PrefstyleError
from prefstyle.imaging.io import read_image


@pytest.fixture(scope="module")
def python_pool() -> ContentPool:
    return ContentPool.bundled(system=False, crops_per_photo=4, min_crop_side=128)


def _memory_photo(pid: str, h: int, w: int, seed: int = 0, calls: list | None = None) -> PhotoSource:
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(3, h, w, generator=g)

    def load() -> torch.Tensor:
        if calls is not None:
            calls.append(pid)
        return img

    return PhotoSource(id=pid, loader=load, licence="test", origin=f"memory:{pid}")


# ---------------------------------------------------------------- bundled photos


def test_bundled_python_photos_are_real_colour_photos():
    photos = bundled_photos(system=False)
    assert len(photos) >= 8
    assert len({p.id for p in photos}) == len(photos)
    assert {p.package for p in photos} == {"scikit-image", "scikit-learn", "matplotlib"}
    for p in photos:
        assert p.licence and p.origin and p.author and p.path is not None
        wc = working_copy(p, max_side=None)
        img = wc.pixels
        assert img.shape[0] == 3 and wc.size == tuple(img.shape[-2:])
        assert wc.size == p.size, f"{p.id}: header size differs from decoded size (EXIF rotation?)"
        assert mean_chroma(img) > 2 * GREYSCALE_CHROMA, p.id
        assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0


def test_motorcycle_is_the_left_stereo_view():
    skdata = pytest.importorskip("skimage.data")
    (p,) = [p for p in bundled_photos(system=False) if p.id == "skimage/motorcycle"]
    left = torch.from_numpy(skdata.stereo_motorcycle()[0]).permute(2, 0, 1).float() / 255
    assert torch.allclose(working_copy(p, None).pixels.float(), left, atol=1 / 255)


def _installed(pkg: str) -> bool:
    try:
        return subprocess.run(["dpkg", "-s", pkg], check=False, capture_output=True).returncode == 0
    except OSError:
        return False


@pytest.mark.parametrize("pkg", photo_list.DEBIAN_PACKAGES)
def test_installed_wallpaper_packages_give_every_allow_listed_photo(pkg):
    if not _installed(pkg):
        pytest.skip(f"{pkg} is not installed (make installs it as root)")
    listed = [e for e in photo_list._DEBIAN_PHOTOS if e[1] == pkg]
    found = [p for p in bundled_photos() if p.package == pkg]
    assert [p.id for p in found] == [e[0] for e in listed]
    assert all(p.size is not None and min(p.size) >= 1000 for p in found)


@pytest.mark.slow
def test_bundled_wallpapers_are_colour_photos():
    wallpapers = [p for p in bundled_photos() if p.package in photo_list.DEBIAN_PACKAGES]
    if not wallpapers:
        pytest.skip("no Debian wallpaper package installed")
    for p in wallpapers:
        wc = working_copy(p, max_side=512)
        assert wc.size == p.size, p.id
        assert mean_chroma(wc.pixels) > GREYSCALE_CHROMA, p.id


def test_missing_system_packages_mean_fewer_photos_not_an_error(tmp_path):
    assert len(bundled_photos(share_dir=tmp_path)) == len(bundled_photos(system=False))


# ---------------------------------------------------------------- greyscale and cache


def test_greyscale_detection(astronaut_small):
    colour = astronaut_small[0]
    grey = colour.mean(dim=0, keepdim=True).expand(3, -1, -1)
    assert not is_greyscale(colour)
    assert is_greyscale(grey)
    assert is_greyscale((grey * 255).round().to(torch.uint8))
    # a grey scene with a small coloured subject is colour
    spot = grey.clone()
    spot[:, 30:60, 30:60] = torch.tensor([0.9, 0.2, 0.1])[:, None, None]
    assert not is_greyscale(spot)


def test_working_copy_decodes_once_and_is_bounded():
    calls: list[str] = []
    p = _memory_photo("cache/one", 900, 1500, calls=calls)
    a = working_copy(p, max_side=600)
    b = working_copy(p, max_side=600)
    assert a is b and calls == ["cache/one"]
    assert a.size == (900, 1500) and tuple(a.pixels.shape) == (3, 360, 600)
    assert [tuple(t.shape[-2:]) for t in a.levels] == [(360, 600), (180, 300)]
    before = ph._CACHE.maxsize
    ph.set_cache_size(0)
    try:
        working_copy(p, max_side=600)
        working_copy(p, max_side=600)
        assert len(calls) == 3
    finally:
        ph.set_cache_size(before)


# ---------------------------------------------------------------- scenes


def test_crops_are_deterministic_in_bounds_and_independent_of_other_photos():
    photos = [_memory_photo(f"mem/{i}", 600 + 40 * i, 900, seed=i) for i in range(5)]
    kw = {"crops_per_photo": 6, "scale_range": (0.4, 0.8), "min_crop_side": 200, "seed": 3}
    a = ContentPool(photos, **kw)
    b = ContentPool(photos, **kw)
    assert [s for s in a._scenes.values()] == [s for s in b._scenes.values()]
    c = ContentPool(photos[:2] + [_memory_photo("mem/new", 700, 700)] + photos[2:], **kw)
    assert all(c.scene(sid) == a.scene(sid) for sid in a.scene_ids)
    other = ContentPool(photos, **{**kw, "seed": 4})
    assert [a.scene(s).box for s in a.scene_ids] != [other.scene(s).box for s in other.scene_ids]
    for sid in a.scene_ids:
        sc = a.scene(sid)
        x, y, w, h = sc.box
        H, W = sc.photo_size
        assert x >= 0 and y >= 0 and x + w <= W and y + h <= H
        if sc.index == 0:
            assert sc.box == (0, 0, W, H)
        else:
            assert min(w, h) >= 200 and 0.4 * W - 1 <= w <= 0.8 * W + 1
    assert len(a) == 5 * 6 and a.scene_ids[0] == "mem/0#0"
    # min_crop_side counts working-copy pixels: at max_side=450 a 900 px wide photo keeps half
    half = ContentPool(photos, crops_per_photo=6, min_crop_side=100, max_side=450)
    assert all(min(s.box[2:]) * 450 / max(s.photo_size) >= 100 - 1 for s in half._scenes.values())
    assert all(len([s for s in half.scene_ids if s.startswith(f"{p.id}#")]) == 6 for p in photos)


def test_small_photos_get_only_the_whole_frame():
    import random

    assert crop_boxes(300, 451, 8, (0.35, 0.85), 256, random.Random(0)) == [(0, 0, 451, 300)]
    assert len(crop_boxes(512, 512, 8, (0.35, 0.85), 256, random.Random(0))) == 8


def test_scene_image_shapes_and_range(python_pool):
    assert len(python_pool.photo_ids) >= 8
    for sid in python_pool.scene_ids[:: max(1, len(python_pool) // 10)]:
        sc = python_pool.scene(sid)
        sq = python_pool.scene_image(sid, 96, square=True)
        assert sq.shape == (3, 96, 96) and sq.dtype == torch.float32
        img = python_pool.scene_image(sid, 200)
        w, h = sc.box[2], sc.box[3]
        assert max(img.shape[-2:]) == 200
        assert abs(img.shape[-1] / img.shape[-2] - w / h) < 0.02
        for t in (sq, img):
            assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    batch = python_pool.scene_batch(python_pool.scene_ids[:3], 64)
    assert batch.shape == (3, 3, 64, 64)
    with pytest.raises(KeyError, match="no scene"):
        python_pool.scene_image("nope#0")


def test_whole_frame_scene_is_the_photo_as_decoded(python_pool):
    photo = python_pool.photo("skimage/coffee")
    ref = read_image(photo.path).pixels  # (3, 400, 600)
    img = python_pool.scene_image("skimage/coffee#0", 600)
    assert img.shape == ref.shape
    assert float((img - ref).abs().max()) < 2e-3  # float16 storage only
    small = python_pool.scene_image("skimage/coffee#0", 150)
    ref_small = torch.nn.functional.interpolate(ref[None], size=(100, 150), mode="area")[0]
    assert float((small - ref_small).abs().mean()) < 0.01


def test_pool_pickles_for_dataloader_workers(python_pool):
    import pickle

    clone = pickle.loads(pickle.dumps(python_pool))
    assert clone.scene_ids == python_pool.scene_ids
    assert torch.equal(clone.scene_image("skimage/rocket#2", 64), python_pool.scene_image("skimage/rocket#2", 64))


def test_write_scene_images(python_pool, tmp_path):
    ids = python_pool.scene_ids[:2] + ["skimage/chelsea#0"]
    paths = python_pool.write_scene_images(ids, tmp_path / "src", size=128)
    assert list(paths) == ids
    assert paths["skimage/chelsea#0"] == tmp_path / "src" / "skimage" / "chelsea" / "0.png"
    for sid, path in paths.items():
        back = read_image(path).pixels
        assert back.shape == python_pool.scene_image(sid, 128).shape
        assert float((back - python_pool.scene_image(sid, 128)).abs().max()) <= 0.5 / 255 + 1e-6
    credits = python_pool.credits(ids)
    assert {c["photo"] for c in credits} == {python_pool.scene(s).photo_id for s in ids}
    with pytest.raises(KeyError):
        python_pool.write_scene_images(["unknown#0"], tmp_path / "none")
    assert not (tmp_path / "none").exists()


# ---------------------------------------------------------------- splits


def test_splits_never_share_a_photo(python_pool):
    splits = python_pool.split((0.7, 0.15, 0.15), seed=1)
    assert set(splits) == {"train", "val", "test"}
    assert all(splits.values())
    owner = {}
    for name, ids in splits.items():
        for sid in ids:
            photo = python_pool.scene(sid).photo_id
            assert owner.setdefault(photo, name) == name, f"{photo} in {owner[photo]} and {name}"
    assert sorted(s for ids in splits.values() for s in ids) == sorted(python_pool.scene_ids)
    assert python_pool.split(seed=1) == splits
    reordered = ContentPool(list(reversed(python_pool.photos)), crops_per_photo=4, min_crop_side=128)
    assert reordered.split(seed=1) == splits
    assert any(python_pool.split(seed=s) != splits for s in range(2, 6))


# ---------------------------------------------------------------- user folders and validation


def _save(path, arr: np.ndarray, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)


@pytest.fixture()
def user_folder(tmp_path):
    from skimage import data

    root = tmp_path / "photos"
    _save(root / "coffee.jpg", data.coffee(), quality=92)
    _save(root / "trip" / "astronaut.png", data.astronaut())
    _save(root / "trip" / "day2" / "chelsea.tif", data.chelsea())
    grey = np.repeat(data.coffee().mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    _save(root / "bw" / "coffee_bw.jpg", grey, quality=90)  # RGB file without colour
    _save(root / "tiny.png", data.coffee()[:40, :40])
    (root / "notes.txt").write_text("not a photo")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a JPEG")
    (root / "trip" / "IMG_0001.NEF").write_bytes(b"not really a raw file")
    _save(root / ".hidden" / "x.jpg", data.coffee())
    return root


def test_folder_pool(user_folder):
    pool = ContentPool.from_folder(user_folder, crops_per_photo=3, min_crop_side=128)
    assert sorted(pool.photo_ids) == ["coffee", "trip/astronaut", "trip/day2/chelsea"]
    reasons = {p.relative_to(user_folder).as_posix(): r for p, r in ((s.path, s.reason) for s in pool.skipped)}
    assert set(reasons) == {"bw/coffee_bw.jpg", "tiny.png", "notes.txt", "broken.jpg", "trip/IMG_0001.NEF"}
    assert "rawpy" in reasons["trip/IMG_0001.NEF"] or "corrupt" in reasons["trip/IMG_0001.NEF"]
    assert reasons["bw/coffee_bw.jpg"].startswith("greyscale")
    assert reasons["notes.txt"].startswith("not a supported image type")
    assert "corrupt" in reasons["broken.jpg"] or "not" in reasons["broken.jpg"]
    assert reasons["tiny.png"].startswith("too small")
    assert pool.photo("trip/day2/chelsea").size == (300, 451)
    assert pool.scene_image("trip/astronaut#1", 64, square=True).shape == (3, 64, 64)
    flat, _ = folder_photos(user_folder, recursive=False)
    assert [p.id for p in flat] == ["coffee"]
    kept, _ = folder_photos(user_folder, reject_greyscale=False, prefix="me/")
    assert "me/bw/coffee_bw" in {p.id for p in kept}


def test_folder_errors(tmp_path):
    with pytest.raises(PrefstyleError, match="no such folder"):
        ContentPool.from_folder(tmp_path / "missing")
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(PrefstyleError, match="not a folder"):
        ContentPool.from_folder(tmp_path / "file.jpg")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("hi")
    with pytest.raises(PrefstyleError, match="no usable photograph.*readme.md"):
        ContentPool.from_folder(empty)


def test_pool_arguments_are_checked():
    p = _memory_photo("a", 300, 300)
    with pytest.raises(ValueError, match="duplicate photo id"):
        ContentPool([p, p])
    with pytest.raises(ValueError, match="scale_range"):
        ContentPool([p], scale_range=(0.9, 0.5))
    with pytest.raises(ValueError, match="crops_per_photo"):
        ContentPool([p], crops_per_photo=0)
