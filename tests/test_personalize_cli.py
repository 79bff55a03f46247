"""`personalize` and `enhance` (docs/FORMATS.md section 2) with a tiny trained PieNet and a reference model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from _pienet_data import make_pairs_dataset, photo, tiny_pienet_config
from PIL import Image
from typer.testing import CliRunner

from prefstyle.cli.personalize_cmd import enhance, personalize
from prefstyle.errors import PrefstyleError
from prefstyle.imaging.io import read_image, srgb_icc_profile, write_image

app = typer.Typer()
app.command("personalize")(personalize)
app.command("enhance")(enhance)


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny PieNet checkpoint, a second one with other weights, and a pairs dataset."""
    from prefstyle.train import Trainer

    root = tmp_path_factory.mktemp("pcli")
    data = make_pairs_dataset(root / "data", users=3, scenes=4)
    Trainer(tiny_pienet_config(root / "run", steps=4), progress=False).run()
    Trainer(tiny_pienet_config(root / "run2", steps=4, seed=7), progress=False).run()
    return {"root": root, "data": data, "run": root / "run", "run2": root / "run2"}


@pytest.fixture()
def photos(tmp_path):
    """A 16-bit PNG with an sRGB ICC profile and a JPEG with EXIF, larger than the render size."""
    src = tmp_path / "in"
    x = photo(0, 96)[0, :, :, :80]  # 96 x 80, non-square
    write_image(src / "a16.png", x, bit_depth=16, icc=srgb_icc_profile())
    arr = (photo(2, 64)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x010F] = "PrefstyleTestCam"
    Image.fromarray(arr).save(src / "b.jpg", exif=exif.tobytes(), quality=95)
    return src


