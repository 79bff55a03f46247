"""prefstyle.models.load (names, packaged models, settings files, checkpoints), the declared hooks,
and imaging.resize_long_side."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.resize import long_side_size, resize_long_side
from prefstyle.models import DEFAULT_LIKED_MODEL, DEFAULT_MODEL, load, packaged_models
from prefstyle.models.loading import (
    DataContext,
    NotApplicable,
    fit_without_gradients,
    is_settings_file,
    load_for_data,
    model_from_checkpoint,
)


def test_defaults_are_packaged_and_load_by_name():
    assert {DEFAULT_MODEL, DEFAULT_LIKED_MODEL} <= set(packaged_models())
    assert load(DEFAULT_MODEL).name == DEFAULT_MODEL
    assert load(DEFAULT_LIKED_MODEL).name == DEFAULT_LIKED_MODEL


def test_names_errors_and_settings_files(tmp_path):
    assert load("identity").name == "identity"
    with pytest.raises(PrefstyleError, match="needs training"):
        load("usd")
    with pytest.raises(PrefstyleError, match="unknown model"):
        load("identiti")
    settings = load(DEFAULT_MODEL)
    path = settings.save(tmp_path / "fitted.json")  # a closed-form model saves its settings
    assert is_settings_file(path) and not is_settings_file(tmp_path / "nothing.json")
    assert load(path).config() == settings.config()


def test_a_checkpoint_of_an_undeclared_architecture_is_one_line(tmp_path):
    (tmp_path / "model.json").write_text(
        json.dumps({"format": "prefstyle-checkpoint", "version": 1, "task": {"name": "no-such-model", "model": {}}})
    )
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(PrefstyleError, match="no-such-model"):
        model_from_checkpoint(tmp_path)


def test_declared_hooks():
    assert fit_without_gradients(DEFAULT_MODEL) is not None and fit_without_gradients("identity") is None
    ctx = DataContext(dataset=None, eval_users=[], ground_truth=None)
    with pytest.raises(NotApplicable, match="ground_truth.json"):
        load_for_data("oracle", ctx)
    assert load_for_data("identity", ctx).name == "identity"


def test_the_defaults_import_without_torch():
    code = "import sys; from prefstyle.models import DEFAULT_MODEL; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_resize_long_side():
    x = torch.rand(3, 60, 80)
    y = resize_long_side(x, 40)
    assert y.shape == (3, 30, 40) and float(y.min()) >= 0 and float(y.max()) <= 1
    assert resize_long_side(x, 100) is x  # never enlarged unless asked
    assert resize_long_side(x[None], 100, upscale=True).shape == (1, 3, 75, 100)
    flat = torch.full((2, 3, 64, 32), 0.25)
    torch.testing.assert_close(resize_long_side(flat, 16, mode="area"), torch.full((2, 3, 16, 8), 0.25))
    assert long_side_size(3, 1000, 10) == (1, 10)
    with pytest.raises(ValueError):
        resize_long_side(torch.rand(8, 8), 4)
