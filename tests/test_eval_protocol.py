"""The PPS evaluation protocol, its ablations, results.json, the CLI command and PieNet's protocols."""

from __future__ import annotations

import json
import math

import pytest
import torch
import typer
from _eval_data import _photo, make_sim_dataset
from typer.testing import CliRunner

from prefstyle.cli.evaluate_cmd import evaluate
from prefstyle.data.pairs import PairsDataset
from prefstyle.data.simulate import load_ground_truth
from prefstyle.errors import PrefstyleError
from prefstyle.eval.pienet_protocols import (
    expanded_protocol,
    fivek_multi_user,
    fivek_single_user,
)
from prefstyle.eval.protocol import (
    Results,
    ablate_n_refs,
    ablate_training_users,
    evaluate_pps,
    load_references,
)
from prefstyle.imaging.io import write_image
from prefstyle.imaging.params import RetouchParams
from prefstyle.imaging.pipeline import apply_retouch
from prefstyle.metrics.cqs import CQSAccumulator
from prefstyle.models.base import create_model
from prefstyle.models.reference import GlobalStyleModel

METRICS = ("delta_e00", "ssim", "psnr")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = make_sim_dataset(tmp_path_factory.mktemp("sim"), users=6, scenes=8, main=20, test_users=2, seed=1)
    return PairsDataset.load(root), load_ground_truth(root), root


@pytest.fixture(scope="module")
def run(sim):
    ds, gt, root = sim
    models = {
        "identity": create_model("identity"),
        "global-style": GlobalStyleModel(params=RetouchParams(contrast=0.1, vibrance=0.2)),
        "nearest-preferred": create_model("nearest-preferred"),
        "oracle": create_model("oracle", ground_truth=root),
        "bayes": create_model("bayes", ground_truth=root, particles=64),
    }
    return evaluate_pps(ds, models, n_refs=4, n_evals=6, ground_truth=gt, metrics=METRICS, seed=0), models


def test_tables_carry_every_reference_point(run):
    res, _ = run
    for metric in METRICS:
        assert list(res.tables[metric]) == ["identity", "global-style", "nearest-preferred", "bayes", "oracle"]
        for row in res.tables[metric].values():
            for key in ("cqs", "bfs", "cmr", "d_p", "d_n", "win_rate", "n_pairs", "n_users"):
                assert row[key] is not None
    assert res.dataset["evaluated_users"] == 2 and res.dataset["simulated"]


def test_identity_reference(run):
    res, _ = run
    for metric in METRICS:
        ident = res.tables[metric]["identity"]
        assert ident["cmr"] == pytest.approx(0.0, abs=1e-6)  # d̄_p = d̄_n for the input itself (float rounding aside)
        assert ident["win_rate"] == 0.5
        assert ident["bfs"] == pytest.approx(ident["cqs"])
    assert res.tables["delta_e00"]["identity"]["cqs_rel"] == 1.0
    assert res.tables["ssim"]["identity"]["cqs_rel"] == 1.0
    for row in res.tables["psnr"].values():
        assert row["cqs_rel"] is None  # identity's PSNR is the cap: no relative CQS
    assert all(res.checks["identity_cmr_zero"].values())


def test_distance_to_ideal(run):
    res, _ = run
    assert res.ideal["oracle"]["delta_e00"] == 0.0
    assert res.ideal["oracle"]["psnr"] == 100.0
    assert res.ideal["oracle"]["delta_e00"] < res.ideal["identity"]["delta_e00"]
    assert res.checks["oracle_closer_to_ideal_than_identity"] is True
    assert set(res.checks["oracle_above_identity"]) == set(METRICS)
    rows = [r for r in res.per_user if r["model"] == "oracle"]
    assert len(rows) == 2 and all(r["ideal"]["delta_e00"] == 0.0 for r in rows)


def test_cqs_matches_the_metrics_layer(sim, run):
    """The protocol's identity CQS equals CQSAccumulator's identity reference on the same pairs."""
    ds, _, _ = sim
    res, _ = run
    acc = CQSAccumulator("delta_e00")
    for user in ds.splits["test"]:
        _, evals = ds.split_user_judgments(user, 4, 6, seed=0)
        refs = load_references(ds, evals)
        p = torch.stack([r.preferred for r in refs])
        n = torch.stack([r.other for r in refs])
        acc.update(p, n, p, n, users=[user] * len(refs))
    out = acc.compute()
    assert res.tables["delta_e00"]["identity"]["cqs"] == pytest.approx(out["cqs_identity"], rel=1e-9)
    assert res.tables["delta_e00"]["identity"]["n_pairs"] == out["n_pairs"]


