"""What the fleet's jobs waited, took and cost, from their state table records: pure functions
(records in, a JSON-ready summary out), so that the arithmetic is tested on its own.

The measures are the control plane's record fields (docs/CONTRACTS.md); any may be missing
on a record (older versions, jobs still running), and DynamoDB numbers arrive as Decimal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from control_plane.state import TERMINAL

# The measures a record may carry, in the order `runs list --output json` shows them.
MEASURES = ("job_seconds", "queue_wait_seconds", "start_seconds", "billed_seconds", "cost_usd")
IN_FLIGHT = "in-flight"  # the outcome of a job not finished yet
OUTCOMES = (*TERMINAL, IN_FLIGHT)
NO_CLASS = "(none)"  # the class of a job rejected before a class was chosen
SECONDS_PLACES, USD_PLACES = 3, 6


def number(value: Any) -> float | None:
    """A stored number (Decimal) as a float; None stays None."""
    return None if value is None else float(value)


def measures(record: Mapping[str, Any]) -> dict[str, float | None]:
    return {name: number(record.get(name)) for name in MEASURES}


def percentile(values: Sequence[float], p: int) -> float | None:
    """Nearest rank: the value at index ceil(p/100 * n) - 1 of the sorted values (the bench
    uses it too)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-p * len(ordered) // 100)  # ceil(p * n / 100)
    return ordered[max(rank, 1) - 1]


def spread(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p90 and max of durations in seconds (None each when there are none)."""
    return {
        name: None if value is None else round(value, SECONDS_PLACES)
        for name, value in (
            ("p50", percentile(values, 50)),
            ("p90", percentile(values, 90)),
            ("max", percentile(values, 100)),
        )
    }


def cost(records: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """The total and the mean per job, over the jobs that have a cost (summed as Decimal)."""
    costs = [Decimal(str(r["cost_usd"])) for r in records if r.get("cost_usd") is not None]
    if not costs:
        return {"total": None, "per_job_mean": None}
    total = sum(costs, Decimal(0))
    return {
        "total": round(float(total), USD_PLACES),
        "per_job_mean": round(float(total / len(costs)), USD_PLACES),
    }


def outcome(record: Mapping[str, Any]) -> str:
    status = record.get("status")
    return str(status) if status in TERMINAL else IN_FLIGHT


def summary(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Jobs by outcome (every outcome, 0 too), queue wait and start time spreads, cost."""
    counted = dict.fromkeys(OUTCOMES, 0)
    for record in records:
        counted[outcome(record)] += 1
    return {
        "jobs": len(records),
        "outcomes": counted,
        **{
            name: spread([float(r[name]) for r in records if r.get(name) is not None])
            for name in ("queue_wait_seconds", "start_seconds")
        },
        "cost_usd": cost(records),
    }


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The summary of all the records, and of each class's (by class name)."""
    everything = list(records)
    by_class: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in everything:
        by_class[str(record.get("class_name") or NO_CLASS)].append(record)
    return {
        **summary(everything),
        "by_class": {name: summary(by_class[name]) for name in sorted(by_class)},
    }
