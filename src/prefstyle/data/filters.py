"""Quality filters for crowd-sourced pairwise judgments, after the PPS paper (PPSD, CVPR 2026).

In PPSD each person answers 90 pairs: 80 main items and 10 consistency items, a consistency
item repeating an earlier main pair with the sides swapped. The authors drop users on response
time and on consistency (858 participants -> 767 users kept); the paper does not state the
numeric thresholds, so the defaults of :class:`FilterConfig` are **chosen by us**:

* consistency agreement >= 0.7 (7 of 10 repeats answered the same way; someone clicking at
  random reaches that with probability 0.17), judged only for users with at least 5 matched
  consistency items;
* median response time >= 800 ms (two renditions of one photo cannot be compared faster);
* at most 30 % of answers faster than 400 ms.

A user without consistency items or without response times is not judged on that criterion
(the report notes it) unless ``require_consistency`` / ``require_response_times`` is set.
Counts that differ from the expected 80 + 10 are noted in the report, not dropped, unless
``min_main`` is set.
"""

from __future__ import annotations

import statistics as stats
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from prefstyle.data.pairs import PairsDataset, consistency_checks
from prefstyle.errors import PrefstyleError


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds of :func:`filter_users`; None switches a criterion off."""

    min_consistency: float | None = 0.7
    min_consistency_items: int = 5
    min_median_response_ms: float | None = 800.0
    fast_response_ms: float = 400.0
    max_fast_fraction: float | None = 0.3
    min_main: int | None = None
    require_consistency: bool = False
    require_response_times: bool = False
    expected_main: int = 80
    expected_consistency: int = 10

    def __post_init__(self) -> None:
        if self.min_consistency is not None and not 0.0 <= self.min_consistency <= 1.0:
            raise ValueError(f"min_consistency must be in [0, 1], got {self.min_consistency}")
        if self.max_fast_fraction is not None and not 0.0 <= self.max_fast_fraction <= 1.0:
            raise ValueError(f"max_fast_fraction must be in [0, 1], got {self.max_fast_fraction}")
        if self.min_consistency_items < 1:
            raise ValueError("min_consistency_items must be >= 1")


@dataclass(frozen=True)
class Reason:
    """Why a user was dropped: a stable ``code`` and a sentence with the user's numbers."""

    # "consistency", "no_consistency", "median_response", "fast_responses", "no_response_times", "too_few_main"
    code: str
    message: str


@dataclass
class UserQuality:
    """The quality numbers of one user and the verdict."""

    user: str
    main: int
    consistency: int
    consistency_matched: int
    agreement: float | None
    median_response_ms: float | None
    fast_fraction: float | None
    reasons: list[Reason] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def kept(self) -> bool:
        return not self.reasons