def test_identity_is_reported_even_when_not_run(sim):
    ds, _, _ = sim
    res = evaluate_pps(
        ds,
        {"nearest-preferred": create_model("nearest-preferred")},
        n_refs=4,
        n_evals=6,
        metrics=("delta_e00",),
        keep_samples=0,
    )
    assert set(res.tables["delta_e00"]) == {"identity", "nearest-preferred"}
    assert res.tables["delta_e00"]["identity"]["cmr"] == pytest.approx(0.0, abs=1e-6)
    assert res.ideal is None and "oracle_above_identity" not in res.checks


def test_results_json_roundtrip(run, tmp_path):
    res, _ = run
    path = res.save(tmp_path)
    doc = json.loads(path.read_text())  # strict JSON: no NaN/Infinity
    assert doc["format"] == "prefstyle-results" and doc["prefstyle_version"]
    assert set(doc["models"]) == {"identity", "global-style", "nearest-preferred", "bayes", "oracle"}
    assert doc["models"]["bayes"]["reference_point"] is True
    assert doc["config"]["n_refs"] == 4 and doc["config"]["metrics"] == list(METRICS)
    assert {r["model"] for r in doc["per_user"]} == set(doc["models"])
    again = Results.load(path)
    assert again.tables == res.to_json()["tables"]


def test_samples_for_the_report(run):
    res, models = run
    s = res.samples[0]
    assert s.input_kind == "source" and s.ideal is not None
    assert set(s.outputs) == set(models) and 1 <= len(s.refs) <= 4
    assert torch.allclose(s.outputs["oracle"], s.ideal, atol=1e-6)


def test_ablation_over_n_refs_shares_evaluation_pairs(sim):
    ds, gt, _ = sim
    models = {"identity": create_model("identity"), "nearest-preferred": create_model("nearest-preferred")}
    summary, runs = ablate_n_refs(ds, models, ns=(1, 4), n_evals=4, metrics=("delta_e00",), ground_truth=gt)
    assert summary["values"] == [1, 4]
    assert runs[1].tables["delta_e00"]["identity"]["n_pairs"] == runs[4].tables["delta_e00"]["identity"]["n_pairs"]
    ident = summary["models"]["identity"]["cqs"]["delta_e00"]
    assert ident[0] == ident[1]  # same evaluation pairs, identity does not use references
    assert len(summary["models"]["nearest-preferred"]["ideal_delta_e00"]) == 2


def test_ablation_over_training_users(sim):
    ds, _, _ = sim
    seen = []

    def make(users):
        seen.append(list(users))
        return GlobalStyleModel(steps=5).fit(ds, users)

    summary, _ = ablate_training_users(ds, make, ks=(1, 3), metrics=("delta_e00",), n_refs=2, n_evals=4)
    assert summary["parameter"] == "train_users" and summary["values"] == [1, 3]
    assert seen[0] == seen[1][:1] and not set(seen[1]) & set(ds.splits["test"])  # nested, no test users
    with pytest.raises(PrefstyleError, match="training users"):
        ablate_training_users(ds, make, ks=(99,), metrics=("delta_e00",))


def test_strengths_blend_outputs_with_inputs(sim, tmp_path):
    """``strengths``: rows ``name@s`` from the same renderings; the oracle at strength 0 is the
    identity, and its distance to the ideal shrinks linearly-ish as the strength grows."""
    ds, gt, root = sim
    models = {"identity": create_model("identity"), "oracle": create_model("oracle", ground_truth=root)}
    res = evaluate_pps(
        ds, models, n_refs=4, n_evals=6, ground_truth=gt, metrics=("delta_e00",), strengths=(0.0, 0.5, 1.0)
    )
    table = res.tables["delta_e00"]
    assert list(table) == ["identity", "oracle", "oracle@0", "oracle@0.5"] and res.config["strengths"] == [0.0, 0.5]
    assert table["oracle@0"]["cqs"] == pytest.approx(table["identity"]["cqs"], rel=1e-6)
    assert table["oracle@0"]["win_rate"] == 0.5 and res.models["oracle@0.5"]["strength"] == 0.5
    d = [res.ideal[n]["delta_e00"] for n in ("oracle@0", "oracle@0.5", "oracle")]
    assert d[0] == pytest.approx(res.ideal["identity"]["delta_e00"], rel=1e-6) and d[0] > d[1] > d[2] == 0.0
    from prefstyle.eval.report import FILES_DIR, write_report

    write_report(res, tmp_path)
    assert (tmp_path / FILES_DIR / "strengths.png").is_file()
    with pytest.raises(PrefstyleError, match="strengths"):
        evaluate_pps(ds, models, n_refs=4, n_evals=6, metrics=("delta_e00",), strengths=(3.0,))


