"""The pairs format v1: round trip, every malformed case with its file and line, statistics, `data validate`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from prefstyle.data.pairs import (
    Judgment,
    PairsDataset,
    Scene,
    collect_problems,
    consistency_checks,
    read_with_problems,
    statistics,
    write_pairs,
)
from prefstyle.errors import InputFormatError, PrefstyleError

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def _images(root: Path, names: list[str]) -> None:
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(PNG)


def _judgments() -> list[Judgment]:
    """Two users; ann answers 3 main + 1 consistency (agrees), bob 2 main + 1 consistency (disagrees)."""
    J = Judgment
    return [
        J(
            "ann@phone",
            "s1",
            "images/s1_a.png",
            "images/s1_b.png",
            "a",
            response_ms=1500,
            person="ann",
            device="phone",
            time="2026-01-05T10:00:00+00:00",
            extra={"session": 7, "ui": {"layout": "side"}},
        ),
        J("ann@phone", "s2", "images/s2_a.png", "images/s2_b.png", "b", response_ms=2100, person="ann", device="phone"),
        J("ann@phone", "s3", "images/s3_a.png", "images/s3_b.png", "a", response_ms=900),
        J("bob@laptop", "s1", "images/s1_a.png", "images/s1_b.png", "b", response_ms=3000),
        J("bob@laptop", "s2", "images/s2_b.png", "images/s2_a.png", "a", response_ms=1200),
        # ann repeats s1 with the sides swapped and picks the same image (s1_a): agrees
        J("ann@phone", "s1", "images/s1_b.png", "images/s1_a.png", "b", kind="consistency", response_ms=1100),
        # bob repeats s1 swapped and picks s1_b's other side (s1_a): disagrees
        J("bob@laptop", "s1", "images/s1_b.png", "images/s1_a.png", "b", kind="consistency", response_ms=800),
    ]


SCENES = [
    Scene("s1", source="images/s1_src.png", origin="A", content=["city", "night"], extra={"license": "CC0"}),
    Scene("s2", source="images/s2_src.png", origin="free text origin", content="beach"),
    Scene("s3"),
]
IMAGES = [f"images/{s}_{v}.png" for s in ("s1", "s2", "s3") for v in ("a", "b", "src")]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    _images(root, IMAGES)
    write_pairs(
        root,
        _judgments(),
        SCENES,
        {"train": ["ann@phone"], "test": ["bob@laptop"]},
        {"name": "tiny", "license": "CC0", "curator": {"who": "us"}},
    )
    return root


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _set_line(path: Path, number: int, text: str) -> None:
    lines = _lines(path)
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _edit_judgment(root: Path, number: int, **changes) -> None:
    path = root / "judgments.jsonl"
    obj = json.loads(_lines(path)[number - 1])
    for k, v in changes.items():
        if v is KeyError:
            del obj[k]
        else:
            obj[k] = v
    _set_line(path, number, json.dumps(obj))


# ------------------------------------------------------------------------------------------
# good data
# ------------------------------------------------------------------------------------------


def test_round_trip_keeps_everything_and_is_deterministic(good: Path, tmp_path: Path):
    ds = PairsDataset.load(good)
    assert ds.judgments == _judgments()
    assert [j.line for j in ds.judgments] == list(range(1, 8))
    assert ds.judgments[0].extra == {"session": 7, "ui": {"layout": "side"}}
    assert ds.scenes == {s.scene: s for s in SCENES}
    assert ds.scenes["s1"].extra == {"license": "CC0"}
    assert ds.splits == {"train": ["ann@phone"], "test": ["bob@laptop"]}
    assert ds.meta == {
        "format": "prefstyle-pairs",
        "version": 1,
        "name": "tiny",
        "license": "CC0",
        "curator": {"who": "us"},
    }

    copy = tmp_path / "copy"
    _images(copy, IMAGES)
    ds.write(copy)
    for name in ("judgments.jsonl", "scenes.jsonl", "splits.json", "dataset.json"):
        assert (copy / name).read_bytes() == (good / name).read_bytes(), name
    again = PairsDataset.load(copy)
    assert again.judgments == ds.judgments and again.scenes == ds.scenes and again.meta == ds.meta
    assert collect_problems(good) == []


def test_minimal_dataset_with_defaults_blank_lines_and_bom(tmp_path: Path):
    _images(tmp_path, ["x.png", "y.png"])
    line = json.dumps({"user": "u", "scene": "s", "image_a": "x.png", "image_b": "./y.png", "preferred": "b"})
    (tmp_path / "judgments.jsonl").write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\n\n   \n" + line.encode())
    ds = PairsDataset.load(tmp_path)
    assert [j.line for j in ds.judgments] == [1, 4]
    j = ds.judgments[0]
    assert (j.kind, j.response_ms, j.preferred_image, j.other_image) == ("main", None, "./y.png", "x.png")
    assert ds.scenes == {} and ds.splits == {} and ds.meta == {}


def test_per_user_access(good: Path):
    ds = PairsDataset.load(good)
    assert ds.users() == ["ann@phone", "bob@laptop"]
    assert [j.line for j in ds.by_user("ann@phone")] == [1, 2, 3, 6]
    assert [j.scene for j in ds.references("ann@phone", 2)] == ["s1", "s2"]
    assert [j.kind for j in ds.references("ann@phone", 10, kind="consistency")] == ["consistency"]
    assert len(ds.references("ann@phone", 10)) == 3
    seeded = ds.references("ann@phone", 2, seed=3)
    assert seeded == ds.references("ann@phone", 2, seed=3)
    refs, evals = ds.split_user_judgments("ann@phone", 1, 5, seed=3)
    assert refs == seeded[:1]
    assert not {id(j) for j in refs} & {id(j) for j in evals}
    assert not {j.scene for j in refs} & {j.scene for j in evals}
    assert len(refs) + len(evals) == 3
    with pytest.raises(PrefstyleError, match="unknown user"):
        ds.by_user("carol")
    assert ds.image_path("images/s1_a.png") == good / "images/s1_a.png"
    with pytest.raises(PrefstyleError, match="outside"):
        ds.image_path("../x.png")


def test_split_user_judgments_scene_disjoint():
    js = [Judgment("u", f"s{i % 3}", f"{i}a.png", f"{i}b.png", "a") for i in range(9)]
    ds = PairsDataset("/nowhere", js)
    refs, evals = ds.split_user_judgments("u", 2, 9)
    assert [j.scene for j in refs] == ["s0", "s1"]
    assert {j.scene for j in evals} == {"s2"}
    refs, evals = ds.split_user_judgments("u", 2, 9, disjoint_scenes=False)
    assert len(evals) == 7


def test_split_user_judgments_on_held_out_scenes():
    """The held-out-photos protocol: evaluation pairs only on the given scenes, references only elsewhere."""
    js = [Judgment("u", f"s{i % 4}", f"{i}a.png", f"{i}b.png", "a") for i in range(12)]
    scenes = [Scene(f"s{k}", extra={"split": "test" if k == 3 else "train"}) for k in range(4)]
    ds = PairsDataset("/nowhere", js, scenes=scenes)
    held = ds.scenes_of_split("test")
    assert held == {"s3"} and ds.scenes_of_split("train") == {"s0", "s1", "s2"}
    refs, evals = ds.split_user_judgments("u", 5, 9, eval_scenes=held)
    assert len(refs) == 5 and "s3" not in {j.scene for j in refs}
    assert [id(j) for j in refs] == [id(j) for j in js if j.scene != "s3"][:5]
    assert {j.scene for j in evals} == {"s3"} and len(evals) == 3
    refs, evals = ds.split_user_judgments("u", 5, 2, seed=1, eval_scenes=held)
    assert len(evals) == 2 and {j.scene for j in evals} == {"s3"}
    with pytest.raises(PrefstyleError, match="no scenes of split 'val'.*test, train"):
        ds.scenes_of_split("val")


def test_consistency_matching_and_statistics(good: Path):
    ds = PairsDataset.load(good)
    checks = consistency_checks(ds.judgments)
    assert [(c.item.user, c.original.line, c.agreed) for c in checks] == [
        ("ann@phone", 1, True),
        ("bob@laptop", 4, False),
    ]
    st = statistics(ds)
    assert st["users"] == 2 and st["persons"] == 2 and st["devices"] == 2
    assert st["scenes"] == 3 and st["scenes_listed"] == 3 and st["images"] == 6
    assert st["judgments"] == {"total": 7, "main": 5, "consistency": 2}
    assert st["per_user"]["main"] == {"min": 2.0, "median": 2.5, "max": 3.0}
    assert st["consistency"]["agreement"] == 0.5 and st["consistency"]["matched"] == 2
    assert st["consistency"]["per_user_agreement"] == {"min": 0.0, "median": 0.5, "max": 1.0}
    assert st["response_ms"]["count"] == 7 and st["response_ms"]["p50"] == 1200.0
    assert st["response_ms"]["p5"] < st["response_ms"]["p50"] < st["response_ms"]["p95"]
    assert st["position"] == {"a": 3, "b": 4, "fraction_a": 3 / 7}
    assert st["splits"] == {"train": 1, "test": 1}
    json.dumps(st)


def test_judgment_rejects_bad_values_in_code():
    with pytest.raises(ValueError):
        Judgment("u", "s", "a.png", "b.png", "left")
    with pytest.raises(ValueError):
        Judgment("u", "s", "a.png", "b.png", "a", kind="repeat")
    with pytest.raises(ValueError, match="format"):
        write_pairs("/tmp/never-written", [], meta={"format": "other"})


# ------------------------------------------------------------------------------------------
# malformed data: each case names its file and line
# ------------------------------------------------------------------------------------------


def _case_malformed_json(root):
    _set_line(root / "judgments.jsonl", 3, '{"user": "ann@phone", "scene": ')
    return "judgments.jsonl", 3, "malformed JSON"


def _case_not_an_object(root):
    _set_line(root / "judgments.jsonl", 2, "[1, 2]")
    return "judgments.jsonl", 2, "expected a JSON object"


def _case_bad_utf8(root):
    path = root / "judgments.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b"bob", b"b\xffb")
    path.write_bytes(b"\n".join(lines))
    return "judgments.jsonl", 5, "UTF-8"


def _case_missing_field(root):
    _edit_judgment(root, 2, scene=KeyError)
    return "judgments.jsonl", 2, "missing required field 'scene'"


def _case_wrong_type(root):
    _edit_judgment(root, 4, user=17)
    return "judgments.jsonl", 4, "field 'user' must be a string"


def _case_unknown_preferred(root):
    _edit_judgment(root, 5, preferred="A")
    return "judgments.jsonl", 5, "unknown 'preferred' value \"A\""


def _case_unknown_kind(root):
    _edit_judgment(root, 6, kind="repeat")
    return "judgments.jsonl", 6, "unknown 'kind' value"


def _case_bad_response_ms(root):
    _edit_judgment(root, 3, response_ms="fast")
    return "judgments.jsonl", 3, "response_ms"


def _case_bad_time(root):
    _edit_judgment(root, 1, time="yesterday")
    return "judgments.jsonl", 1, "ISO-8601"


def _case_missing_image(root):
    (root / "images/s3_b.png").unlink()
    return "judgments.jsonl", 3, 'image_b "images/s3_b.png" does not exist'


def _case_same_image_lexically(root):
    _edit_judgment(root, 2, image_b="./images/../images/s2_a.png")
    return "judgments.jsonl", 2, "same file"


def _case_same_image_via_link(root):
    os.symlink("s2_a.png", root / "images/s2_alias.png")
    _edit_judgment(root, 2, image_b="images/s2_alias.png")
    return "judgments.jsonl", 2, "same file"


def _case_escaping_path(root):
    (root.parent / "outside.png").write_bytes(PNG)
    _edit_judgment(root, 7, image_a="../outside.png")
    return "judgments.jsonl", 7, "outside the dataset folder"


def _case_absolute_path(root):
    _edit_judgment(root, 1, image_a=str(root / "images/s1_a.png"))
    return "judgments.jsonl", 1, "relative"


def _case_duplicate_scene(root):
    _set_line(root / "scenes.jsonl", 3, json.dumps({"scene": "s1"}))
    return "scenes.jsonl", 3, "listed twice (first on line 1)"


def _case_scene_source_missing(root):
    (root / "images/s2_src.png").unlink()
    return "scenes.jsonl", 2, "source"


def _case_scene_bad_content(root):
    _set_line(root / "scenes.jsonl", 3, json.dumps({"scene": "s3", "content": 5}))
    return "scenes.jsonl", 3, "content"


def _case_splits_unknown_user(root):
    (root / "splits.json").write_text('{\n  "train": ["ann@phone"],\n  "test": [\n    "carol@tv"\n  ]\n}\n')
    return "splits.json", 4, 'unknown user "carol@tv"'


def _case_splits_not_schema(root):
    (root / "splits.json").write_text('{\n  "train": "ann@phone"\n}\n')
    return "splits.json", 2, "must be a list"


def _case_splits_unknown_name(root):
    (root / "splits.json").write_text('{\n  "train": ["ann@phone"],\n  "holdout": ["bob@laptop"]\n}\n')
    return "splits.json", 3, "unknown split"


def _case_splits_leak(root):
    (root / "splits.json").write_text('{\n  "train": ["ann@phone", "bob@laptop"],\n  "test": ["bob@laptop"]\n}\n')
    return "splits.json", 2, "more than one split"


def _case_splits_malformed(root):
    (root / "splits.json").write_text('{\n  "train": ["ann@phone",,]\n}\n')
    return "splits.json", 2, "malformed JSON"


def _case_meta_format(root):
    (root / "dataset.json").write_text('{\n  "format": "csv-pairs",\n  "version": 1\n}\n')
    return "dataset.json", 2, "format"


def _case_meta_version(root):
    (root / "dataset.json").write_text('{\n  "format": "prefstyle-pairs",\n  "version": 2\n}\n')
    return "dataset.json", 3, "unsupported version 2"


CASES = [v for k, v in sorted(globals().items()) if k.startswith("_case_")]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__[6:] for c in CASES])
def test_each_malformed_case_names_file_and_line(good: Path, case):
    if case is _case_same_image_via_link and not hasattr(os, "symlink"):
        pytest.skip("no symlinks here")
    file, line, fragment = case(good)
    with pytest.raises(InputFormatError) as info:
        PairsDataset.load(good)
    e = info.value
    assert Path(e.path) == good / file
    assert e.line == line, str(e)
    assert fragment in str(e)
    assert str(e).startswith(f"{good / file}:{line}: ")
    errors = [p for p in collect_problems(good) if p.severity == "error"]
    assert [(Path(p.path).name, p.line) for p in errors] == [(file, line)], errors


def test_collect_problems_does_not_stop_at_the_first(good: Path):
    _case_malformed_json(good)  # line 3
    _case_unknown_preferred(good)  # line 5
    (good / "images/s1_a.png").unlink()  # used by the valid lines 1, 4, 6 and 7
    problems = collect_problems(good)
    where = [(Path(p.path).name, p.line) for p in problems if p.severity == "error"]
    assert where == [("judgments.jsonl", n) for n in (1, 3, 4, 5, 6, 7)]
    with pytest.raises(InputFormatError) as info:
        PairsDataset.load(good)
    assert info.value.line == 3  # parse errors come first, image errors after


def test_progress_reports_image_checks(good: Path):
    calls = []
    ds, problems = read_with_problems(good, progress=lambda done, total: calls.append((done, total)))
    assert problems == [] and len(ds) == 7
    assert calls == [(i, 8) for i in range(1, 9)]  # 6 judged images + 2 scene sources, each once


def test_check_images_false_skips_file_checks(good: Path):
    (good / "images/s1_a.png").unlink()
    ds = PairsDataset.load(good, check_images=False)
    assert len(ds) == 7


def test_warnings_do_not_stop_loading(good: Path):
    # a consistency item that repeats nothing, a scene missing from scenes.jsonl, user != person@device
    path = good / "judgments.jsonl"
    with path.open("a") as f:
        f.write(
            json.dumps(
                {
                    "user": "bob@laptop",
                    "scene": "s3",
                    "image_a": "images/s3_a.png",
                    "image_b": "images/s3_b.png",
                    "preferred": "a",
                    "kind": "consistency",
                }
            )
            + "\n"
        )
        f.write(
            json.dumps(
                {
                    "user": "x@y",
                    "person": "x",
                    "device": "z",
                    "scene": "s9",
                    "image_a": "images/s3_a.png",
                    "image_b": "images/s3_b.png",
                    "preferred": "a",
                }
            )
            + "\n"
        )
    ds = PairsDataset.load(good)
    assert len(ds) == 9
    problems = collect_problems(good)
    assert {p.severity for p in problems} == {"warning"}
    text = "\n".join(map(str, problems))
    assert "judgments.jsonl:8: warning: consistency item" in text
    assert 'scene "s9" is not listed' in text and "person@device" in text


@pytest.mark.parametrize("make", ["missing", "file", "empty-folder"])
def test_not_a_dataset_folder(tmp_path: Path, make: str):
    root = tmp_path / "d"
    if make == "file":
        root.write_text("x")
    elif make == "empty-folder":
        root.mkdir()
    with pytest.raises(PrefstyleError) as info:
        PairsDataset.load(root)
    assert not isinstance(info.value, InputFormatError)
    with pytest.raises(PrefstyleError):
        collect_problems(root)


def test_empty_judgments_file_is_an_error(tmp_path: Path):
    (tmp_path / "judgments.jsonl").write_text("\n")
    with pytest.raises(InputFormatError, match="no judgments"):
        PairsDataset.load(tmp_path)


# ------------------------------------------------------------------------------------------
# prefstyle data validate
# ------------------------------------------------------------------------------------------


def _runner_app():
    from typer.testing import CliRunner

    from prefstyle.cli.data_cmd import app

    return CliRunner(), app


def test_validate_good_dataset_exit_0(good: Path, monkeypatch):
    runner, app = _runner_app()
    from prefstyle.cli import data_cmd

    monkeypatch.setattr(data_cmd, "PROGRESS_MIN_IMAGES", 1)  # exercise the progress bar
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0, result.output
    assert "consistency agreement" in result.output and "50.0%" in result.output
    assert "OK: 0 errors" in result.output

    result = runner.invoke(app, ["validate", str(good), "--json"])
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert out["ok"] is True and out["statistics"]["users"] == 2


def test_validate_bad_dataset_exit_1_lists_problems_with_cap(good: Path):
    _case_unknown_preferred(good)
    for name in ("s1_a", "s1_b", "s2_a"):
        (good / f"images/{name}.png").unlink()
    runner, app = _runner_app()
    result = runner.invoke(app, ["validate", str(good), "--max-problems", "3"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"{good / 'judgments.jsonl'}:1: ")
    assert any(line.startswith("... and ") and line.endswith(" more") for line in lines)
    assert "FAILED" in result.output

    result = runner.invoke(app, ["validate", str(good), "--json"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["ok"] is False
    assert {"path": str(good / "judgments.jsonl"), "line": 5, "severity": "error"}.items() <= next(
        p for p in out["problems"] if "preferred" in p["message"]
    ).items()


def test_validate_not_a_dataset_exit_2(tmp_path: Path):
    runner, app = _runner_app()
    result = runner.invoke(app, ["validate", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["validate", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "judgments.jsonl" in result.output


def test_load_one_user_of_a_crowd(good: Path):
    """``users=``: only that person's judgments, the same as the full read's; other people's
    broken lines are not parsed; a name written with JSON escapes is still found."""
    full = PairsDataset.load(good)
    one = PairsDataset.load(good, users=["bob@laptop"])
    assert one.users() == ["bob@laptop"]
    assert one.by_user("bob@laptop") == full.by_user("bob@laptop")
    assert one.splits == full.splits  # read, though ann has no judgments here
    jpath = good / "judgments.jsonl"
    lines = jpath.read_text().splitlines()
    lines[0] = lines[0][:-3]  # ann's first line is broken JSON now
    lines[3] = lines[3].replace('"bob@laptop"', '"\\u0062ob@laptop"')  # bob's name with an escape
    jpath.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFormatError, match=r"judgments\.jsonl"):
        PairsDataset.load(good)
    again = PairsDataset.load(good, users=["bob@laptop"])
    assert [j.line for j in again.by_user("bob@laptop")] == [j.line for j in full.by_user("bob@laptop")]