@dataclass
class FilterReport:
    """What :func:`filter_users` kept and dropped, and why."""

    config: FilterConfig
    users: list[UserQuality]

    @property
    def kept(self) -> list[str]:
        return [u.user for u in self.users if u.kept]

    @property
    def dropped(self) -> dict[str, list[Reason]]:
        return {u.user: list(u.reasons) for u in self.users if not u.kept}

    def reason_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for u in self.users:
            for r in u.reasons:
                counts[r.code] += 1
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "users": len(self.users),
            "kept": self.kept,
            "dropped": {user: [asdict(r) for r in reasons] for user, reasons in self.dropped.items()},
            "reason_counts": self.reason_counts(),
            "per_user": [
                {
                    "user": u.user,
                    "kept": u.kept,
                    "main": u.main,
                    "consistency": u.consistency,
                    "consistency_matched": u.consistency_matched,
                    "agreement": u.agreement,
                    "median_response_ms": u.median_response_ms,
                    "fast_fraction": u.fast_fraction,
                    "reasons": [asdict(r) for r in u.reasons],
                    "notes": list(u.notes),
                }
                for u in self.users
            ],
        }

    def to_markdown(self) -> str:
        c = self.config
        lines = [
            "# User quality filter",
            "",
            f"Kept **{len(self.kept)}** of {len(self.users)} users; dropped {len(self.users) - len(self.kept)}.",
            "",
            "Thresholds: "
            + "; ".join(
                [
                    f"consistency agreement >= {c.min_consistency:.2f} (>= {c.min_consistency_items} matched items)"
                    if c.min_consistency is not None
                    else "consistency: off",
                    f"median response >= {c.min_median_response_ms:.0f} ms"
                    if c.min_median_response_ms is not None
                    else "median response: off",
                    f"answers faster than {c.fast_response_ms:.0f} ms <= {c.max_fast_fraction:.0%}"
                    if c.max_fast_fraction is not None
                    else "fast answers: off",
                    f"main judgments >= {c.min_main}" if c.min_main is not None else "main count: off",
                ]
            )
            + ".",
            "",
        ]
        counts = self.reason_counts()
        if counts:
            lines += ["| reason | users |", "|---|---|"]
            lines += [f"| {code} | {n} |" for code, n in counts.items()]
            lines.append("")
        dropped = [u for u in self.users if not u.kept]
        if dropped:
            lines += [
                "## Dropped users",
                "",
                "| user | agreement | median ms | fast | reasons |",
                "|---|---|---|---|---|",
            ]
            for u in dropped:
                lines.append(
                    f"| {_md(u.user)} | {_fmt(u.agreement, '.2f')} | {_fmt(u.median_response_ms, '.0f')} | "
                    f"{_fmt(u.fast_fraction, '.0%')} | {'; '.join(_md(r.message) for r in u.reasons)} |"
                )
            lines.append("")
        noted = [u for u in self.users if u.notes]
        if noted:
            lines += ["## Notes", ""]
            lines += [f"- {_md(u.user)}: {'; '.join(_md(n) for n in u.notes)}" for u in noted]
            lines.append("")
        return "\n".join(lines)


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def assess_users(ds: PairsDataset, cfg: FilterConfig | None = None) -> FilterReport:
    """Compute every user's quality numbers and verdict without building a filtered dataset."""
    cfg = cfg or FilterConfig()
    agreed: dict[str, list[bool]] = defaultdict(list)
    for check in consistency_checks(ds.judgments):
        if check.agreed is not None:
            agreed[check.item.user].append(check.agreed)

    users = []
    for user in ds.users():
        js = ds.by_user(user)
        n_main = sum(1 for j in js if j.kind == "main")
        n_cons = len(js) - n_main
        matched = agreed.get(user, [])
        agreement = sum(matched) / len(matched) if matched else None
        times = [j.response_ms for j in js if j.response_ms is not None]
        median = float(stats.median(times)) if times else None
        fast = sum(1 for t in times if t < cfg.fast_response_ms) / len(times) if times else None
        q = UserQuality(user, n_main, n_cons, len(matched), agreement, median, fast)

        if cfg.min_consistency is not None:
            if len(matched) >= cfg.min_consistency_items:
                if agreement < cfg.min_consistency:  # type: ignore[operator]
                    q.reasons.append(
                        Reason(
                            "consistency",
                            f"consistency agreement {agreement:.2f} < {cfg.min_consistency:.2f} "
                            f"({sum(matched)} of {len(matched)} repeats answered the same way)",
                        )
                    )
            elif cfg.require_consistency:
                q.reasons.append(
                    Reason(
                        "no_consistency",
                        f"{len(matched)} matched consistency items < {cfg.min_consistency_items} required",
                    )
                )
            else:
                q.notes.append(f"consistency not judged ({len(matched)} matched items < {cfg.min_consistency_items})")
        if times:
            if cfg.min_median_response_ms is not None and median < cfg.min_median_response_ms:  # type: ignore[operator]
                q.reasons.append(
                    Reason("median_response", f"median response {median:.0f} ms < {cfg.min_median_response_ms:.0f} ms")
                )
            if cfg.max_fast_fraction is not None and fast > cfg.max_fast_fraction:  # type: ignore[operator]
                q.reasons.append(
                    Reason(
                        "fast_responses",
                        f"{fast:.0%} of answers faster than {cfg.fast_response_ms:.0f} ms "
                        f"> {cfg.max_fast_fraction:.0%}",
                    )
                )
        elif cfg.require_response_times:
            q.reasons.append(Reason("no_response_times", "no response times recorded"))
        elif cfg.min_median_response_ms is not None or cfg.max_fast_fraction is not None:
            q.notes.append("response times not judged (none recorded)")
        if cfg.min_main is not None and n_main < cfg.min_main:
            q.reasons.append(Reason("too_few_main", f"{n_main} main judgments < {cfg.min_main} required"))
        if n_main != cfg.expected_main or n_cons != cfg.expected_consistency:
            q.notes.append(
                f"{n_main} main + {n_cons} consistency judgments "
                f"(expected {cfg.expected_main} + {cfg.expected_consistency})"
            )
        users.append(q)
    return FilterReport(cfg, users)