def test_bad_inputs(sim):
    ds, _, _ = sim
    with pytest.raises(PrefstyleError, match="no models"):
        evaluate_pps(ds, {})
    with pytest.raises(PrefstyleError, match="no user has evaluation pairs"):
        evaluate_pps(ds, {"identity": create_model("identity")}, n_refs=500, metrics=("delta_e00",))


# -- the command line -----------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """test app"""

    app.command("evaluate")(evaluate)
    return app


def test_cli_evaluate_writes_results_and_report(sim, tmp_path):
    _, _, root = sim
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        _app(),
        [
            "evaluate",
            str(root),
            "--refs",
            "4",
            "--evals",
            "4",
            "--out",
            str(out),
            "--metrics",
            "delta_e00,ssim",
            "--particles",
            "32",
            "--no-progress",
            "--max-users",
            "1",
            "--global-style-steps",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    from prefstyle.train.loading import packaged_models

    # without --model: every reference point, then every model whose weights ship with prefstyle
    assert list(doc["models"]) == [
        "identity",
        "global-style",
        "nearest-preferred",
        "bayes",
        "oracle",
        *packaged_models(),
    ]
    assert doc["dataset"]["evaluated_users"] == 1
    assert (out / "index.html").is_file()
    assert "CQS" in result.output


def test_cli_evaluate_named_model_and_errors(sim, tmp_path):
    _, _, root = sim
    runner = CliRunner()
    out = tmp_path / "e2"
    ok = runner.invoke(
        _app(),
        [
            "evaluate",
            str(root),
            "-m",
            "identity",
            "--refs",
            "2",
            "--evals",
            "2",
            "--out",
            str(out),
            "--metrics",
            "delta_e00",
            "--no-report",
            "--no-progress",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert list(json.loads((out / "results.json").read_text())["models"]) == ["identity"]
    assert not (out / "index.html").exists()
    # a checkpoint path
    ckpt = GlobalStyleModel(params=RetouchParams(vibrance=0.3)).save(tmp_path / "gs.json")
    ok = runner.invoke(
        _app(),
        [
            "evaluate",
            str(root),
            "-m",
            str(ckpt),
            "--refs",
            "2",
            "--evals",
            "2",
            "--out",
            str(out),
            "--metrics",
            "delta_e00",
            "--no-report",
            "--no-progress",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "global-style" in json.loads((out / "results.json").read_text())["models"]

    for args, msg in [
        ([str(tmp_path / "missing")], "no such dataset folder"),
        ([str(root), "-m", "nosuchmodel"], "unknown model"),
        ([str(root), "--metrics", "nope"], "unknown metric"),
        ([str(root), "--users-split", "holdout"], "no split"),
        ([str(root), "--ablate-refs", "4,x"], "comma-separated"),
        ([str(root), "--strengths", "0.5,3"], "must lie in [0, 2]"),
        ([str(root), "--strengths", "half"], "comma-separated numbers"),
        ([str(root), "-m", "identity", "--eval-scenes", "test"], "no scenes of split 'test'"),
    ]:
        bad = runner.invoke(_app(), ["evaluate", *args, "--out", str(tmp_path / "x"), "--no-progress"])
        assert bad.exit_code != 0
        assert isinstance(bad.exception, PrefstyleError) and msg in str(bad.exception)
        assert "\n" not in str(bad.exception)


def test_cli_refuses_oracle_without_ground_truth(tmp_path):
    root = make_sim_dataset(tmp_path / "d", users=3, scenes=3, main=6, test_users=1)
    (root / "ground_truth.json").unlink()
    bad = CliRunner().invoke(
        _app(), ["evaluate", str(root), "-m", "oracle", "--out", str(tmp_path / "o"), "--no-progress"]
    )
    assert isinstance(bad.exception, PrefstyleError) and "simulated" in str(bad.exception)
    ok = CliRunner().invoke(
        _app(),
        [
            "evaluate",
            str(root),
            "--refs",
            "2",
            "--evals",
            "2",
            "--out",
            str(tmp_path / "o"),
            "--metrics",
            "delta_e00",
            "--no-progress",
            "--no-report",
            "--global-style-steps",
            "10",
        ],
    )
    assert ok.exit_code == 0, ok.output
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert "oracle" not in doc["models"] and doc["distance_to_ideal"] is None
    assert any("ground_truth.json" in n for n in doc["notes"])


# -- PieNet's protocols -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fivek(tmp_path_factory):
    """A tiny FiveK layout: input/ + expertA (cool) + expertC (warm, brighter), 8 photos."""
    root = tmp_path_factory.mktemp("fivek")
    looks = {"A": RetouchParams(temperature=-0.4), "C": RetouchParams(temperature=0.5, exposure=0.3)}
    for i in range(8):
        x = _photo(i, 32)
        write_image(root / "input" / f"a{i + 1:04d}.png", x[0])
        for e, p in looks.items():
            write_image(root / f"expert{e}" / f"a{i + 1:04d}-x.png", apply_retouch(x, p)[0].clamp(0, 1))
    return root


def test_fivek_single_user(fivek):
    ident = fivek_single_user(create_model("identity"), fivek, expert="C", n_pref=3, train_count=5)
    near = fivek_single_user(create_model("nearest-preferred"), fivek, expert="C", n_pref=3, train_count=5)
    assert ident["users"]["expertC"]["n_tests"] == 3 and ident["users"]["expertC"]["n_refs"] == 3
    assert math.isfinite(ident["psnr"]) and 0 < ident["ssim"] <= 1
    assert near["psnr"] > ident["psnr"] + 3  # the expert's global look is learned from 3 preferred images


def test_fivek_multi_user_and_expanded(fivek):
    res = fivek_multi_user(create_model("nearest-preferred"), fivek, experts="AC", n_pref=2, train_count=5)
    assert set(res["users"]) == {"expertA", "expertC"}
    assert res["mpsnr"] == pytest.approx((res["users"]["expertA"]["psnr"] + res["users"]["expertC"]["psnr"]) / 2)
    exp = expanded_protocol(
        create_model("identity"),
        fivek,
        styles=["warm-film", "sample:3"],
        n_pref=2,
        train_count=5,
        include_experts=["A"],
    )
    assert set(exp["users"]) == {"style:warm-film", "style:sample:3", "expertA"}
    assert exp["config"]["styles"] == ["warm-film", "sample:3"] and exp["mssim"] is not None


@pytest.mark.slow
def test_on_the_real_simulator(tmp_path):
    """The whole protocol on a dataset from ``simulate_dataset`` itself (tens of seconds)."""
    from prefstyle.data.simulate import SimulationConfig, simulate_dataset

    root = simulate_dataset(
        SimulationConfig(users=12, scenes=10, renditions=3, size=64, main=12, consistency=2),
        tmp_path / "sim",
        progress=False,
    )
    ds, gt = PairsDataset.load(root), load_ground_truth(root)
    models = {n: create_model(n) for n in ("identity", "nearest-preferred")}
    models["global-style"] = GlobalStyleModel(steps=20).fit(ds)
    models["oracle"] = create_model("oracle", ground_truth=root)
    models["bayes"] = create_model("bayes", ground_truth=root, particles=128)
    res = evaluate_pps(ds, models, n_refs=4, n_evals=4, users=ds.users(), ground_truth=gt, metrics=METRICS)
    for metric in METRICS:
        assert res.tables[metric]["identity"]["cmr"] == pytest.approx(0.0, abs=1e-6)
    assert res.ideal["oracle"]["delta_e00"] < res.ideal["identity"]["delta_e00"]
    assert res.ideal["bayes"]["delta_e00"] < res.ideal["identity"]["delta_e00"]


def test_held_out_scenes_are_the_only_ones_scored(sim):
    ds, gt, root = sim
    held = set(sorted(ds.scenes)[:3])
    models = {"identity": create_model("identity"), "oracle": create_model("oracle", ground_truth=root)}
    res = evaluate_pps(
        ds, models, n_refs=4, n_evals=6, ground_truth=gt, metrics=["delta_e00"], eval_scenes=held, keep_samples=6
    )
    assert res.config["eval_scenes"] == 3 and res.samples
    assert all(smp.scene in held for smp in res.samples)
    plain = evaluate_pps(ds, models, n_refs=4, n_evals=6, ground_truth=gt, metrics=["delta_e00"], keep_samples=6)
    assert any(smp.scene not in held for smp in plain.samples)


def test_flip_references_reverses_a_seeded_fraction():
    import torch

    from prefstyle.eval.protocol import flip_references
    from prefstyle.models.base import Reference

    refs = [
        Reference(scene=f"s{i}", preferred=torch.full((3, 2, 2), 0.9), other=torch.full((3, 2, 2), 0.1))
        for i in range(10)
    ]
    flipped = flip_references(refs, 0.2, seed=0, user="u")
    swapped = [i for i, r in enumerate(flipped) if float(r.preferred.mean()) < 0.5]
    assert len(swapped) == 2 and all(flipped[i].meta.get("flipped") for i in swapped)
    assert [i for i, r in enumerate(flip_references(refs, 0.2, seed=0, user="u")) if r.meta.get("flipped")] == swapped
    assert flip_references(refs, 0.0, seed=0, user="u") is refs
    with pytest.raises(PrefstyleError):
        flip_references(refs, 1.5, seed=0, user="u")
