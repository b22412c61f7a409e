"""The arithmetic of `ecsrunner stats` (ecsrunner/stats.py): nearest-rank percentiles,
outcomes, cost sums over DynamoDB's Decimal numbers, the split by class."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ecsrunner import stats

TEN = [12, 3, 45, 7, 30, 1, 60, 5, 20, 9]  # sorted: 1 3 5 7 9 12 20 30 45 60


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        (TEN, 50, 9),  # index ceil(5) - 1 = 4
        (TEN, 90, 45),  # index ceil(9) - 1 = 8: not the maximum
        (TEN, 100, 60),
        (TEN, 91, 60),  # index ceil(9.1) - 1 = 9
        ([4], 50, 4),
        ([4], 90, 4),
        ([2, 1], 50, 1),
        (list(range(1, 21)), 90, 18),
        (list(range(1, 101)), 90, 90),
        (list(range(1, 8)), 90, 7),  # ceil(6.3) - 1 = 6
        ([Decimal("2.5"), Decimal("1.25"), Decimal("7")], 50, Decimal("2.5")),
    ],
)
def test_nearest_rank_percentile(values: list, p: int, expected: float) -> None:
    assert stats.percentile(values, p) == expected


def test_no_values_no_percentile() -> None:
    assert stats.percentile([], 50) is None
    assert stats.spread([]) == {"p50": None, "p90": None, "max": None}


def test_spread_in_seconds_to_the_millisecond() -> None:
    assert stats.spread([1.23456, 2.0, 3.5]) == {"p50": 2.0, "p90": 3.5, "max": 3.5}
    assert stats.spread([1.23456]) == {"p50": 1.235, "p90": 1.235, "max": 1.235}


def test_cost_summed_as_decimal_over_jobs_with_a_cost() -> None:
    records = [{"cost_usd": Decimal("0.1")} for _ in range(3)] + [{}, {"cost_usd": None}]
    assert stats.cost(records) == {"total": 0.3, "per_job_mean": 0.1}
    third = [{"cost_usd": Decimal("0.01")}, {"cost_usd": Decimal("0.01")}, {"cost_usd": 0}]
    assert stats.cost(third) == {"total": 0.02, "per_job_mean": 0.006667}
    assert stats.cost([{}, {"status": "completed"}]) == {"total": None, "per_job_mean": None}


def test_outcomes_terminal_statuses_and_in_flight() -> None:
    statuses = ["completed", "completed", "failed", "rejected", "busy", "pending", "starting"]
    summary = stats.summary([{"status": s} for s in statuses])
    assert summary["jobs"] == 7
    assert summary["outcomes"] == {
        "completed": 2,
        "failed": 1,
        "stopped": 0,
        "rejected": 1,
        "in-flight": 3,
    }


def test_summary_by_class() -> None:
    records = [
        {"status": "completed", "class_name": "small", "queue_wait_seconds": Decimal(w)}
        for w in ("4", "2", "9")
    ] + [
        {"status": "busy", "class_name": "large", "start_seconds": Decimal("31.5")},
        {"status": "rejected"},  # rejected before a class was chosen
    ]

    summary = stats.summarize(iter(records))

    assert list(summary) == [
        "jobs",
        "outcomes",
        "queue_wait_seconds",
        "start_seconds",
        "cost_usd",
        "by_class",
    ]
    assert summary["jobs"] == 5
    assert summary["queue_wait_seconds"] == {"p50": 4.0, "p90": 9.0, "max": 9.0}
    assert summary["start_seconds"] == {"p50": 31.5, "p90": 31.5, "max": 31.5}
    assert list(summary["by_class"]) == ["(none)", "large", "small"]
    small = summary["by_class"]["small"]
    assert "by_class" not in small
    assert (small["jobs"], small["outcomes"]["completed"]) == (3, 3)
    assert small["queue_wait_seconds"] == {"p50": 4.0, "p90": 9.0, "max": 9.0}
    assert small["start_seconds"] == {"p50": None, "p90": None, "max": None}
    assert summary["by_class"]["large"]["outcomes"]["in-flight"] == 1
    assert summary["by_class"]["(none)"]["outcomes"]["rejected"] == 1


def test_nothing_to_summarize() -> None:
    nothing = {"p50": None, "p90": None, "max": None}
    assert stats.summarize([]) == {
        "jobs": 0,
        "outcomes": dict.fromkeys(stats.OUTCOMES, 0),
        "queue_wait_seconds": nothing,
        "start_seconds": nothing,
        "cost_usd": {"total": None, "per_job_mean": None},
        "by_class": {},
    }


def test_measures_as_floats_or_null() -> None:
    record = {"job_seconds": Decimal("65"), "cost_usd": Decimal("0.0123"), "status": "completed"}
    assert stats.measures(record) == {
        "job_seconds": 65.0,
        "queue_wait_seconds": None,
        "start_seconds": None,
        "billed_seconds": None,
        "cost_usd": 0.0123,
    }
    assert isinstance(stats.measures(record)["job_seconds"], float)