def filter_users(ds: PairsDataset, cfg: FilterConfig | None = None) -> tuple[PairsDataset, FilterReport]:
    """Drop the users that fail ``cfg``; returns the dataset of the kept users and the report.

    The kept dataset shares ``root``, ``scenes`` and ``meta``; its splits list only kept users.
    """
    report = assess_users(ds, cfg)
    return ds.subset(report.kept), report


def filter_summary(report: FilterReport, ds: PairsDataset) -> dict[str, Any]:
    """The counts of a filter run over dataset ``ds`` (the unfiltered one), for logs and results.

    ``{"users", "kept", "removed", "removed_by_filter": {code: users}, "splits": {name: {"kept",
    "removed"}}}``; a user failing two filters counts once in ``removed`` and under both codes.
    """
    kept = set(report.kept)
    return {
        "users": len(report.users),
        "kept": len(kept),
        "removed": len(report.users) - len(kept),
        "removed_by_filter": report.reason_counts(),
        "splits": {
            name: {"kept": sum(u in kept for u in set(members)), "removed": sum(u not in kept for u in set(members))}
            for name, members in ds.splits.items()
        },
    }


def summary_line(summary: dict[str, Any]) -> str:
    """One sentence of :func:`filter_summary`'s counts (training logs, evaluation notes)."""
    by = ", ".join(f"{code} {n}" for code, n in summary["removed_by_filter"].items()) or "none"
    splits = "; ".join(f"{name} {c['kept']} kept / {c['removed']} removed" for name, c in summary["splits"].items())
    return (
        f"PPS quality filters: kept {summary['kept']} of {summary['users']} users, removed {summary['removed']} "
        f"(by filter: {by})" + (f"; {splits}" if splits else "")
    )


def apply_filters(ds: PairsDataset, cfg: FilterConfig | None = None) -> tuple[PairsDataset, dict[str, Any]]:
    """:func:`filter_users` plus :func:`filter_summary`: the kept dataset and the counts."""
    kept, report = filter_users(ds, cfg)
    return kept, filter_summary(report, ds)


def apply_filter_setting(ds: PairsDataset, setting: Any, key: str) -> tuple[PairsDataset, dict[str, Any] | None]:
    """A training config's ``quality_filter`` setting (``true``: the defaults, ``false``/null: off, or a
    mapping of :class:`FilterConfig` fields) applied to ``ds``: the kept dataset and the counts (None
    when off). A bad mapping is a :class:`~prefstyle.errors.PrefstyleError` naming ``key``."""
    if not setting:
        return ds, None
    try:
        cfg = FilterConfig(**setting) if isinstance(setting, Mapping) else FilterConfig()
    except (TypeError, ValueError) as e:
        raise PrefstyleError(f"{key}: {e}") from None
    return apply_filters(ds, cfg)
