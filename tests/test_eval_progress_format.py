"""`prefstyle evaluate` and `demo` output: a progress step per model and user, tables without raw float reprs."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from _eval_data import make_sim_dataset
from prefstyle.eval.report import format_number, format_value

pytestmark = pytest.mark.usefixtures("one_thread")

#: a float's repr or exponent notation where a table should show a rounded number
RAW_FLOAT = re.compile(r"\d\.\d{5,}|\de[-+]?\d")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5.045e-07, "0.000"),
        (-1e-9, "0.000"),
        (413.95000000000005, "414"),
        (12.345678, "12.35"),
        (5914.149999999998, "5914"),
        (0.1234567, "0.123"),
        (7, "7"),
        (None, "–"),
        (float("nan"), "–"),
        (True, "yes"),
    ],
)
def test_numbers_in_tables_are_rounded(value, text):
    assert format_number(value) == text


def test_nested_values_are_formatted_too():
    text = format_value({"count": 7200, "p5": 571.9000000000001, "p95": 5914.149999999998, "x": [1e-7, 2.0]})
    assert text == "count: 7200, p5: 571.9, p95: 5914, x: 0.000, 2.000"


def test_the_evaluate_summary_table_prints_no_raw_floats(capsys):
    from prefstyle.cli.evaluate_cmd import _print_summary

    rows = {
        "identity": {"cqs": 5.045e-07, "cqs_rel": 1.0, "win_rate": 0.5},
        "sliders": {"cqs": 0.12345678901, "cqs_rel": 413.95000000000005, "win_rate": 0.6900000000000001},
    }
    results = SimpleNamespace(
        tables={"delta_e00": rows},
        ideal={"identity": {"delta_e00": 12.330000000000002}, "sliders": {"delta_e00": 11.109999999999999}},
        config={"n_refs": 16},
        notes=[],
    )
    from rich.console import Console

    _print_summary(results, 2, Console(stderr=True))
    out = capsys.readouterr().out
    assert "sliders" in out and "0.123" in out and "414" in out and "11.11" in out and "0.000" in out
    assert not RAW_FLOAT.search(out), out


def test_the_demo_crowd_table_prints_no_raw_floats():
    from prefstyle.cli.demo_cmd import _stats_rows

    html = _stats_rows(
        {"users": 80, "response_ms": {"p5": 571.9000000000001, "p50": 413.95000000000005}, "consistency": 5.045e-07}
    )
    assert "p50: 414" in html and "p5: 571.9" in html
    assert not RAW_FLOAT.search(html), html


def test_evaluate_shows_a_step_per_model_and_user(tmp_path, capsys):
    from prefstyle.data.pairs import PairsDataset
    from prefstyle.eval.protocol import PPSConfig, PPSEvaluation
    from prefstyle.models.base import create_model

    root = make_sim_dataset(tmp_path, users=4, scenes=6, main=12, test_users=2, seed=3)
    ds = PairsDataset.load(root)
    models = {"identity": create_model("identity"), "nearest-preferred": create_model("nearest-preferred")}
    ev = PPSEvaluation(ds, models, PPSConfig(n_refs=4, n_evals=4, metrics=("delta_e00",)))
    assert len(ev.users) == 2
    ev.run(progress=True)
    err = capsys.readouterr().err
    assert "evaluate" in err and "4/4" in err  # 2 users x 2 models
    assert f"user 2/2 {ev.users[1]}: nearest-preferred" in err and f"user 1/2 {ev.users[0]}: identity" in err
