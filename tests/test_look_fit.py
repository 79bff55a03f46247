"""Fitting LookTaste's space and prior from the answers of one crowd or several (``prefstyle train configs/looks.yaml``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefstyle.data.looks import load_looks
from prefstyle.data.looks_crowd import synthetic_looks
from prefstyle.data.pairs import PairsDataset
from prefstyle.data.simulate import SimulationConfig, simulate_dataset
from prefstyle.errors import PrefstyleError
from prefstyle.models.look_fit import fit_from_config, fit_look_taste
from prefstyle.models.look_taste import LookTasteModel

TINY: dict = dict(  # noqa: C408
    users=12,
    scenes=8,
    renditions=3,
    size=32,
    thumb=24,
    main=10,
    consistency=2,
    careless_fraction=0.0,
    photos="packages",
    workers=1,
)
FAST: dict = dict(  # noqa: C408
    n_refs=6,
    max_users=4,
    temperatures=(0.5, 2.0),
    lapses=(0.1,),
    floors=(0.5,),
    user_masses=(0.0, 0.2),
    em_iters=3,
    n_sliders=24,
    n_blends=8,
    quality_filter=False,
    progress=False,
)


@pytest.fixture(scope="module")
def crowds(tmp_path_factory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("crowds")
    lib = synthetic_looks(families=4, per_family=4, size=9, seed=0).save(tmp / "lib" / "looks.json")
    simulate_dataset(SimulationConfig(seed=3, tastes="looks", looks=str(lib), **TINY), tmp / "looks", progress=False)
    simulate_dataset(SimulationConfig(seed=4, tastes="sliders", **TINY), tmp / "sliders", progress=False)
    return lib, tmp / "looks", tmp / "sliders"


def test_fit_on_two_crowds_uses_both_and_keeps_held_out_families_out(crowds):
    lib_path, looks_ds, slider_ds = crowds
    library = load_looks(lib_path)
    one = fit_look_taste(PairsDataset.load(looks_ds), library, **FAST)
    both = fit_look_taste([PairsDataset.load(looks_ds), PairsDataset.load(slider_ds)], library, **FAST)
    info = both.fit_info
    assert [c["train_users"] for c in info["crowds"]] == [4, 4]
    assert info["train_users"] == 8 == 2 * one.fit_info["train_users"]
    held = set(info["held_out_families"])
    assert held and held == set(one.fit_info["held_out_families"])
    assert not any(n.split("/")[0] in held for n in both.look_names)
    # the slider crowd's renditions enter the taste space as looks of their own
    assert info["rendition_looks"] > one.fit_info["rendition_looks"]
    assert len(both.coeffs) > len(one.coeffs)
    assert both.temperature in FAST["temperatures"] and both.user_mass in FAST["user_masses"]


def test_config_takes_a_list_of_datasets(crowds, tmp_path):
    lib_path, looks_ds, slider_ds = crowds
    task = {k: (list(v) if isinstance(v, tuple) else v) for k, v in FAST.items() if k != "progress"}
    cfg = {
        "task": {"name": "looks", "library": str(lib_path), **task},
        "data": {"path": [str(looks_ds), str(slider_ds)]},
        "out": str(tmp_path / "fit"),
    }
    path, summary = fit_from_config(cfg, progress=False)
    assert summary["users"] == 8
    model = LookTasteModel(checkpoint=path)
    assert len(model.fit_info["crowds"]) == 2


def test_train_users_ablation_is_for_the_pps_tasks_only(tmp_path):
    from prefstyle.errors import PrefstyleError
    from prefstyle.train.ablation import train_users_ablation

    for name in ("looks", "pienet"):
        cfg = {"task": {"name": name}, "data": {"path": str(tmp_path)}, "out": str(tmp_path / "out")}
        with pytest.raises(PrefstyleError, match=f"training-users ablation, not for task '{name}'"):
            next(train_users_ablation(cfg, [], "50,all"))


def test_a_missing_dataset_in_the_list_is_a_one_line_error_and_nothing_is_written(crowds, tmp_path):
    from prefstyle.errors import PrefstyleError

    _, looks_ds, _ = crowds
    cfg = {
        "task": {"name": "looks"},
        "data": {"path": [str(looks_ds), str(tmp_path / "nope")]},
        "out": str(tmp_path / "o"),
    }
    with pytest.raises(PrefstyleError, match="nope"):
        fit_from_config(cfg, progress=False)
    assert not (tmp_path / "o").exists()


def test_negative_or_fractional_space_counts_are_one_line_errors(crowds, tmp_path):
    lib_path, looks_ds, _ = crowds
    task = {k: (list(v) if isinstance(v, tuple) else v) for k, v in FAST.items() if k != "progress"}
    for key, value in (("n_gaussian", -5), ("n_blends", 2.5)):
        out = tmp_path / f"bad_{key}"
        cfg = {
            "task": {"name": "looks", "library": str(lib_path), **task, key: value},
            "data": {"path": str(looks_ds)},
            "out": str(out),
        }
        with pytest.raises(PrefstyleError, match=f"{key}="):
            fit_from_config(cfg, progress=False)
        assert not out.exists()
