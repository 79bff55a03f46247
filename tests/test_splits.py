"""User and scene splits: deterministic, sized by the fractions, never leaking across splits."""

from __future__ import annotations

import random

import pytest

from prefstyle.data.pairs import Scene
from prefstyle.data.splits import overlaps, person_of_user, split_scenes, split_users


def _assert_partition(splits: dict[str, list[str]], items: set[str]) -> None:
    assert overlaps(splits) == {}
    assert set().union(*map(set, splits.values())) == items
    assert sum(len(v) for v in splits.values()) == len(items)


def test_split_users_deterministic_sized_and_disjoint():
    users = [f"p{i}@d{i % 3}" for i in range(100)]
    a = split_users(users, seed=7)
    shuffled = users[:] + users[:10]
    random.Random(1).shuffle(shuffled)
    assert split_users(shuffled, seed=7) == a  # input order and repeats do not matter
    assert [len(a[k]) for k in ("train", "val", "test")] == [80, 10, 10]
    _assert_partition(a, set(users))
    assert all(v == sorted(v) for v in a.values())
    assert split_users(users, seed=8) != a


def test_adding_a_user_moves_few_others():
    users = [f"u{i:03d}" for i in range(200)]
    before = split_users(users, seed=0)
    after = split_users(users + ["newcomer"], seed=0)
    moved = sum(1 for k in before for u in before[k] if u not in after[k])
    assert moved <= 3


def test_group_keeps_a_person_on_all_devices_together():
    users = [f"p{i}@{dev}" for i in range(30) for dev in ("phone", "laptop", "tv")]
    s = split_users(users, seed=3, group=person_of_user)
    _assert_partition(s, set(users))
    where = {person_of_user(u): name for name, members in s.items() for u in members}
    for name, members in s.items():
        assert all(where[person_of_user(u)] == name for u in members)
    assert [len(s[k]) for k in ("train", "val", "test")] == [72, 9, 9]


def test_split_scenes_no_leakage_with_groups_and_scene_objects():
    scenes = [Scene(f"photo{i}#crop{c}") for i in range(20) for c in range(4)]
    s = split_scenes(scenes, (0.5, 0.25, 0.25), seed=11, group=lambda sid: sid.split("#")[0])
    _assert_partition(s, {x.scene for x in scenes})
    photos = {name: {sid.split("#")[0] for sid in members} for name, members in s.items()}
    assert not (photos["train"] & photos["val"] or photos["train"] & photos["test"] or photos["val"] & photos["test"])
    assert [len(s[k]) for k in ("train", "val", "test")] == [40, 20, 20]
    assert (
        split_scenes(
            [x.scene for x in reversed(scenes)], (0.5, 0.25, 0.25), seed=11, group=lambda sid: sid.split("#")[0]
        )
        == s
    )


def test_two_way_split_and_small_counts():
    s = split_scenes(["a", "b", "c"], (0.5, 0.5), seed=0, names=("fit", "holdout"))
    _assert_partition(s, {"a", "b", "c"})
    assert sorted(len(v) for v in s.values()) == [1, 2]
    assert split_users([], seed=0) == {"train": [], "val": [], "test": []}


@pytest.mark.parametrize(
    "fractions, names",
    [
        ((0.8, 0.3, 0.1), ("train", "val", "test")),
        ((0.5, 0.5), ("train", "val", "test")),
        ((1.2, -0.2), ("a", "b")),
        ((0.5, 0.5), ("a", "a")),
    ],
)
def test_bad_fractions_rejected(fractions, names):
    with pytest.raises(ValueError):
        split_users(["x", "y"], fractions, names=names)


def test_overlaps_names_the_splits():
    assert overlaps({"train": ["a", "b"], "test": ["b", "c"], "val": ["b"]}) == {"b": ["train", "test", "val"]}
