"""Deterministic train/val/test splits of users and of scenes, with no leakage across splits.

Both splitters order the items (or their groups) by a seeded hash, not by a shuffle of the
input order: the result does not depend on the order or duplicates of the input, and adding an
item moves few others. Sizes follow the fractions by largest remainder over the number of items
(groups are kept whole, so grouped splits are as close to the fractions as the groups allow).
Each split's members are returned sorted.

* :func:`split_users`: users of a pairs dataset. A user is ``person@device``; pass
  ``group=person_of_user`` to keep all devices of one person in the same split.
* :func:`split_scenes`: scenes of the content pool. ``group`` keeps related scenes together
  (e.g. crops of one photograph: ``group=lambda s: s.split("#")[0]``).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

DEFAULT_NAMES = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def person_of_user(user: str) -> str:
    """The person part of a ``person@device`` user name (the whole name when there is no ``@``)."""
    return user.split("@", 1)[0]


def _counts(total: int, fractions: Sequence[float]) -> list[int]:
    """Largest-remainder rounding of ``total * fractions`` (ties go to the earlier split)."""
    exact = [total * f for f in fractions]
    counts = [int(x) for x in exact]
    order = sorted(range(len(fractions)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _check(fractions: Sequence[float], names: Sequence[str]) -> None:
    if len(fractions) != len(names):
        raise ValueError(f"{len(fractions)} fractions for {len(names)} split names {tuple(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"split names must be distinct, got {tuple(names)}")
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {tuple(fractions)}")


def _hash_key(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()


def split_keys(
    keys: Iterable[str],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    names: Sequence[str] = DEFAULT_NAMES,
    group: Callable[[str], str] | None = None,
) -> dict[str, list[str]]:
    """Split distinct string keys into ``names`` by ``fractions``; the common core of both splitters.

    Groups (``group(key)``, default: each key alone) are ordered by a hash of ``seed`` and the
    group name and laid end to end; a group goes to the split whose share of the item count
    contains the group's midpoint. A key is in exactly one split; so is every group.
    """
    _check(fractions, names)
    members: dict[str, list[str]] = defaultdict(list)
    for key in sorted(set(keys)):
        members[key if group is None else group(key)].append(key)
    ordered = sorted(members, key=lambda g: (_hash_key(seed, g), g))
    total = sum(len(v) for v in members.values())
    bounds = []
    acc = 0
    for c in _counts(total, fractions):
        acc += c
        bounds.append(acc)
    out: dict[str, list[str]] = {name: [] for name in names}
    pos = 0
    for g in ordered:
        size = len(members[g])
        mid = pos + size / 2
        index = next((i for i, b in enumerate(bounds) if mid < b), len(names) - 1)
        out[names[index]].extend(members[g])
        pos += size
    return {name: sorted(v) for name, v in out.items()}


def split_users(
    users: Iterable[str],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    names: Sequence[str] = DEFAULT_NAMES,
    group: Callable[[str], str] | None = None,
) -> dict[str, list[str]]:
    """Split users into train/val/test (or ``names``) deterministically.

    >>> split_users([f"u{i}" for i in range(10)], seed=1)["train"].__len__()
    8
    """
    return split_keys(users, fractions, seed, names, group)


def split_scenes(
    scenes: Iterable[Any],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    names: Sequence[str] = DEFAULT_NAMES,
    group: Callable[[str], str] | None = None,
) -> dict[str, list[str]]:
    """Split scene ids into train/val/test (or ``names``) so that no scene (or group) is in two splits.

    ``scenes`` are scene ids or objects with a ``.scene`` attribute (e.g. :class:`~prefstyle.data.pairs.Scene`);
    repeats count once.
    """
    ids = [s if isinstance(s, str) else s.scene for s in scenes]
    return split_keys(ids, fractions, seed, names, group)


def overlaps(splits: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Members that appear in more than one split, each with the names of its splits."""
    where: dict[str, list[str]] = defaultdict(list)
    for name, members in splits.items():
        for m in dict.fromkeys(members):
            where[m].append(name)
    return {m: names for m, names in where.items() if len(names) > 1}