def test_personalize_then_enhance_keeps_resolution_depth_exif_and_icc(trained, photos, tmp_path):
    prof = tmp_path / "me.json"
    r = invoke(
        "personalize", trained["data"], "--user", "u0@laptop", "--refs", "3", "--model", trained["run"], "--out", prof
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(prof.read_text())
    assert doc["model"] == "pienet" and doc["user"] == "u0@laptop" and doc["tensors"] == ["preference"]
    assert doc["data"]["n_references"] == 3 and doc["model_config"]["source"] == str(trained["run"].resolve())
    assert prof.with_suffix(".safetensors").is_file()

    out = tmp_path / "out"
    r = invoke("enhance", photos, "--profile", prof, "--out", out)  # --model taken from the profile
    assert r.exit_code == 0, r.output
    a_in, a_out = read_image(photos / "a16.png"), read_image(out / "a16.png")
    assert a_out.pixels.shape == a_in.pixels.shape == (3, 96, 80)
    assert a_out.bit_depth == 16 and a_out.icc is not None
    b_out = read_image(out / "b.jpg")
    assert b_out.pixels.shape == (3, 64, 64)
    assert Image.open(out / "b.jpg").getexif().get(0x010F) == "PrefstyleTestCam"


def test_personalize_with_the_default_model_says_the_taste_in_slider_words(trained, photos, tmp_path):
    """The default (sliders) prints the posterior's sliders and how far brightness follows the photo;
    enhance renders each photo through its own LUT."""
    from prefstyle.train.loading import DEFAULT_MODEL

    if DEFAULT_MODEL != "sliders":
        pytest.skip("the default model is not sliders")
    prof = tmp_path / "me.json"
    r = invoke("personalize", trained["data"], "--user", "u0@laptop", "--refs", "8", "--out", prof)
    assert r.exit_code == 0, r.output
    assert "your sliders:" in r.output and "brightness follows the photo" in r.output
    doc = json.loads(prof.read_text())
    assert (
        doc["model"] == "sliders"
        and "gains" in doc["tensors"]
        and 0 <= doc["data"]["sliders"]["adaptive_brightness"] <= 1
    )
    out = tmp_path / "out"
    r = invoke("enhance", photos, "--profile", prof, "--out", out)
    assert r.exit_code == 0, r.output
    assert read_image(out / "b.jpg").pixels.shape == (3, 64, 64)


def test_enhance_skips_unreadable_files_and_refuses_to_overwrite_inputs(trained, photos, tmp_path):
    prof = tmp_path / "p.json"
    assert (
        invoke(
            "personalize", trained["data"], "--user", "u1@laptop", "--model", trained["run"], "--out", prof
        ).exit_code
        == 0
    )
    (photos / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "o"
    r = invoke("enhance", photos, "--profile", prof, "--out", out)
    assert r.exit_code == 1
    assert "broken.png" in r.output and (out / "a16.png").is_file() and (out / "b.jpg").is_file()
    r = invoke("enhance", photos / "b.jpg", "--profile", prof, "--out", photos)
    assert isinstance(r.exception, PrefstyleError) and "overwrite" in str(r.exception)


def test_profiles_of_other_models_are_refused(trained, tmp_path):
    p_id = tmp_path / "id.json"
    assert (
        invoke("personalize", trained["data"], "--user", "u0@laptop", "--model", "identity", "--out", p_id).exit_code
        == 0
    )
    img = tmp_path / "x.png"
    write_image(img, photo(1, 32)[0])
    r = invoke("enhance", img, "--profile", p_id, "--out", tmp_path / "o1", "--model", trained["run"])
    assert isinstance(r.exception, PrefstyleError) and "identity" in str(r.exception)
    # identity's profile works with identity (the model recorded in the profile)
    assert invoke("enhance", img, "--profile", p_id, "--out", tmp_path / "o2").exit_code == 0
    assert np.allclose(read_image(tmp_path / "o2" / "x.png").pixels, read_image(img).pixels)
    # a PieNet profile with another PieNet checkpoint
    p_a = tmp_path / "a.json"
    assert (
        invoke("personalize", trained["data"], "--user", "u0@laptop", "--model", trained["run"], "--out", p_a).exit_code
        == 0
    )
    r = invoke("enhance", img, "--profile", p_a, "--out", tmp_path / "o3", "--model", trained["run2"])
    assert isinstance(r.exception, PrefstyleError) and "another PieNet checkpoint" in str(r.exception)


def test_personalize_errors(trained, tmp_path):
    r = invoke("personalize", trained["data"], "--user", "nobody", "--model", "identity", "--out", tmp_path / "p")
    assert isinstance(r.exception, PrefstyleError) and "unknown user" in str(r.exception)
    r = invoke("personalize", trained["data"], "--user", "u0@laptop", "--model", "usd", "--out", tmp_path / "p")
    assert isinstance(r.exception, PrefstyleError) and "needs training" in str(r.exception)
    r = invoke("personalize", trained["data"], "--user", "u0@laptop", "--refs", "-1", "--out", tmp_path / "p")
    assert isinstance(r.exception, PrefstyleError)


def test_evaluate_takes_trained_run_folders_and_their_cards(trained, tmp_path):
    from prefstyle.cli.evaluate_cmd import evaluate

    ev = typer.Typer()
    ev.command("evaluate")(evaluate)
    ev.command("noop")(lambda: None)  # a second command keeps `evaluate` as a named sub-command
    out = tmp_path / "ev"
    r = CliRunner().invoke(
        ev,
        [
            "evaluate",
            str(trained["data"]),
            "-m",
            str(trained["run"]),
            "-m",
            str(trained["run2"] / "model.json"),
            "-m",
            "identity",
            "--refs",
            "2",
            "--evals",
            "2",
            "--users-split",
            "all",
            "--metrics",
            "delta_e00",
            "--out",
            str(out),
            "--no-report",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    models = json.loads((out / "results.json").read_text())["models"]
    assert set(models) == {"run", "run2", "identity"}
    r = CliRunner().invoke(
        ev, ["evaluate", str(trained["data"]), "-m", str(tmp_path / "empty_run/"), "--out", str(out), "--no-progress"]
    )
    assert r.exit_code != 0


def test_personalize_from_liked_photos(trained, photos, tmp_path):
    prof = tmp_path / "liked.json"
    (photos / "notes.txt").write_text("not a photo")
    r = invoke("personalize", "--liked", photos, "--model", trained["run"], "--out", prof)
    assert r.exit_code == 0, r.output
    doc = json.loads(prof.read_text())
    assert doc["model"] == "pienet" and doc["data"]["n_liked"] == 2 and doc["user"] == "in"
    # the preference is the normalised mean embedding of the liked photos (scheme 2)
    from prefstyle.models.base import Profile
    from prefstyle.train import load_model

    m = load_model(trained["run"])
    p = Profile.load(prof).tensors["preference"]
    assert abs(float(p.norm()) - 1) < 1e-4
    out = tmp_path / "o"
    assert invoke("enhance", photos, "--profile", prof, "--out", out).exit_code == 0
    assert (out / "a16.png").is_file()
    # models that learn only from pairs refuse, and DATA and --liked are exclusive
    r = invoke("personalize", "--liked", photos, "--model", "identity", "--out", tmp_path / "x.json")
    assert isinstance(r.exception, PrefstyleError) and "liked" in str(r.exception)
    r = invoke("personalize", trained["data"], "--liked", photos, "--out", tmp_path / "y.json")
    assert isinstance(r.exception, PrefstyleError)
    assert m.name == "pienet"


def test_enhance_strength_and_parallel_jobs(trained, photos, tmp_path):
    prof = tmp_path / "s.json"
    assert (
        invoke(
            "personalize",
            trained["data"],
            "--user",
            "u0@laptop",
            "--refs",
            "3",
            "--model",
            trained["run"],
            "--out",
            prof,
        ).exit_code
        == 0
    )
    full, none, half = tmp_path / "full", tmp_path / "none", tmp_path / "half"
    assert invoke("enhance", photos, "--profile", prof, "--out", full, "--jobs", "2").exit_code == 0
    assert invoke("enhance", photos, "--profile", prof, "--out", none, "--strength", "0").exit_code == 0
    assert invoke("enhance", photos, "--profile", prof, "--out", half, "--strength", "0.5").exit_code == 0
    x = read_image(photos / "a16.png").pixels
    y1, y0, yh = (read_image(d / "a16.png").pixels for d in (full, none, half))
    assert float((y0 - x).abs().max()) < 1.0 / 65535 + 1e-6  # strength 0: the input, to 16-bit rounding
    assert float((y1 - x).abs().mean()) > 1e-3
    assert float((yh - (x + y1) / 2).abs().max()) < 2.0 / 65535
    r = invoke("enhance", photos, "--profile", prof, "--out", tmp_path / "bad", "--strength", "1.5")
    assert r.exit_code != 0


@pytest.mark.slow
def test_enhance_a_24_megapixel_photo_with_the_default_model(tmp_path):
    """A 6000x4000 JPEG through `enhance` with the shipped default model: same size, 8-bit, EXIF kept."""
    import torch

    from prefstyle.models.base import Reference
    from prefstyle.train import load_model
    from prefstyle.train.loading import DEFAULT_MODEL, packaged_models

    if DEFAULT_MODEL not in packaged_models():
        pytest.skip("the default model's weights are not packaged")
    big = torch.nn.functional.interpolate(photo(0, 400), size=(4000, 6000), mode="bilinear", align_corners=False)
    arr = (big[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x010F] = "PrefstyleTestCam"
    (tmp_path / "in").mkdir()
    Image.fromarray(arr).save(tmp_path / "in" / "big.jpg", exif=exif.tobytes(), quality=90)
    m = load_model(DEFAULT_MODEL)
    x = photo(1, 128)[0]
    prof = m.personalize([Reference(scene="s", preferred=(x * 1.2).clamp(0, 1), other=x * 0.7, source=x)], "u")
    prof.model_config = {**prof.model_config, "source": DEFAULT_MODEL}
    p = prof.save(tmp_path / "me.json")
    r = invoke("enhance", tmp_path / "in", "--profile", p, "--out", tmp_path / "out")
    assert r.exit_code == 0, r.output
    out = read_image(tmp_path / "out" / "big.jpg")
    assert out.pixels.shape == (3, 4000, 6000) and out.bit_depth == 8
    assert Image.open(tmp_path / "out" / "big.jpg").getexif().get(0x010F) == "PrefstyleTestCam"


def test_personalize_checks_only_the_users_image_files(trained, tmp_path):
    """A missing image of another user does not stop personalize; one of this user's is a one-line error."""
    import shutil

    from prefstyle.data.pairs import PairsDataset

    data = tmp_path / "data"
    shutil.copytree(trained["data"], data)
    ds = PairsDataset.load(data)
    mine = ds.references("u0@laptop", 1)  # --refs 1 reads these images only
    used = {p for j in mine for p in (j.image_a, j.image_b)}
    spare = next(p for j in ds.judgments for p in (j.image_a, j.image_b) if p not in used)
    (data / spare).unlink()
    args = ("--user", "u0@laptop", "--refs", "1", "--model", "identity")
    r = invoke("personalize", data, *args, "--out", tmp_path / "p.json")
    assert r.exit_code == 0, r.output
    (data / mine[0].image_b).unlink()
    r = invoke("personalize", data, *args, "--out", tmp_path / "q.json")
    assert isinstance(r.exception, PrefstyleError)
    assert "does not exist" in str(r.exception) and str(r.exception.path) == str(data / "judgments.jsonl")
