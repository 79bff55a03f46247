"""``prefstyle enhance`` of PieNet profiles without torch (:mod:`prefstyle.models.pienet_onnx`,
:mod:`prefstyle.models.pienet_lut_np`, :mod:`prefstyle.imaging.lut_fit_np`).

The ONNX network against the torch one at every thumbnail shape (the packaged legacy-wiring
checkpoint and a tiny paper-wiring one), the numpy LUT fit against the torch one, the per-photo
LUT against ``PieNetModel.luts``, the files written against the torch path (``--model`` forces it)
on an 8-bit JPEG with an EXIF orientation and an ICC profile, an Adobe RGB JPEG, a PNG and a
16-bit PNG (handed to the torch path), when the cached network may and may not be used, that
``personalize`` and the first ``enhance`` export it, and, in a fresh process, that the torch-free
path never imports torch.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

from _pienet_data import make_pairs_dataset, tiny_pienet_config
from prefstyle.cli import main
from prefstyle.imaging.decode import ImageData
from prefstyle.imaging.lut_fit import fit_lut
from prefstyle.imaging.lut_fit_np import fit_lut_np
from prefstyle.models.base import Profile
from prefstyle.models.lut_forms import torch_free_enhance_profile
from prefstyle.models.pienet import LUT_FAST_PATH_SIZE
from prefstyle.models.pienet_lut_np import NetworkLutProfile, network_cache_paths
from prefstyle.models.pienet_onnx import export_network
from test_enhance_torch_free import (  # noqa: F401 - the shared photos fixture
    _photo,
    assert_outputs_match_the_torch_path,
    enhance_in_fresh_process,
    photos,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def packaged():
    from prefstyle.models import load

    return load("pienet")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny trained PieNet (paper wiring, render size 48) in a run folder, and a pairs dataset."""
    from prefstyle.models import load
    from prefstyle.train import Trainer

    root = tmp_path_factory.mktemp("tiny_pienet")
    data = make_pairs_dataset(root / "data", users=2, scenes=4)
    Trainer(tiny_pienet_config(root / "run", steps=3), progress=False).run()
    return {"run": root / "run", "data": data, "model": load(root / "run")}


def _profile(model, path, source: str, seed: int = 0):
    p = torch.nn.functional.normalize(torch.randn(model.cfg.dim, generator=torch.Generator().manual_seed(seed)), dim=0)
    prof = Profile(model="pienet", user="t", model_config=model.config(), tensors={"preference": p})
    prof.model_config = {**prof.model_config, "source": source}
    return prof.save(path)


