"""The simulated crowd: determinism, format, choices that follow the ground truth, careless users caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from prefstyle.cli import main
from prefstyle.data.crowd import Device, Person, SimulatedUser, Taste
from prefstyle.data.filters import FilterConfig, filter_users
from prefstyle.data.pairs import PairsDataset, statistics
from prefstyle.data.simulate import (
    SimulationConfig,
    load_ground_truth,
    simulate_dataset,
)
from prefstyle.imaging.params import RetouchParams

TINY = dict(users=24, scenes=8, renditions=4, size=48, thumb=24, careless_fraction=0.25, photos="packages")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "ds"
    simulate_dataset(SimulationConfig(seed=5, **TINY), out, progress=False)
    return out


def test_writes_valid_pairs_dataset_with_ground_truth(tiny_dataset: Path):
    ds = PairsDataset.load(tiny_dataset)
    st = statistics(ds)
    assert st["users"] == 24
    assert st["judgments"]["main"] == 24 * 80 and st["judgments"]["consistency"] == 24 * 10
    gt = load_ground_truth(tiny_dataset)
    assert set(gt) == set(ds.users())
    # Persons never straddle splits.
    split_of = {u: name for name, us in ds.splits.items() for u in us}
    for u in gt.values():
        same_person = [v for v in gt.values() if v.person.id == u.person.id]
        assert len({split_of[v.id] for v in same_person}) == 1
    assert main(["data", "validate", str(tiny_dataset)]) == 0


def test_same_seed_same_dataset(tiny_dataset: Path, tmp_path: Path):
    again = tmp_path / "again"
    simulate_dataset(SimulationConfig(seed=5, **TINY), again, progress=False)
    assert (again / "judgments.jsonl").read_bytes() == (tiny_dataset / "judgments.jsonl").read_bytes()
    assert (again / "ground_truth.json").read_bytes() == (tiny_dataset / "ground_truth.json").read_bytes()
    assert (again / "images/s0000/source.png").read_bytes() == (tiny_dataset / "images/s0000/source.png").read_bytes()


def test_choices_agree_with_ground_truth_far_above_chance(tiny_dataset: Path):
    """For attentive users, the chosen image is closer (as seen on their device) to their true ideal."""
    from prefstyle.imaging.io import load_image

    ds = PairsDataset.load(tiny_dataset)
    gt = load_ground_truth(tiny_dataset)
    agree = total = 0
    for user in ds.users():
        su = gt[user]
        if su.person.careless:
            continue
        for j in ds.by_user(user)[:40]:
            src = load_image(ds.image_path(ds.scenes[j.scene].source))
            a, b = load_image(ds.image_path(j.image_a)), load_image(ds.image_path(j.image_b))
            ideal = su.ideal(src)
            da, db = su.seen_distance(a, ideal).item(), su.seen_distance(b, ideal).item()
            if abs(da - db) < 1e-6:
                continue
            agree += (da < db) == (j.preferred == "a")
            total += 1
    assert total > 200
    assert agree / total > 0.75


def test_careless_users_are_caught_by_filters(tiny_dataset: Path):
    ds = PairsDataset.load(tiny_dataset)
    gt = load_ground_truth(tiny_dataset)
    _, report = filter_users(ds, FilterConfig())
    dropped = set(report.dropped)
    careless = {u for u, su in gt.items() if su.person.careless}
    attentive = set(gt) - careless
    assert careless, "the tiny config must contain careless users"
    assert careless <= dropped  # fast answers give them away
    assert len(dropped & attentive) <= len(attentive) // 3


def test_ideal_is_identity_for_neutral_taste_and_scene_dependent_taste_brightens_dark(coffee_small):
    neutral = Taste(params=RetouchParams())
    assert torch.allclose(neutral.ideal(coffee_small), coffee_small, atol=1e-5)
    bright = Taste(params=RetouchParams(), target_brightness=0.25, brightness_gain=0.8)
    dark = coffee_small * 0.3
    assert bright.ideal(dark).mean() > dark.mean() + 0.05
    assert bright.exposure_offsets(dark).item() > 0


def test_bradley_terry_choice_and_device_view():
    p = Person(id="x", taste=Taste(params=RetouchParams()), temperature=1.0)
    d = torch.tensor([1.0, 5.0])
    pa = p.prob_a(d, d.flip(0))
    assert pa[0] > 0.95 and pa[1] < 0.05
    img = torch.rand(1, 3, 8, 8)
    dim = Device("dim", brightness=0.6).view(img)
    std = Device("std").view(img)
    assert dim[:, 0].mean() < std[:, 0].mean()  # L* lower on a dim display
    u = SimulatedUser(p, Device("std"))
    assert SimulatedUser.from_dict(json.loads(json.dumps(u.to_dict()))) == u


def test_simulate_cli_refuses_non_empty_folder(tmp_path: Path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    rc = main(["data", "simulate", "--users", "2", "--out", str(tmp_path)])
    assert rc == 2
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert "not empty" in capsys.readouterr().err
