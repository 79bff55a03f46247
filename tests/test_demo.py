"""`prefstyle demo` end to end on a small crowd (slow: a few minutes on 2 cores)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from prefstyle.cli import app
from prefstyle.train.loading import DEFAULT_MODEL, packaged_models


@pytest.mark.slow
@pytest.mark.skipif(DEFAULT_MODEL not in packaged_models(), reason="the default model's weights are not packaged")
def test_demo_writes_report_with_default_model_and_photographer_path(tmp_path):
    out = tmp_path / "demo"
    r = CliRunner().invoke(app, ["demo", "--users", "20", "--out", str(out)])
    assert r.exit_code == 0, r.output
    index = (out / "index.html").read_text()
    assert DEFAULT_MODEL in index and "evaluation/index.html" in index
    results = json.loads((out / "evaluation" / "results.json").read_text())
    assert DEFAULT_MODEL in results["models"] and "bayes" in results["models"] and "bayes-seen" in results["models"]
    assert results["dataset"]["ground_truth_fit"]["explains"]
    assert (out / "photographer" / "before_after.png").stat().st_size > 10_000
    cube = (out / "photographer" / "style.cube").read_text()
    assert "LUT_3D_SIZE 33" in cube