@pytest.mark.parametrize("which", ["packaged", "tiny"])
def test_network_matches_torch_at_every_thumbnail_shape(which, packaged, tiny):
    import onnxruntime as ort

    model = packaged if which == "packaged" else tiny["model"]
    onnx_path = export_network(model, LUT_FAST_PATH_SIZE)
    assert onnx_path is not None and onnx_path.is_file()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(1)
    p = torch.nn.functional.normalize(torch.randn(1, model.cfg.dim, generator=g), dim=1)
    side = model.cfg.render_size
    for hw in [(side * 3 // 4, side), (side, side * 2 // 3), (side, side), (side * 2 // 5, side), (37, 50), (side, 9)]:
        x = torch.rand(1, 3, *hw, generator=g)
        with torch.no_grad():
            want = model.system.net(x, p).numpy()
        got = session.run(None, {"image": x.numpy(), "preference": p.numpy()})[0]
        assert got.shape == want.shape and np.abs(got - want).max() < 1e-5, hw


def test_numpy_lut_fit_is_the_torch_fit():
    g = np.random.default_rng(0)
    x = g.random((5000, 3)).astype(np.float32)
    y = np.clip(x**1.3 + 0.05 * np.sin(4 * x[:, ::-1]), -0.1, 1.1).astype(np.float32)
    for size, bins in ((17, None), (9, 0)):
        want = fit_lut(torch.from_numpy(x), torch.from_numpy(y), size=size, bins=bins).numpy()
        got = fit_lut_np(x, y, size=size, bins=bins)
        assert got.shape == (3, size, size, size) and got.dtype == np.float32
        assert np.abs(got - want).max() < 1e-5
    w = g.random(5000)
    want = fit_lut(torch.from_numpy(x), torch.from_numpy(y), size=9, weights=torch.from_numpy(w)).numpy()
    assert np.abs(fit_lut_np(x, y, size=9, weights=w) - want).max() < 1e-5
    with pytest.raises(ValueError, match="size must be"):
        fit_lut_np(x, y, size=1)


@pytest.mark.parametrize("shape", [(3000, 4000), (1100, 825), (700, 1000), (120, 90)])
def test_photo_lut_matches_the_model(tmp_path, packaged, shape):
    from prefstyle.models.render import photo_lut

    path = _profile(packaged, tmp_path / "p.json", "pienet")
    export_network(packaged, LUT_FAST_PATH_SIZE)
    form = torch_free_enhance_profile(path)
    assert isinstance(form, NetworkLutProfile) and form.render_size == packaged.render_size
    u8 = _photo(*shape, seed=3)
    prof = Profile.load(path)
    for strength in (1.0, 0.7):
        want = photo_lut(packaged, prof, ImageData(rgb8=u8), strength).numpy()
        got = form.photo_lut(u8, strength)
        assert got.shape == want.shape == (3, 17, 17, 17)
        assert np.abs(got - want).max() < 2e-4, (shape, strength)


def test_outputs_match_the_torch_path(tmp_path, packaged, photos):  # noqa: F811 - the fixture
    path = _profile(packaged, tmp_path / "p.json", "pienet", seed=4)
    export_network(packaged, LUT_FAST_PATH_SIZE)
    assert torch_free_enhance_profile(path) is not None
    assert_outputs_match_the_torch_path(tmp_path, photos, path, "pienet", png_changed=1e-3)  # LUTs within 2e-4


def test_torch_free_path_does_not_import_torch(tmp_path, packaged, photos):  # noqa: F811 - the fixture
    path = _profile(packaged, tmp_path / "p.json", "pienet", seed=5)
    export_network(packaged, LUT_FAST_PATH_SIZE)
    enhance_in_fresh_process(tmp_path, photos, path, "--jobs", "2")


def test_the_cached_network_is_used_only_when_it_is_the_profiles(tmp_path, monkeypatch, capsys, tiny):
    monkeypatch.setenv("PREFSTYLE_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    shutil.copytree(tiny["run"], run)
    from prefstyle.models import load

    model = load(run)
    path = _profile(model, tmp_path / "p.json", str(run.resolve()))
    assert torch_free_enhance_profile(path) is None  # nothing exported yet
    onnx_path = export_network(model, LUT_FAST_PATH_SIZE)
    assert onnx_path is not None
    form = torch_free_enhance_profile(path)
    assert isinstance(form, NetworkLutProfile) and form.render_size == 48 and form.lut_size == LUT_FAST_PATH_SIZE
    assert torch_free_enhance_profile(path, model=str(run)) is None  # --model: the torch path
    assert export_network(model, LUT_FAST_PATH_SIZE) == onnx_path  # fresh: not exported again

    onnx_path.write_bytes(onnx_path.read_bytes()[:-10])  # damaged: its SHA-256 no longer matches
    assert torch_free_enhance_profile(path) is None
    assert export_network(model, LUT_FAST_PATH_SIZE) == onnx_path and torch_free_enhance_profile(path) is not None

    record_path = network_cache_paths(model.checkpoint_id)[1]
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "made_by": {**record["made_by"], "torch": "0.0"}}))
    assert torch_free_enhance_profile(path) is None  # exported by another torch: export again
    assert export_network(model, LUT_FAST_PATH_SIZE) == onnx_path and torch_free_enhance_profile(path) is not None

    record_path.write_text("garbage")  # a damaged record is rebuilt, not a warning on every enhance
    assert torch_free_enhance_profile(path) is None
    assert export_network(model, LUT_FAST_PATH_SIZE) == onnx_path and torch_free_enhance_profile(path) is not None

    weights = model.weights_path
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # checkpoint changed
    assert torch_free_enhance_profile(path) is None

    other = _profile(model, tmp_path / "o.json", str(run.resolve()))
    doc = json.loads(other.read_text())
    doc["model_config"]["checkpoint_id"] = "0123456789abcdef"  # made by another checkpoint
    other.write_text(json.dumps(doc))
    assert torch_free_enhance_profile(other) is None

    short = Profile(
        model="pienet", model_config={**model.config(), "source": str(run)}, tensors={"preference": torch.ones(5)}
    )
    short_path = short.save(tmp_path / "short.json")
    export_network(model, LUT_FAST_PATH_SIZE)  # the record follows the checkpoint as it is now
    assert torch_free_enhance_profile(path) is not None
    assert torch_free_enhance_profile(short_path) is None  # the torch reader says what is wrong
    out = tmp_path / "o"
    assert main(["enhance", str(tmp_path / "p.json"), "--profile", str(short_path), "--out", str(out)]) == 2
    assert "short.json: PieNet profile has no preference vector of size 8" in capsys.readouterr().err


