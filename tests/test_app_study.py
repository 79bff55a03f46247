"""Study YAML, question planning and the scene catalog of the study app."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest
import yaml
from app.helpers import folder_study, write_photos

from prefstyle.app.study import (
    PlannedQuestion,
    config_from_dict,
    consistency_positions,
    default_study,
    load_study,
    parse_study,
    plan_questions,
)
from prefstyle.errors import PrefstyleError

REPO = Path(__file__).resolve().parents[1]


def test_defaults_follow_the_issue():
    cfg = parse_study({"id": "x"})
    assert (cfg.main, cfg.consistency, cfg.style_after) == (80, 10, 16)
    assert cfg.allow_undecided and cfg.sampling == "balanced" and cfg.model == "default"
    assert cfg.source.kind == "simulator"
    assert config_from_dict(cfg.to_dict()) == cfg
    assert default_study().id == "demo" and default_study().sampling == "active"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "id must be"),
        ({"id": "Bad Id"}, "id must be"),
        ({"id": "x", "questions": {"main": 0}}, "questions.main must be an integer"),
        ({"id": "x", "questions": {"main": 5, "consistency": 6}}, "cannot exceed questions.main"),
        ({"id": "x", "questions": {"mian": 5}}, "unknown key questions.mian"),
        ({"id": "x", "sampling": "clever"}, "sampling must be one of balanced, random"),
        ({"id": "x", "source": {"kind": "folder"}}, "source.path is required"),
        (
            {"id": "x", "source": {"kind": "folder", "path": "/nonexistent/dir", "styles": ["sepia", "faded"]}},
            "is not a folder",
        ),
        ({"id": "x", "colour": 1}, "unknown key colour"),
        ({"id": "x", "images": {"size": 10}}, "images.size must be an integer from 64"),
        ({"id": "x", "uploads": {"max_mb": -1}}, "uploads.max_mb must be a number"),
        # null for a key that needs a value: refused here, not a crash when the study runs
        ({"id": "x", "questions": {"main": None}}, "questions.main must be an integer from 1 to 10000, got None"),
        ({"id": "x", "consent": None}, "consent must be a non-empty string, got None"),
        ({"id": "x", "images": {"format": None}}, "images.format must be a non-empty string, got None"),
    ],
)
def test_bad_study_files_are_refused_with_the_key(data, message):
    with pytest.raises(PrefstyleError, match=message):
        parse_study(data)


def test_null_scenes_means_every_scene():
    assert parse_study({"id": "x", "source": {"kind": "simulator", "scenes": None}}).source.scenes is None
    assert parse_study({"id": "x"}).source.scenes == 24


def test_folder_source_needs_known_styles(tmp_path):
    write_photos(tmp_path / "p", 2)
    with pytest.raises(PrefstyleError, match="unknown style"):
        parse_study({"id": "x", "source": {"kind": "folder", "path": str(tmp_path / "p"), "styles": ["nope", "sepia"]}})
    with pytest.raises(PrefstyleError, match="at least 2 renditions"):
        parse_study({"id": "x", "source": {"kind": "folder", "path": str(tmp_path / "p"), "styles": ["sepia"]}})


def test_yaml_file_paths_resolve_against_the_file(tmp_path):
    write_photos(tmp_path / "photos", 2)
    f = tmp_path / "s.yaml"
    f.write_text(
        yaml.safe_dump({"id": "s", "source": {"kind": "folder", "path": "photos", "styles": ["sepia", "faded"]}})
    )
    cfg = load_study(f)
    assert cfg.source.path == str((tmp_path / "photos").resolve())
    (tmp_path / "bad.yaml").write_text("id: [unclosed\n")
    with pytest.raises(PrefstyleError, match="malformed YAML") as e:
        load_study(tmp_path / "bad.yaml")
    assert e.value.path == str(tmp_path / "bad.yaml")


def test_shipped_study_files_parse():
    files = sorted((REPO / "configs" / "studies").glob("*.yaml"))
    assert files
    for f in files:
        cfg = load_study(f)
        assert cfg.id


SCENES = {f"s{i}": [f"r{k}" for k in range(4)] for i in range(7)}


@pytest.mark.parametrize("strategy", ["balanced", "random"])
def test_plan_has_the_configured_counts_and_valid_pairs(strategy):
    plan = plan_questions(SCENES, 80, 10, strategy, seed=3)
    assert len(plan) == 90
    kinds = Counter(q.kind for q in plan)
    assert kinds == {"main": 80, "consistency": 10}
    for q in plan:
        if q.kind == "main":
            assert q.a != q.b and q.a in SCENES[q.scene] and q.b in SCENES[q.scene]
        else:
            assert q == PlannedQuestion("consistency")
    assert plan_questions(SCENES, 80, 10, strategy, seed=3) == plan
    assert plan_questions(SCENES, 80, 10, strategy, seed=4) != plan


def test_balanced_plan_spreads_scenes_and_pairs():
    plan = [q for q in plan_questions(SCENES, 80, 0, "balanced", seed=1)]
    per_scene = Counter(q.scene for q in plan)
    assert max(per_scene.values()) - min(per_scene.values()) <= 1
    assert all(a.scene != b.scene for a, b in itertools.pairwise(plan))  # never the same scene twice in a row
    for s in SCENES:  # 6 pairs per scene: no pair twice before all six were used
        pairs = [frozenset((q.a, q.b)) for q in plan if q.scene == s]
        assert len(set(pairs[:6])) == min(6, len(pairs))
    sides = Counter(q.a < q.b for q in plan)
    assert 25 <= sides[True] <= 55  # sides are random


def test_consistency_positions_leave_room_for_distinct_repeats():
    import random

    for seed in range(50):
        pos = consistency_positions(80, 10, random.Random(seed))
        assert len(pos) == 10 and pos == sorted(set(pos))
        assert all(p - k >= k + 2 for k, p in enumerate(pos))
    assert consistency_positions(3, 3, random.Random(0)) == [3, 4, 5]  # too few: at the end


def test_plan_refuses_a_study_without_pairs():
    with pytest.raises(PrefstyleError, match="at least two renditions"):
        plan_questions({"s": ["only"]}, 5, 0, "balanced", 0)


def test_folder_catalog_renders_scenes_and_holds_out(tmp_path):
    from prefstyle.app.catalog import build_catalog

    cfg = parse_study(folder_study(tmp_path, heldout=2, photos=4))
    scenes = build_catalog(cfg)
    assert len(scenes) == 4
    assert Counter(s.role for s in scenes) == {"question": 2, "heldout": 2}
    for s in scenes:
        assert [k for k, _, _ in s.renditions] == ["warm-film", "cool-matte", "camera-vivid"]
        assert s.source is not None and max(s.source.shape[-2:]) <= 96
        assert all(img.shape == s.source.shape for _, img, _ in s.renditions)


def test_pairs_catalog_uses_the_datasets_images(tmp_path):
    from prefstyle.app.catalog import build_catalog
    from prefstyle.data.pairs import Judgment, Scene, write_pairs
    from prefstyle.imaging.io import write_image
    from prefstyle.styles.registry import get_style

    photos = write_photos(tmp_path / "photos", 3)
    root = tmp_path / "ds"
    judgments, scenes = [], []
    from prefstyle.imaging.io import load_image

    for f in sorted(photos.iterdir()):
        img = load_image(f)
        write_image(root / f"images/{f.stem}/src.png", img)
        for name in ("sepia", "faded", "vintage"):
            write_image(root / f"images/{f.stem}/{name}.png", get_style(name).apply(img))
        scenes.append(Scene(f.stem, source=f"images/{f.stem}/src.png", origin="A"))
        judgments += [
            Judgment("u@d", f.stem, f"images/{f.stem}/sepia.png", f"images/{f.stem}/faded.png", "a"),
            Judgment("u@d", f.stem, f"images/{f.stem}/vintage.png", f"images/{f.stem}/faded.png", "b"),
        ]
    write_pairs(root, judgments, scenes=scenes)
    cfg = parse_study({"id": "p", "heldout": 1, "images": {"size": 64}, "source": {"kind": "pairs", "path": str(root)}})
    cat = build_catalog(cfg)
    assert Counter(s.role for s in cat) == {"question": 2, "heldout": 1}
    for s in cat:
        assert sorted(k for k, _, _ in s.renditions) == ["faded", "sepia", "vintage"]
        assert s.source is not None and s.origin == "A"


def test_serve_entry_point_reports_bad_study_files_in_one_line(tmp_path, monkeypatch, capsys):
    from prefstyle.app.__main__ import main

    (tmp_path / "bad.yaml").write_text("id: x\nquestions: {main: many}\n")
    monkeypatch.setattr(
        "sys.argv", ["prefstyle serve", "--study", str(tmp_path / "bad.yaml"), "--data", str(tmp_path / "data")]
    )
    assert main() == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.yaml: questions.main must be an integer" in err
