"""The command line under misuse: one-line errors, file modes, alpha and gray, explicit overwriting,
validated profiles and configs, and no tracebacks (issues 16 and 20)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prefstyle.cli import main
from prefstyle.errors import PrefstyleError
from prefstyle.imaging.lut import identity_lut
from prefstyle.imaging.lut_io import write_cube

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _err_lines(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def _photo(path: Path, mode: str = "RGB", size: tuple[int, int] = (40, 30), seed: int = 0) -> np.ndarray:
    """A small random-ish photo in ``mode`` (RGB, RGBA, L); returns the array written."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    base = np.linspace(30, 220, size[0] * size[1]).reshape(size[1], size[0])
    arr = np.stack([np.roll(base, 7 * c, axis=1) for c in range(channels)], -1)
    arr = (arr + rng.integers(0, 20, arr.shape)).clip(0, 255).astype(np.uint8)
    if mode == "RGBA":
        arr[..., 3] = rng.integers(0, 256, arr.shape[:2]).astype(np.uint8)
        arr[:5, :5, 3] = 0
    arr = arr[..., 0] if mode == "L" else arr
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path, **({"quality": 95} if path.suffix == ".jpg" else {}))
    return arr


def _warm_cube(path: Path) -> Path:
    lut = identity_lut(9)
    lut[0] = (lut[0] * 1.2).clamp(0, 1)
    lut[2] = lut[2] * 0.7
    write_cube(path, lut, title="warm")
    return path


def _sliders_profile(path: Path, temperature: float = 0.8, **data_sliders) -> Path:
    """A one-particle sliders profile with a strong warm edit (the packaged sliders model renders it)."""
    from prefstyle.imaging.params import NEUTRAL
    from prefstyle.models.base import Profile

    vec = NEUTRAL.replace(temperature=temperature).to_vector()[None]
    sliders = {"temperature": temperature, "adaptive_brightness": 0.0, **data_sliders}
    prof = Profile(
        model="sliders",
        user="t",
        data={"sliders": sliders},
        tensors={"vectors": vec, "gains": torch.zeros(1), "weights": torch.ones(1)},
    )
    return prof.save(path)


# --------------------------------------------------------------------------------------------
# 1. usage mistakes: one line on stderr, exit 2
# --------------------------------------------------------------------------------------------

USAGE_MISTAKES = [
    ([], "command"),
    (["enhance", "x.jpg", "--out", "o"], "--profile"),  # a missing required option
    (["enhance", "x.jpg", "--profile", "p.json", "--out", "o", "--strength", "1.5"], "--strength"),
    (["enhance", "x.jpg", "--profile", "p.json", "--out", "o", "--jobs", "0"], "--jobs"),
    (["enhance", "x.jpg", "--profile", "p.json", "--out", "o", "--quality", "abc"], "--quality"),
    (["export-lut", "--profile", "p.json", "--out", "o.cube", "--size", "99"], "--size"),
    (["enhance", "x.jpg", "--profile", "p.json", "--out", "o", "--no-such-option"], "--no-such-option"),
    (["enhanse", "x.jpg"], "enhance"),
    (["lut"], "apply"),
    (["lut", "apply", "--quality", "500", "a.cube", "x.jpg", "--out", "o"], "--quality"),
]