def test_personalize_exports_the_network_and_enhance_runs_without_torch(tmp_path, monkeypatch, tiny, photos):  # noqa: F811
    monkeypatch.setenv("PREFSTYLE_CACHE", str(tmp_path / "cache"))
    prof = tmp_path / "me.json"
    args = ["personalize", str(tiny["data"]), "--user", "u0@laptop", "--refs", "3", "--model", str(tiny["run"])]
    assert main([*args, "--out", str(prof)]) == 0
    onnx_path, record = network_cache_paths(tiny["model"].checkpoint_id)
    assert onnx_path.is_file() and json.loads(record.read_text())["render_size"] == 48
    enhance_in_fresh_process(tmp_path, photos, prof)


def test_first_torch_enhance_exports_for_the_next(tmp_path, monkeypatch, tiny, photos):  # noqa: F811
    monkeypatch.setenv("PREFSTYLE_CACHE", str(tmp_path / "cache"))
    path = _profile(tiny["model"], tmp_path / "p.json", str(tiny["run"].resolve()))
    assert torch_free_enhance_profile(path) is None
    assert main(["enhance", str(photos / "c.png"), "--profile", str(path), "--out", str(tmp_path / "o1")]) == 0
    assert isinstance(torch_free_enhance_profile(path), NetworkLutProfile)


def _assert_second_run_torch_free_and_equal(tmp_path, args: list[str]) -> None:
    """``prefstyle *args`` twice: in this process (the torch path, which caches PieNet's networks) to
    ``torch.json``, then in a fresh one to ``free.json``, which must not import torch and must write
    the same profile (JSON fields equal, preference vectors within 1e-5)."""
    import subprocess
    import sys

    from safetensors.numpy import load_file

    assert main([*args, "--out", str(tmp_path / "torch.json")]) == 0
    code = (
        "import sys\nfrom prefstyle.cli import main\n"
        f"rc = main({[*args, '--out', str(tmp_path / 'free.json')]!r})\n"
        "print(rc, 'torch' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["0", "False"], res.stderr
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("torch", "free"))
    keys = ("model", "user", "model_config", "data")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    pa, pb = (load_file(str(tmp_path / f"{n}.safetensors"))["preference"] for n in ("torch", "free"))
    assert np.abs(pa - pb).max() < 1e-5


def test_liked_photos_personalize_without_torch(tmp_path, monkeypatch, packaged, photos):  # noqa: F811
    """``personalize --liked``: the first run (torch) exports the embedding too; the next, in a fresh
    process, makes the same profile without importing torch; a 16-bit photo sends it back to torch."""
    from prefstyle.cli.personalize_cmd import _liked_torch_free

    monkeypatch.setenv("PREFSTYLE_CACHE", str(tmp_path / "cache"))
    liked = tmp_path / "liked"
    liked.mkdir()
    for name in ("a.jpg", "c.png"):
        (liked / name).write_bytes((photos / name).read_bytes())
    assert _liked_torch_free("pienet", liked, "me") is None  # nothing exported yet
    _assert_second_run_torch_free_and_equal(tmp_path, ["personalize", "--liked", str(liked)])
    (liked / "d.png").write_bytes((photos / "d.png").read_bytes())  # 16-bit: the model reads it
    assert _liked_torch_free("pienet", liked, "me") is None


