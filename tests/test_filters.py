"""PPS quality filters: drop inconsistent and too-fast users, keep good ones, say why."""

from __future__ import annotations

import json

import pytest

from prefstyle.data.filters import FilterConfig, assess_users, filter_users
from prefstyle.data.pairs import Judgment, PairsDataset


def _session(user: str, n_main: int = 80, n_cons: int = 10, flips: int = 0, ms=lambda i: 1500 + 37 * (i % 20)):
    """A study session: n_main main pairs, then n_cons of them repeated with the sides swapped.

    The first ``flips`` repeats pick the other image than the first time.
    """
    js = []
    for i in range(n_main):
        js.append(
            Judgment(user, f"s{i}", f"img/s{i}_x.png", f"img/s{i}_y.png", "a" if i % 3 else "b", response_ms=ms(i))
        )
    for k in range(n_cons):
        first = js[k]
        same = first.preferred_image
        chosen = same if k >= flips else first.other_image
        # swapped sides: image_a is the first time's image_b
        preferred = "a" if chosen == first.image_b else "b"
        js.append(
            Judgment(
                user,
                first.scene,
                first.image_b,
                first.image_a,
                preferred,
                kind="consistency",
                response_ms=ms(n_main + k),
            )
        )
    return js


@pytest.fixture
def crowd() -> PairsDataset:
    js = (
        _session("good@phone", flips=1)  # 9/10 consistent
        + _session("flaky@phone", flips=6)  # 4/10 consistent
        + _session("speedy@tv", ms=lambda i: 150 + (i % 5))  # consistent but answers in ~150 ms
        + _session("short@laptop", n_main=30, n_cons=0, ms=lambda i: 2000)  # no consistency items
        + _session("nolog@laptop", ms=lambda i: None)  # no response times recorded
    )
    splits = {"train": ["good@phone", "flaky@phone", "short@laptop"], "test": ["speedy@tv", "nolog@laptop"]}
    return PairsDataset("/nowhere", js, splits=splits)


def test_filters_drop_inconsistent_and_fast_users_keep_good(crowd: PairsDataset):
    kept, report = filter_users(crowd)
    assert report.kept == ["good@phone", "nolog@laptop", "short@laptop"]
    assert {u: [r.code for r in rs] for u, rs in report.dropped.items()} == {
        "flaky@phone": ["consistency"],
        "speedy@tv": ["median_response", "fast_responses"],
    }
    assert "0.40 < 0.70" in report.dropped["flaky@phone"][0].message
    assert kept.users() == ["good@phone", "nolog@laptop", "short@laptop"]
    assert kept.splits == {"train": ["good@phone", "short@laptop"], "test": ["nolog@laptop"]}
    assert len(kept) == 90 + 90 + 30

    good = next(u for u in report.users if u.user == "good@phone")
    assert (good.main, good.consistency, good.consistency_matched, good.agreement) == (80, 10, 10, 0.9)
    short = next(u for u in report.users if u.user == "short@laptop")
    assert any("consistency not judged" in n for n in short.notes)
    assert any("expected 80 + 10" in n for n in short.notes)
    nolog = next(u for u in report.users if u.user == "nolog@laptop")
    assert nolog.median_response_ms is None and any("response times not judged" in n for n in nolog.notes)


def test_report_markdown_and_dict(crowd: PairsDataset):
    report = assess_users(crowd)
    md = report.to_markdown()
    assert "Kept **3** of 5 users" in md
    assert "| flaky@phone | 0.40 |" in md and "speedy@tv" in md
    assert "consistency agreement >= 0.70" in md
    d = json.loads(json.dumps(report.to_dict()))
    assert d["reason_counts"] == {"consistency": 1, "fast_responses": 1, "median_response": 1}
    assert d["dropped"]["flaky@phone"][0]["code"] == "consistency"
    assert len(d["per_user"]) == 5


def test_strict_and_disabled_criteria(crowd: PairsDataset):
    strict = FilterConfig(require_consistency=True, require_response_times=True, min_main=50)
    _, report = filter_users(crowd, strict)
    assert report.kept == ["good@phone"]
    codes = {u: {r.code for r in rs} for u, rs in report.dropped.items()}
    assert codes["short@laptop"] == {"no_consistency", "too_few_main"}
    assert codes["nolog@laptop"] == {"no_response_times"}

    off = FilterConfig(min_consistency=None, min_median_response_ms=None, max_fast_fraction=None)
    assert assess_users(crowd, off).dropped == {}


def test_config_validation():
    with pytest.raises(ValueError):
        FilterConfig(min_consistency=1.5)
    with pytest.raises(ValueError):
        FilterConfig(max_fast_fraction=-0.1)