@pytest.mark.parametrize(("argv", "needle"), USAGE_MISTAKES, ids=lambda a: " ".join(a) if isinstance(a, list) else a)
def test_usage_mistakes_are_one_line_and_exit_2(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1, lines
    assert "error" in lines[0] and needle in lines[0]


def test_console_entry_point_without_arguments_is_one_line():
    r = subprocess.run([sys.executable, "-m", "prefstyle"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "enhance" in lines[0], r.stderr


def test_misspelt_command_suggests_the_right_one(capsys):
    assert main(["enhanse"]) == 2
    assert "enhance" in _err_lines(capsys)[0]


# --------------------------------------------------------------------------------------------
# 2. file modes follow the umask
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    from prefstyle.fsutil import atomic_write_text
    from prefstyle.imaging.io import write_image

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        write_image(tmp_path / "b.png", torch.rand(3, 8, 8))
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == mode
    assert (tmp_path / "b.png").stat().st_mode & 0o777 == mode


def test_lut_apply_output_is_world_readable_under_umask_022(tmp_path):
    cube = _warm_cube(tmp_path / "w.cube")
    _photo(tmp_path / "in" / "a.jpg")
    old = os.umask(0o022)
    try:
        assert main(["lut", "apply", str(cube), str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "out" / "a.jpg").stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------------------------
# 3. alpha and grayscale survive
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 16])
def test_lut_apply_keeps_the_alpha_of_rgba_png(tmp_path, bits):
    import cv2

    rng = np.random.default_rng(1)
    dt = np.uint8 if bits == 8 else np.uint16
    top = np.iinfo(dt).max
    rgba = rng.integers(0, top + 1, size=(24, 32, 4)).astype(dt)
    rgba[:6, :6, 3] = 0
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    cube = _warm_cube(tmp_path / "w.cube")
    assert main(["lut", "apply", str(cube), str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    out = cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == dt and out.shape == (24, 32, 4)
    out = cv2.cvtColor(out, cv2.COLOR_BGRA2RGBA)
    assert np.array_equal(out[..., 3], rgba[..., 3])  # alpha written back untouched
    # the colour was retouched (warmer), not composited over white: no near-white where alpha = 0
    assert out[..., 0].astype(float).mean() > rgba[..., 0].astype(float).mean()
    assert out[..., 2].astype(float).mean() < rgba[..., 2].astype(float).mean()
    assert out[:6, :6, :3].astype(float).mean() < 0.9 * top


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_lut_apply_keeps_a_gray_photo_gray(tmp_path, suffix):
    src = _photo(tmp_path / "in" / f"g{suffix}", "L")
    cube = _warm_cube(tmp_path / "w.cube")
    assert main(["lut", "apply", str(cube), str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    im = Image.open(tmp_path / "out" / f"g{suffix}")
    assert im.mode == "L"  # one channel: no colour cast possible
    out = np.asarray(im).astype(float)
    assert abs(out.mean() - src.astype(float).mean()) < 20  # the luminance of the warm edit, not black or white


def test_enhance_keeps_alpha_and_gray(tmp_path):
    prof = _sliders_profile(tmp_path / "p.json")
    rgba = _photo(tmp_path / "in" / "a.png", "RGBA")
    _photo(tmp_path / "in" / "g.jpg", "L")
    assert main(["enhance", str(tmp_path / "in"), "--profile", str(prof), "--out", str(tmp_path / "out")]) == 0
    a = Image.open(tmp_path / "out" / "a.png")
    assert a.mode == "RGBA"
    assert np.array_equal(np.asarray(a)[..., 3], rgba[..., 3])
    g = Image.open(tmp_path / "out" / "g.jpg")
    assert g.mode == "L"


# --------------------------------------------------------------------------------------------
# 4. overwriting is explicit
# --------------------------------------------------------------------------------------------


def test_lut_apply_refuses_to_overwrite_then_force_and_skip_existing(tmp_path, capsys):
    cube = _warm_cube(tmp_path / "w.cube")
    _photo(tmp_path / "in" / "a.jpg", seed=1)
    _photo(tmp_path / "in" / "b.jpg", seed=2)
    out = tmp_path / "out"
    args = ["lut", "apply", str(cube), str(tmp_path / "in"), "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    before = (out / "a.jpg").read_bytes()
    (out / "a.jpg").write_bytes(b"someone else's file")
    assert main(args) == 2  # existing outputs: refused, nothing written
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "--force" in lines[0] and "a.jpg" in lines[0]
    assert (out / "a.jpg").read_bytes() == b"someone else's file"
    # --skip-existing: keeps what is there, does the rest
    (out / "b.jpg").unlink()
    assert main([*args, "--skip-existing"]) == 0
    assert (out / "a.jpg").read_bytes() == b"someone else's file" and (out / "b.jpg").is_file()
    assert main([*args, "--force"]) == 0
    assert (out / "a.jpg").read_bytes() == before
    assert main([*args, "--force", "--skip-existing"]) == 2


def test_same_file_name_from_two_folders_is_an_error_listing_both(tmp_path, capsys):
    cube = _warm_cube(tmp_path / "w.cube")
    _photo(tmp_path / "card1" / "IMG_0001.jpg", seed=1)
    _photo(tmp_path / "card2" / "IMG_0001.jpg", seed=2)
    out = tmp_path / "out"
    rc = main(["lut", "apply", str(cube), str(tmp_path / "card1"), str(tmp_path / "card2"), "--out", str(out)])
    assert rc == 2
    line = _err_lines(capsys)[0]
    assert "card1" in line and "card2" in line and "IMG_0001.jpg" in line
    assert not out.exists() or not any(out.iterdir())


def test_out_inside_the_input_tree_is_refused(tmp_path, capsys):
    cube = _warm_cube(tmp_path / "w.cube")
    _photo(tmp_path / "in" / "a.jpg")
    rc = main(["lut", "apply", str(cube), str(tmp_path / "in"), "--out", str(tmp_path / "in" / "styled")])
    assert rc == 2
    assert "inside the input folder" in _err_lines(capsys)[0]
    assert not (tmp_path / "in" / "styled").exists()


def test_enhance_refuses_existing_outputs_and_resumes_with_skip_existing(tmp_path, capsys):
    prof = _sliders_profile(tmp_path / "p.json")
    _photo(tmp_path / "in" / "a.jpg", seed=1)
    _photo(tmp_path / "in" / "b.jpg", seed=2)
    args = ["enhance", str(tmp_path / "in"), "--profile", str(prof), "--out", str(tmp_path / "out")]
    assert main(args) == 0
    (tmp_path / "out" / "b.jpg").unlink()
    capsys.readouterr()
    assert main(args) == 2 and "--skip-existing" in _err_lines(capsys)[0]
    assert not (tmp_path / "out" / "b.jpg").exists()
    assert main([*args, "--skip-existing"]) == 0
    assert (tmp_path / "out" / "b.jpg").is_file()


def test_personalize_refuses_to_replace_a_profile_without_force(tmp_path, capsys):
    prof = _sliders_profile(tmp_path / "p.json")
    before = prof.read_bytes()
    rc = main(["personalize", str(tmp_path / "no-data"), "--user", "u", "--out", str(prof)])
    assert rc == 2
    line = _err_lines(capsys)[0]
    assert "--force" in line and str(prof) in line
    assert prof.read_bytes() == before


# --------------------------------------------------------------------------------------------
# 5. profiles are validated on load
# --------------------------------------------------------------------------------------------


def _bad_profiles(tmp_path: Path) -> dict[str, Path]:
    from safetensors.torch import load_file, save_file

    good = _sliders_profile(tmp_path / "good.json")
    doc = json.loads(good.read_text())
    tensors = load_file(str(good.with_suffix(".safetensors")))
    out = {}

    def make(name: str, text: str, ts: dict | None = None, raw: bytes | None = None) -> None:
        p = tmp_path / f"{name}.json"
        p.write_text(text)
        if raw is not None:
            p.with_suffix(".safetensors").write_bytes(raw)
        else:
            save_file(ts if ts is not None else tensors, str(p.with_suffix(".safetensors")))
        out[name] = p

    make("no_model", json.dumps({k: v for k, v in doc.items() if k != "model"}))
    make("nan_value", good.read_text().replace('"temperature": 0.8', '"temperature": NaN'))
    make("huge_value", good.read_text().replace('"temperature": 0.8', '"temperature": 1e999'))
    make("out_of_range", good.read_text().replace('"temperature": 0.8', '"temperature": 40'))
    make("nan_tensor", good.read_text(), {**tensors, "weights": torch.tensor([float("nan")])})
    big = tensors["vectors"].clone()
    big[0, 2] = 50.0  # exposure +50 EV
    make("tensor_out_of_range", good.read_text(), {**tensors, "vectors": big})
    make("garbage_tensors", good.read_text(), raw=b"this is not a safetensors file")
    make("truncated_tensors", good.read_text(), raw=good.with_suffix(".safetensors").read_bytes()[:40])
    return out


BAD_PROFILES = [
    "no_model",
    "nan_value",
    "huge_value",
    "out_of_range",
    "nan_tensor",
    "tensor_out_of_range",
    "garbage_tensors",
    "truncated_tensors",
]


@pytest.mark.parametrize("bad", BAD_PROFILES)
def test_enhance_refuses_a_bad_profile_in_one_line_and_writes_nothing(tmp_path, capsys, bad):
    prof = _bad_profiles(tmp_path)[bad]
    _photo(tmp_path / "in" / "a.jpg")
    out = tmp_path / "out"
    assert main(["enhance", str(tmp_path / "in"), "--profile", str(prof), "--out", str(out)]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1, lines
    assert prof.stem in lines[0]  # names the file (.json or its .safetensors)
    assert not (out / "a.jpg").exists()  # never an all-black image


@pytest.mark.parametrize("bad", ["nan_tensor", "out_of_range", "no_model"])
def test_export_lut_refuses_a_bad_profile_without_traceback(tmp_path, capsys, bad):
    prof = _bad_profiles(tmp_path)[bad]
    assert main(["export-lut", "--profile", str(prof), "--out", str(tmp_path / "s.cube")]) == 2
    assert len(_err_lines(capsys)) == 1
    assert not (tmp_path / "s.cube").exists()


def test_write_like_refuses_nan_pixels_instead_of_writing_black(tmp_path):
    from prefstyle.imaging.io import read_image, write_like

    _photo(tmp_path / "a.png")
    data = read_image(tmp_path / "a.png")
    with pytest.raises(PrefstyleError, match="NaN"):
        write_like(tmp_path / "out.png", torch.full_like(data.pixels, float("nan")), data)
    assert not (tmp_path / "out.png").exists()


def test_profile_save_refuses_nan(tmp_path):
    from prefstyle.models.base import Profile

    with pytest.raises(PrefstyleError, match="NaN"):
        Profile(model="x", data={"v": float("nan")}).save(tmp_path / "p.json")
    with pytest.raises(PrefstyleError, match="NaN"):
        Profile(model="x", tensors={"t": torch.tensor([float("inf")])}).save(tmp_path / "q.json")
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "q.safetensors").exists()


# --------------------------------------------------------------------------------------------
# 6. no tracebacks: garbage weights, unwritable outputs (checked first), bad configs
# --------------------------------------------------------------------------------------------


def test_model_with_garbage_weights_is_one_line(tmp_path, capsys):
    from prefstyle.models.loading import assets_dir

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.json").write_text((assets_dir() / "pienet" / "model.json").read_text())
    _photo(tmp_path / "in" / "a.jpg")
    prof = _sliders_profile(tmp_path / "p.json")
    for content in (b"garbage", (assets_dir() / "pienet" / "model.safetensors").read_bytes()[:3000]):
        (run / "model.safetensors").write_bytes(content)
        rc = main(
            ["enhance", str(tmp_path / "in"), "--profile", str(prof), "--model", str(run), "--out", str(tmp_path / "o")]
        )
        assert rc == 2
        lines = _err_lines(capsys)
        assert len(lines) == 1 and "model.safetensors" in lines[0], lines


def test_export_lut_into_an_unwritable_place_fails_before_working(tmp_path, capsys, monkeypatch):
    import prefstyle.eval.lut_export as lut_export

    def no_work(*a, **k):
        raise AssertionError("fitted a LUT before checking the output")

    monkeypatch.setattr(lut_export, "profile_to_lut", no_work)
    prof = _sliders_profile(tmp_path / "p.json")
    (tmp_path / "file").write_text("a file, not a folder")
    assert main(["export-lut", "--profile", str(prof), "--out", str(tmp_path / "file" / "s.cube")]) == 2
    assert "file" in _err_lines(capsys)[0]


def test_lut_convert_and_personalize_into_an_unwritable_place_are_one_line(tmp_path, capsys):
    cube = _warm_cube(tmp_path / "w.cube")
    (tmp_path / "file").write_text("x")
    assert main(["lut", "convert", str(cube), str(tmp_path / "file" / "h.png")]) == 2
    assert len(_err_lines(capsys)) == 1
    assert main(["personalize", str(tmp_path), "--user", "u", "--out", str(tmp_path / "file" / "p.json")]) == 2
    assert len(_err_lines(capsys)) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused_before_work(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        cube = _warm_cube(tmp_path / "w.cube")
        assert main(["lut", "convert", str(cube), str(ro / "h.png")]) == 2
        assert "read-only" in _err_lines(capsys)[0]
    finally:
        ro.chmod(0o755)


BAD_OVERRIDES = [
    ("optim.lr=fast", "optim.lr"),
    ("optim.lr=.nan", "optim.lr"),
    ("optim.lr=-1", "optim.lr"),
    ("task.lut_size=100000", "task.lut_size"),
    ("task.hidden=-1", "task.hidden"),
    ("task.hidden=.inf", "task.hidden"),
    ("task.hiden=3", "task.hiden"),
    ("optim.lrr=1", "optim.lrr"),
    ("schedule.warmup=-1", "schedule.warmup"),
    ("steps=ten", "steps"),
]


@pytest.mark.parametrize(("override", "key"), BAD_OVERRIDES)
def test_bad_config_values_and_keys_are_refused_naming_the_key(tmp_path, override, key):
    from prefstyle.train.config import load_config

    base = {"task": {"name": "toy-affine", "hidden": 4}, "out": str(tmp_path / "run")}
    with pytest.raises(PrefstyleError) as e:
        load_config(None, [override], base=base)
    assert key in str(e.value) and "\n" not in str(e.value)


def test_unknown_nested_key_of_a_registered_model_is_refused(tmp_path):
    from prefstyle.train.config import load_config, task_option_keys

    keys = task_option_keys("upe")
    assert keys is not None and "d_model" in keys
    with pytest.raises(PrefstyleError, match="did you mean task.d_model"):
        load_config(Path(__file__).parent.parent / "configs" / "upe.yaml", ["task.d_modle=3", f"out={tmp_path / 'r'}"])


@pytest.mark.parametrize(
    "config", sorted((Path(__file__).parent.parent / "configs").glob("*.yaml")), ids=lambda p: p.name
)
def test_shipped_configs_pass_the_checks(config, tmp_path):
    from prefstyle.train.config import load_config

    load_config(config, [f"out={tmp_path / 'r'}"])


def test_train_into_an_unwritable_place_and_garbage_resume_are_one_line(tmp_path, capsys):
    cfg = tmp_path / "toy.yaml"
    (tmp_path / "file").write_text("x")
    cfg.write_text("task: {name: toy-affine, hidden: 4}\nsteps: 4\nbatch_size: 4\nthreads: 1\nval_every: 0\n")
    assert main(["train", str(cfg), f"out={tmp_path / 'file' / 'run'}", "-q"]) == 2
    assert len(_err_lines(capsys)) == 1
    run = tmp_path / "run"
    assert main(["train", str(cfg), f"out={run}", "--stop-after", "2", "-q"]) == 0
    capsys.readouterr()
    from prefstyle.train.checkpoint import latest_checkpoint

    (latest_checkpoint(run) / "train_state.safetensors").write_bytes(b"\x00" * 20)
    assert main(["train", str(cfg), f"out={run}", "--resume", "-q"]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "train_state.safetensors" in lines[-1], lines


# --------------------------------------------------------------------------------------------
# 7. Hald CLUT bombs are refused from the header
# --------------------------------------------------------------------------------------------


def _png_header_only(path: Path, w: int, h: int) -> None:
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    idat = zlib.compress(b"\x00" * (w * 3 + 1) * 4)  # a few rows; the header claims many more
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def test_hald_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    import prefstyle.imaging.lut_io as lut_io

    def no_decode(path):
        raise AssertionError("decoded the pixels of a file whose header already says it is no Hald CLUT")

    monkeypatch.setattr(lut_io, "_decode_image", no_decode)
    for w, h in ((20000, 20000), (4097, 4097), (512, 4096)):
        p = tmp_path / f"bomb{w}x{h}.png"
        _png_header_only(p, w, h)
        with pytest.raises(PrefstyleError, match="Hald"):
            lut_io.read_hald(p)


# --------------------------------------------------------------------------------------------
# 8. --resume drops the steps a killed run logged after its checkpoint
# --------------------------------------------------------------------------------------------


def test_resume_drops_metrics_logged_after_the_checkpoint(tmp_path):
    from prefstyle.train import Trainer, load_config, read_metrics
    from prefstyle.train.logger import MetricsLogger

    doc = {
        "task": {"name": "toy-affine", "hidden": 4},
        "steps": 12,
        "batch_size": 4,
        "threads": 1,
        "log_every": 1,
        "val_every": 0,
        "ckpt_every": 0,
        "out": str(tmp_path / "run"),
    }
    cfg = load_config(None, None, base=doc)
    Trainer(cfg, stop_after=6, progress=False, tensorboard=False).run()
    with open(tmp_path / "run" / "metrics.jsonl", "a", encoding="utf-8") as f:  # a kill after more steps
        for step in (7, 8, 9):
            f.write(json.dumps({"step": step, "split": "train", "loss": 123.0}) + "\n")
        f.write('{"step": 10, "spl')  # torn by the kill
    Trainer(cfg, resume=True, progress=False, tensorboard=False).run()
    steps = [r["step"] for r in read_metrics(tmp_path / "run", "train")]
    assert steps == sorted(set(steps)) and steps[-1] == 12  # each step once, in order
    assert all(r.get("loss") != 123.0 for r in read_metrics(tmp_path / "run"))

    seen = {}

    class Writer:
        def __init__(self, log_dir, purge_step=None):
            seen["purge_step"] = purge_step

        def close(self):
            pass

    import torch.utils.tensorboard as tb

    orig = tb.SummaryWriter
    tb.SummaryWriter = Writer
    try:
        MetricsLogger(tmp_path / "run", tensorboard=True, resume_step=6).close()
    finally:
        tb.SummaryWriter = orig
    assert seen["purge_step"] == 7  # TensorBoard drops the events of steps > 6


def test_demo_refuses_an_unknown_crowd_before_any_work(tmp_path, capsys):
    from prefstyle.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--tastes", "bogus", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tastes" in err[0]
    assert not out.exists()
