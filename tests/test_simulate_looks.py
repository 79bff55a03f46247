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

TINY: dict = dict(
    users=16,
    scenes=10,
    renditions=4,
    size=48,
    thumb=24,
    main=24,
    consistency=4,  # noqa: C408
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
