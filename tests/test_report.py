"""The HTML evaluation report: its files, its content, and how it looks in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _eval_data import make_sim_dataset

from prefstyle.data.pairs import PairsDataset
from prefstyle.data.simulate import load_ground_truth
from prefstyle.eval.protocol import Results, ablate_n_refs, evaluate_pps
from prefstyle.eval.report import write_report
from prefstyle.imaging.params import RetouchParams
from prefstyle.models.base import create_model
from prefstyle.models.reference import GlobalStyleModel

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = make_sim_dataset(tmp_path_factory.mktemp("sim"), users=6, scenes=8, main=20, test_users=3, seed=2)
    ds, gt = PairsDataset.load(root), load_ground_truth(root)
    models = {
        "identity": create_model("identity"),
        "global-style": GlobalStyleModel(params=RetouchParams(vibrance=0.3, contrast=0.1)),
        "nearest-preferred": create_model("nearest-preferred"),
        "oracle": create_model("oracle", ground_truth=root),
        "bayes": create_model("bayes", ground_truth=root, particles=48),
    }
    kw = {"n_evals": 4, "ground_truth": gt, "metrics": ("delta_e00", "ssim", "psnr")}
    res = evaluate_pps(ds, models, n_refs=4, keep_samples=2, **kw)
    res.ablations["n_refs"], _ = ablate_n_refs(ds, {k: models[k] for k in ("identity", "bayes")}, ns=(1, 4), **kw)
    out = tmp_path_factory.mktemp("report")
    res.save(out)
    return write_report(res, out), res


def test_report_files(report):
    index, res = report
    html = index.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    for name in res.models:
        assert f">{name}<" in html
    for label in ("ΔE00", "SSIM", "PSNR", "CQS / identity", "win rate", "true ideal (simulated data)"):
        assert label in html
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert any("rel_cqs" in s for s in srcs) and any("per_user" in s for s in srcs)
    assert any("ablation_n_refs" in s for s in srcs)
    assert sum("_out_" in s for s in srcs) == 2 * len(res.models)  # two users, every model's output
    assert sum(s.endswith("_ideal.png") for s in srcs) == 2
    for s in srcs:
        assert not s.startswith(("http:", "https:", "/")), s  # self-contained, relative paths
        assert (index.parent / s).is_file(), s
    assert "https://" not in html and "http://" not in html


def test_report_from_saved_results_without_images(report, tmp_path):
    index, _ = report
    again = Results.load(index.parent / "results.json")
    out = write_report(again, tmp_path / "r2")
    html = out.read_text(encoding="utf-8")
    assert "<table>" in html and "_out_" not in html  # tables and plots, no sample images to show


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="headless Chromium (/usr/bin/chromium, Debian's 'chromium') is not installed"
)
def test_report_in_a_browser(report, tmp_path):
    """Open the report in headless Chromium as a person would: every image loads; save a screenshot."""
    index, _ = report
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    # 1. every <img> decodes (a copy of the page marks broken images once loaded)
    probe = index.parent / "probe.html"
    script = (
        "<script>window.addEventListener('load',()=>{const b=[...document.images].filter("
        "i=>!(i.complete&&i.naturalWidth>0)).length;document.body.setAttribute('data-broken',b);"
        "document.body.setAttribute('data-images',document.images.length);});</script></body>"
    )
    probe.write_text(index.read_text(encoding="utf-8").replace("</body>", script), encoding="utf-8")
    dom = subprocess.run(
        [str(CHROMIUM), *flags, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    m = re.search(r'data-broken="(\d+)" data-images="(\d+)"', dom.stdout)
    assert m, dom.stderr[-2000:]
    assert m.group(1) == "0" and int(m.group(2)) > 10
    # 2. the screenshot shows the page (kept as a test artifact)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = tmp_path / "report.png"
    subprocess.run(
        [str(CHROMIUM), *flags, f"--screenshot={shot}", "--window-size=1280,3600", index.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert img.shape[:2] == (3600, 1280)
    shutil.copyfile(shot, ARTIFACTS / "report.png")
    nonwhite = (img < 245).any(axis=2)
    assert nonwhite[:1200].mean() > 0.05  # tables in the upper part
    colourful = (img.max(axis=2) - img.min(axis=2)) > 40
    assert colourful.mean() > 0.01  # plots and photos, not just text
