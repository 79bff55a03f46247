"""The looks crowd: tastes are library looks, disjoint look families per split, a self-contained
dataset whose ground truth renders, and the oracle / bayes reference points on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from prefstyle.data.looks_crowd import (
    LookTaste,
    landscape_weight,
    split_families,
    synthetic_looks,
)
from prefstyle.data.pairs import PairsDataset
from prefstyle.data.simulate import (
    SimulationConfig,
    load_ground_truth,
    simulate_dataset,
)
from prefstyle.eval.protocol import load_references
from prefstyle.imaging.color import delta_e_2000_rgb
from prefstyle.imaging.io import load_image
from prefstyle.models.base import create_model

TINY: dict = dict(  # noqa: C408
    users=16,
    scenes=10,
    renditions=4,
    size=48,
    thumb=24,
    main=24,
    consistency=4,
    careless_fraction=0.2,
    photos="packages",
    workers=1,
)


@pytest.fixture(scope="module")
def looks_ds(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("looks")
    lib = synthetic_looks(families=4, per_family=5, size=9, seed=0).save(tmp / "lib" / "looks.json")
    out = tmp / "ds"
    simulate_dataset(SimulationConfig(seed=2, tastes="looks", looks=str(lib), **TINY), out, progress=False)
    return out


def test_ground_truth_renders_and_families_are_disjoint(looks_ds: Path):
    gt = json.loads((looks_ds / "ground_truth.json").read_text())
    meta = json.loads((looks_ds / "dataset.json").read_text())
    fams = gt["looks"]["families"]
    assert meta["look_families"] == fams
    assert set(fams) == {"train", "val", "test"}
    assert not (set(fams["train"]) & set(fams["test"])) and not (set(fams["val"]) & set(fams["test"]))
    assert (looks_ds / "looks.json").is_file() and (looks_ds / "looks.safetensors").is_file()

    users = load_ground_truth(looks_ds)
    splits = json.loads((looks_ds / "splits.json").read_text())
    assert sorted(u for v in splits.values() for u in v) == sorted(users)
    for split, ids in splits.items():
        for u in ids:
            taste = users[u].person.taste
            assert isinstance(taste, LookTaste)
            assert all(name.split("/")[0] in fams[split] for name in taste.looks)
    x = torch.rand(2, 3, 16, 16)
    some = users[splits["train"][0]]
    y = some.ideal(x)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert float(delta_e_2000_rgb(y, x).mean()) > 0.5  # the ideal is an edit, not the input


def test_statistics_and_filters_written(looks_ds: Path):
    st = json.loads((looks_ds / "dataset.json").read_text())["statistics"]
    assert 0.5 < st["agreement_attentive"] <= 1.0  # attentive people mostly pick the rendition nearer their ideal
    assert 0.0 <= st["source_closer_than_preferred"] <= 1.0
    assert set(st["source_closer_by_origin"]) <= {"A", "B", "D", "E"}
    f = st["filters"]
    assert f["users"] == TINY["users"] and 0 < f["kept"] <= f["users"]
    assert sum(f["kept_per_split"].values()) == f["kept"]


def test_same_seed_same_bytes(looks_ds: Path, tmp_path: Path):
    lib = looks_ds.parent / "lib" / "looks.json"
    again = tmp_path / "again"
    simulate_dataset(SimulationConfig(seed=2, tastes="looks", looks=str(lib), **TINY), again, progress=False)
    for name in ("judgments.jsonl", "splits.json", "images/s0003/source.png"):
        assert (again / name).read_bytes() == (looks_ds / name).read_bytes()


def test_slider_ground_truth_config_unchanged(tmp_path: Path):
    cfg = SimulationConfig(
        seed=1, users=3, scenes=2, renditions=2, size=32, thumb=16, main=4, consistency=1, photos="packages", workers=1
    )
    simulate_dataset(cfg, tmp_path / "s", progress=False)
    doc = json.loads((tmp_path / "s" / "ground_truth.json").read_text())
    assert "tastes" not in doc["config"] and "looks" not in doc["config"]


def test_split_families_needs_three_and_covers_all():
    lib = synthetic_looks(families=5, per_family=2, size=5)
    sp = split_families(lib, (0.6, 0.2, 0.2), seed=0)
    assert sorted(f for v in sp.values() for f in v) == lib.families()
    assert all(sp[s] for s in ("train", "val", "test"))
    with pytest.raises(Exception, match="at least 3"):
        split_families(synthetic_looks(families=2, per_family=2, size=5), (0.6, 0.2, 0.2), seed=0)


def test_landscape_weight_separates_green_from_grey():
    green = torch.zeros(1, 3, 8, 8)
    green[:, 1] = 0.6
    green[:, 0] = 0.2
    grey = torch.full((1, 3, 8, 8), 0.5)
    assert float(landscape_weight(green)) == 1.0 and float(landscape_weight(grey)) == 0.0


def test_oracle_and_bayes_on_the_looks_crowd(looks_ds: Path):
    ds = PairsDataset.load(looks_ds)
    gt = load_ground_truth(looks_ds)
    oracle = create_model("oracle", ground_truth=looks_ds)
    bayes = create_model("bayes", ground_truth=looks_ds, particles=8, seed=0)
    assert type(bayes).__name__ == "LooksBayesModel" and bayes.reference_point and oracle.reference_point
    users = [u for u in ds.users() if not gt[u].person.careless][:3]
    srcs = torch.cat([load_image(ds.image_path(sc.source)) for sc in list(ds.scenes.values())[:4]])
    d_bayes, d_id = [], []
    for u in users:
        prof = oracle.personalize([], u)
        assert "look_tables" in prof.tensors
        assert float((oracle.render(srcs, prof) - gt[u].ideal(srcs)).abs().max()) < 1e-5
        refs = load_references(ds, [j for j in ds.by_user(u) if j.kind == "main"][:16])
        post = bayes.personalize(refs, u)
        assert post.data["ess"] < 0.5 * post.data["n_particles"]  # the answers are informative
        assert sum(p["weight"] for p in post.data["particles"]) == pytest.approx(1.0)
        ideal = gt[u].ideal(srcs)
        d_bayes.append(float(delta_e_2000_rgb(bayes.render(srcs, post), ideal).mean()))
        d_id.append(float(delta_e_2000_rgb(srcs, ideal).mean()))
    assert sum(d_bayes) < sum(d_id)


def test_crowd_overrides_reach_the_ground_truth_and_bad_ones_fail(tmp_path: Path):
    from prefstyle.data.looks_crowd import LooksCrowdConfig
    from prefstyle.errors import PrefstyleError

    cfg = LooksCrowdConfig.from_overrides(["content_fraction=0", "strength=1,1", "edit_fraction=0"])
    assert cfg.content_fraction == 0.0 and cfg.strength == (1.0, 1.0) and cfg.edit_fraction == 0.0
    assert cfg.gain == LooksCrowdConfig().gain  # untouched keys keep their defaults
    for bad, word in [
        ("nope=1", "KEY=VALUE"),
        ("strength=1", "takes 2 numbers"),
        ("gain=a,b", "not a number"),
        ("edit_fraction=2", "[0, 1]"),
        ("family_fractions=0.5,0.5,0.5", "sum to 1"),
    ]:
        with pytest.raises(PrefstyleError, match=word.replace("[", r"\[").replace("]", r"\]")):
            LooksCrowdConfig.from_overrides([bad])

    lib = synthetic_looks(families=4, per_family=5, size=9, seed=0).save(tmp_path / "lib" / "looks.json")
    overrides = ("content_fraction=0", "edit_fraction=0", "strength=1,1")
    cfg_sim = SimulationConfig(seed=2, tastes="looks", looks=str(lib), crowd=overrides, **TINY)
    simulate_dataset(cfg_sim, tmp_path / "ds", progress=False)
    gt = json.loads((tmp_path / "ds" / "ground_truth.json").read_text())
    assert gt["looks_crowd"]["content_fraction"] == 0.0 and gt["looks_crowd"]["strength"] == [1.0, 1.0]
    people = list(gt["users"])
    assert people and all(len(u["person"]["taste"]["looks"]) == 1 for u in people)
    with pytest.raises(PrefstyleError, match="looks crowd"):
        simulate_dataset(SimulationConfig(seed=2, crowd=overrides, **TINY), tmp_path / "sl", progress=False)


def test_origins_and_raw_looks_shape_the_renditions(tmp_path: Path):
    from prefstyle.data.simulate import parse_origins
    from prefstyle.errors import PrefstyleError

    assert parse_origins("A=1") == {"A": 1.0} and parse_origins("a=0.5,D=0.5") == {"A": 0.5, "D": 0.5}
    for bad in ("Q=1", "A", "A=x", "A=-1"):
        with pytest.raises(PrefstyleError, match="TYPE=SHARE"):
            parse_origins(bad)
    with pytest.raises(PrefstyleError, match="positive sum"):
        SimulationConfig(origins={"A": 0.0})

    lib = synthetic_looks(families=4, per_family=5, size=9, seed=0).save(tmp_path / "lib" / "looks.json")
    cfg = SimulationConfig(
        seed=2, tastes="looks", looks=str(lib), origins={"A": 1.0}, crowd=("raw_look_fraction=1",), **TINY
    )
    simulate_dataset(cfg, tmp_path / "ds", progress=False)
    ds = PairsDataset.load(tmp_path / "ds")
    assert {sc.origin for sc in ds.scenes.values()} == {"A"}
    import numpy as np

    from prefstyle.data.looks import load_looks
    from prefstyle.data.looks_crowd import LookSource
    from prefstyle.imaging.params import NEUTRAL

    scene = torch.rand(1, 3, 16, 16)
    for raw, neutral in ((1.0, True), (0.0, False)):
        _, params = LookSource(load_looks(lib), "A", None, raw).render(scene, np.random.default_rng(0), 4, "s")
        assert all((p["correction"] == NEUTRAL.to_dict()) == neutral for p in params)


def test_cam16ucs_distance_is_a_colour_difference():
    from prefstyle.data.crowd import cam16ucs_distance

    g = torch.Generator().manual_seed(0)
    a = torch.rand(6, 3, 12, 12, generator=g)
    assert torch.allclose(cam16ucs_distance(a, a), torch.zeros(6))
    warmer = a.clone()
    warmer[:, 0] = (warmer[:, 0] * 1.15).clamp(0, 1)
    d = cam16ucs_distance(a, warmer)
    assert torch.allclose(d, cam16ucs_distance(warmer, a), atol=1e-4) and (d > 0.5).all()
    # the same order of magnitude as CIEDE2000 on the same pairs, but not the same numbers
    de = delta_e_2000_rgb(a, warmer).mean(dim=(-2, -1))
    assert (d / de).min() > 0.5 and (d / de).max() < 2.0 and not torch.allclose(d, de, rtol=0.05)


def test_metric_changes_only_the_choices(tmp_path: Path):
    from prefstyle.data.crowd import Person
    from prefstyle.data.looks_crowd import LooksCrowdConfig
    from prefstyle.errors import PrefstyleError

    assert LooksCrowdConfig.from_overrides(["metric=cam16ucs"]).metric == "cam16ucs"
    with pytest.raises(PrefstyleError, match="metric is one of de2000, cam16ucs"):
        LooksCrowdConfig.from_overrides(["metric=ssim"])
    with pytest.raises(ValueError, match="unknown perceived metric"):
        Person(id="p", taste=None, metric="ssim")  # type: ignore[arg-type]

    lib = synthetic_looks(families=4, per_family=5, size=9, seed=0).save(tmp_path / "lib" / "looks.json")
    runs = {}
    for metric in ("de2000", "cam16ucs"):
        cfg = SimulationConfig(seed=2, tastes="looks", looks=str(lib), crowd=(f"metric={metric}",), **TINY)
        simulate_dataset(cfg, tmp_path / metric, progress=False)
        runs[metric] = [json.loads(line) for line in (tmp_path / metric / "judgments.jsonl").read_text().splitlines()]
    gt = json.loads((tmp_path / "cam16ucs" / "ground_truth.json").read_text())
    assert gt["looks_crowd"]["metric"] == "cam16ucs"
    assert {u["person"].get("metric") for u in gt["users"]} == {"cam16ucs"}
    plain = json.loads((tmp_path / "de2000" / "ground_truth.json").read_text())
    assert all("metric" not in u["person"] for u in plain["users"])  # the default is not written per person
    a, b = runs["de2000"], runs["cam16ucs"]
    key = ("user", "scene", "image_a", "image_b", "kind")
    assert [[j.get(k) for k in key] for j in a] == [[j.get(k) for k in key] for j in b]  # same people, same pairs
    differ = sum(x["preferred"] != y["preferred"] for x, y in zip(a, b, strict=True))
    assert 0 < differ < 0.25 * len(a)  # the metrics mostly agree, and not everywhere


def test_meters_read_a_photo_differently_and_change_only_the_exposures(tmp_path: Path):
    from prefstyle.data.looks_crowd import LooksCrowdConfig, exposure_ev
    from prefstyle.errors import PrefstyleError

    img = torch.full((1, 3, 32, 32), 0.2)
    img[..., :4, :] = 1.0  # a small bright sky over a dark scene: the mean is pulled up, the median not
    ev = {m: float(exposure_ev(img, 0.18, 0.5, m)[0]) for m in ("mean", "median", "log_mean")}
    assert ev["mean"] < ev["log_mean"] < ev["median"]  # brighter readings ask for less exposure
    flat = torch.full((2, 3, 16, 16), 0.4)
    assert torch.allclose(exposure_ev(flat, 0.18, 0.7, "median"), exposure_ev(flat, 0.18, 0.7, "mean"), atol=1e-5)
    with pytest.raises(ValueError, match="unknown meter"):
        exposure_ev(img, 0.18, 1.0, "spot")
    with pytest.raises(PrefstyleError, match="meter is one of mean, median, log_mean"):
        LooksCrowdConfig.from_overrides(["meter=spot"])

    lib = synthetic_looks(families=4, per_family=5, size=9, seed=0).save(tmp_path / "lib" / "looks.json")
    for meter in ("mean", "median"):
        cfg = SimulationConfig(seed=2, tastes="looks", looks=str(lib), crowd=(f"meter={meter}",), **TINY)
        simulate_dataset(cfg, tmp_path / meter, progress=False)
    people = {m: load_ground_truth(tmp_path / m) for m in ("mean", "median")}
    assert people["mean"].keys() == people["median"].keys()
    u_mean, u_median = next(iter(people["mean"].values())), people["median"][next(iter(people["mean"]))]
    assert u_median.person.taste.meter == "median" and u_mean.person.taste.meter == "mean"
    assert u_median.person.taste.looks == u_mean.person.taste.looks  # the same person, read otherwise
    assert not torch.allclose(u_median.ideal(img), u_mean.ideal(img), atol=1e-3)


def test_ground_truth_with_an_unknown_metric_or_meter_is_a_one_line_error(looks_ds: Path, tmp_path: Path):
    import shutil

    from prefstyle.errors import PrefstyleError

    for key, where in (("metric", "person"), ("meter", "taste")):
        ds = tmp_path / key
        shutil.copytree(looks_ds, ds)
        gt = json.loads((ds / "ground_truth.json").read_text())
        person = gt["users"][0]["person"]
        (person if where == "person" else person["taste"])[key] = "ssim"
        (ds / "ground_truth.json").write_text(json.dumps(gt))
        with pytest.raises(
            PrefstyleError, match=f"malformed user entry.*unknown {key if key == 'meter' else 'perceived metric'}"
        ) as e:
            load_ground_truth(ds)
        assert e.value.path == str(ds / "ground_truth.json") and "\n" not in str(e.value)


def test_crowds_written_before_the_levels_stretch_are_read_without_it(looks_ds: Path, tmp_path: Path):
    """A ground truth that predates the levels stretch (no ``levels_stretch`` record, no per-origin
    statistics) must give its people the ideals they answered with: no stretch, for the oracle and
    for bayes too. One that records the setting is read as recorded."""
    import shutil

    from prefstyle.data.looks_crowd import LooksCrowdConfig, crowd_settings
    from prefstyle.errors import PrefstyleError

    gt_now = json.loads((looks_ds / "ground_truth.json").read_text())
    assert gt_now["looks_crowd"]["levels_stretch"] is True and crowd_settings(gt_now).levels_stretch
    legacy = tmp_path / "legacy"
    shutil.copytree(looks_ds, legacy)
    gt = json.loads((legacy / "ground_truth.json").read_text())
    del gt["looks_crowd"]["levels_stretch"]
    assert crowd_settings(gt).levels_stretch  # the per-origin statistics say: written after the stretch
    del gt["statistics"]["source_closer_by_origin"]
    assert not crowd_settings(gt).levels_stretch
    (legacy / "ground_truth.json").write_text(json.dumps(gt))

    now, old = load_ground_truth(looks_ds), load_ground_truth(legacy)
    user = next(u for u in now if now[u].person.taste.brightness_gain > 0.3)
    assert now[user].person.taste.levels and not old[user].person.taste.levels
    flat = 0.3 + 0.4 * torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))  # a flat photo
    stretched, plain = now[user].ideal(flat), old[user].ideal(flat)
    assert float((stretched - plain).abs().mean()) > 0.01  # the stretch moves a flat photo's ideal
    assert float(plain.max() - plain.min()) < float(stretched.max() - stretched.min())
    oracle = create_model("oracle", ground_truth=legacy)
    assert torch.allclose(oracle.render(flat, oracle.personalize([], user)), plain.clamp(0, 1), atol=1e-6)
    assert LookTaste.from_dict(old[user].person.taste.to_dict(), tables=old[user].person.taste.luts()).levels is False
    assert not create_model("bayes", ground_truth=legacy, particles=8).crowd.levels_stretch
    assert create_model("bayes", ground_truth=looks_ds, particles=8).crowd.levels_stretch

    assert LooksCrowdConfig.from_overrides(["levels_stretch=0"]).levels_stretch is False
    with pytest.raises(PrefstyleError, match="levels_stretch is 1 or 0"):
        LooksCrowdConfig.from_overrides(["levels_stretch=maybe"])
    gt["users"][0]["person"]["taste"]["levels"] = "no"
    (legacy / "ground_truth.json").write_text(json.dumps(gt))
    with pytest.raises(PrefstyleError, match=r"malformed user entry.*levels must be true or false"):
        load_ground_truth(legacy)


def test_the_ground_truth_check_passes_fresh_crowds_and_catches_a_changed_generator(looks_ds: Path, tmp_path: Path):
    """Fresh crowds (looks and sliders) are explained by their ground truth; one whose ideals no
    longer are the ones its people answered with (here: the levels stretch switched on for a crowd
    made without it) fails the check, and `evaluate` / `data validate` refuse it with one line."""
    import shutil

    from typer.testing import CliRunner

    from prefstyle.cli import app
    from prefstyle.data.truth_check import Z_LIMIT, ground_truth_fit

    sliders = tmp_path / "sliders"
    simulate_dataset(SimulationConfig(seed=3, **TINY), sliders, progress=False)
    no_stretch = tmp_path / "no_stretch"
    cfg = SimulationConfig(
        seed=2, tastes="looks", looks=str(looks_ds / "looks.json"), crowd=("levels_stretch=0",), **TINY
    )
    simulate_dataset(cfg, no_stretch, progress=False)
    for root in (looks_ds, sliders, no_stretch):
        stamp = json.loads((root / "ground_truth.json").read_text())["made_by"]
        assert stamp["prefstyle"] and "commit" in stamp
        fit = ground_truth_fit(root)
        assert fit.n > 200 and fit.explains and abs(fit.z) < 4, (root, fit)

    changed = tmp_path / "changed"
    shutil.copytree(no_stretch, changed)
    gt = json.loads((changed / "ground_truth.json").read_text())
    gt["looks_crowd"]["levels_stretch"] = True
    for u in gt["users"]:
        u["person"]["taste"].pop("levels", None)
    (changed / "ground_truth.json").write_text(json.dumps(gt))
    fit = ground_truth_fit(changed)
    assert not fit.explains and fit.z < Z_LIMIT and fit.agreement < fit.expected_agreement

    runner = CliRunner()
    res = runner.invoke(app, ["data", "validate", str(changed)])
    assert res.exit_code == 1 and "does NOT explain the recorded answers" in res.output
    assert "made by prefstyle" in res.output  # the code that made the crowd, to make it again
    assert runner.invoke(app, ["data", "validate", str(no_stretch)]).exit_code == 0
    args = ["evaluate", str(changed), "-m", "identity", "--max-users", "2", "--refs", "4", "--evals", "2"]
    args += ["--no-report", "--no-progress", "--no-quality-filter", "--out", str(tmp_path / "ev")]
    res = runner.invoke(app, args)
    assert res.exit_code != 0 and "does NOT explain the recorded answers" in str(res.output) + str(res.exception)
    res = runner.invoke(app, [*args, "--no-truth-check"])
    assert res.exit_code == 0, res.output


def test_bayes_seen_knows_only_the_training_families(looks_ds: Path, tmp_path: Path):
    """``bayes-seen`` is ``bayes`` without the held-out looks: no prior mass outside the training
    families; it personalizes and renders like ``bayes``; on a slider crowd it is refused."""
    from prefstyle.errors import PrefstyleError

    gt = json.loads((looks_ds / "ground_truth.json").read_text())
    train = set(gt["looks"]["families"]["train"])
    seen = create_model("bayes-seen", ground_truth=looks_ds)
    full = create_model("bayes", ground_truth=looks_ds)
    assert seen.name == "bayes-seen" and seen.reference_point and seen.config()["seen_only"]
    member = torch.tensor([lk.family in train for lk in seen.library.looks])
    assert float(seen.look_prior[~member].sum()) == 0.0 and float(seen.look_prior.sum()) == pytest.approx(1.0)
    assert float(full.look_prior[~member].sum()) > 0.0
    ds = PairsDataset.load(looks_ds)
    user = next(u for u in ds.users() if not load_ground_truth(looks_ds)[u].person.careless)
    refs = load_references(ds, [j for j in ds.by_user(user) if j.kind == "main"][:8])
    prof = seen.personalize(refs, user)
    assert prof.model == "bayes-seen"
    assert all(p["look"].split("/")[0] in train for p in prof.data["particles"])
    src = load_image(ds.image_path(next(iter(ds.scenes.values())).source))
    assert seen.render(src, prof).shape == src.shape

    sliders = tmp_path / "sliders"
    simulate_dataset(SimulationConfig(seed=3, **TINY), sliders, progress=False)
    with pytest.raises(PrefstyleError, match="bayes-seen is a reference point for looks crowds"):
        create_model("bayes-seen", ground_truth=sliders)