def test_pairs_personalize_without_torch_once_cached(tmp_path, monkeypatch, tiny):
    """``personalize DATA --model RUN`` of a PieNet checkpoint: the first run (torch) caches the
    networks; the next, in a fresh process, writes the same profile without importing torch."""
    monkeypatch.setenv("PREFSTYLE_CACHE", str(tmp_path / "cache"))
    args = ["personalize", str(tiny["data"]), "--user", "u0@laptop", "--refs", "3", "--model", str(tiny["run"])]
    _assert_second_run_torch_free_and_equal(tmp_path, args)


def test_export_lut_without_torch_matches_the_torch_path(tmp_path, monkeypatch, packaged):
    from prefstyle.imaging.lut_io import read_cube

    monkeypatch.setenv("PREFSTYLE_CACHE", str(tmp_path / "cache"))
    path = _profile(packaged, tmp_path / "p.json", "pienet", seed=6)
    first, free, ref = tmp_path / "first.cube", tmp_path / "free.cube", tmp_path / "torch.cube"
    assert main(["export-lut", "--profile", str(path), "--out", str(first), "--size", "17"]) == 0  # caches photos
    export_network(packaged, LUT_FAST_PATH_SIZE)
    assert torch_free_enhance_profile(path) is not None
    assert main(["export-lut", "--profile", str(path), "--out", str(free), "--size", "17"]) == 0
    assert main(["export-lut", "--profile", str(path), "--out", str(ref), "--size", "17", "--model", "pienet"]) == 0
    a, b = read_cube(free), read_cube(ref)
    assert a.title == b.title == "prefstyle pienet t" and a.lut3d is not None and b.lut3d is not None
    assert float((a.lut3d - b.lut3d).abs().max()) <= 2e-5


def test_a_network_onnx_runtime_cannot_run_falls_back_to_torch(tmp_path, monkeypatch, tiny, photos):  # noqa: F811
    """A cached file whose hash matches its record but that ONNX Runtime cannot load (another
    onnxruntime, a bad export): ``enhance`` and ``personalize --liked`` render through torch instead."""
    from prefstyle.models.pienet_lut_np import embedding_cache_path, file_sha256

    monkeypatch.setenv("PREFSTYLE_CACHE", str(tmp_path / "cache"))
    model = tiny["model"]
    onnx_path = export_network(model, LUT_FAST_PATH_SIZE)
    assert onnx_path is not None
    embed = embedding_cache_path(model.checkpoint_id)
    record_path = network_cache_paths(model.checkpoint_id)[1]
    for f in (onnx_path, embed):
        f.write_bytes(b"not an onnx graph")
    record = json.loads(record_path.read_text())
    record.update(sha256=file_sha256(onnx_path), embed_sha256=file_sha256(embed))
    record_path.write_text(json.dumps(record))
    path = _profile(model, tmp_path / "p.json", str(tiny["run"].resolve()))
    assert isinstance(torch_free_enhance_profile(path), NetworkLutProfile)  # the record says it is usable
    out = tmp_path / "out"
    assert (
        main(["enhance", str(photos / "a.jpg"), str(photos / "c.png"), "--profile", str(path), "--out", str(out)]) == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "c.png"]
    assert torch_free_enhance_profile(path) is not None  # the torch path exported the network again
    assert onnx_path.read_bytes() != b"not an onnx graph"

    from prefstyle.models.pienet_personalize_np import personalize_liked

    embed.write_bytes(b"not an onnx graph")
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "embed_sha256": file_sha256(embed)}))
    assert personalize_liked(str(tiny["run"]), [photos / "a.jpg"], "me") is None  # the torch path does it
    assert not record_path.exists()  # and exports again
