"""`ecsrunner stats`: jobs by outcome, queue wait and start time percentiles, and cost, overall
and by class, from the state table's `by-kind-created` index (never a scan). The records are
written by the real control plane; their measures (docs/CONTRACTS.md) are set on them."""

from __future__ import annotations

import re
import time

import pytest
from control_plane.state import iso

from ecsrunner.output import parse_time
from local_mode.fault_proxy import FaultProxy
from tests.cli.conftest import Cli, advance, measure, queue, task_exits
from tests.control_plane.harness import OWNER, REPO, Fleet

OTHER_REPO = f"{OWNER}/Other-Repo"
NOTHING = {"p50": None, "p90": None, "max": None}
# (class, how the job ends, queue wait, start seconds, cost): ten jobs with measures
MEASURED = [
    ("small", "completed", 12, 31.5, 0.0011),
    ("small", "completed", 3, 40, 0.0022),
    ("small", "completed", 45, 52.25, 0.0033),
    ("small", "completed", 7, 60, 0.0044),
    ("small", "completed", 30, 70, 0.0055),
    ("small", "completed", 1, 80, 0.0066),
    ("medium", "completed", 60, 90, 0.0123),
    ("medium", "completed", 5, 100, 0.0456),
    ("medium", "failed", 20, 110, 0.0789),
    ("medium", "busy", 9, 25.125, None),  # still running: no cost yet
]


def outcomes(completed: int = 0, failed: int = 0, rejected: int = 0, in_flight: int = 0) -> dict:
    counts = {"completed": completed, "failed": failed, "stopped": 0, "rejected": rejected}
    return {**counts, "in-flight": in_flight}


@pytest.fixture
def jobs(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """The ten measured jobs, a rejected one, one of another repository still starting, and
    one created eight days ago (outside the default --since 7d)."""
    monkeypatch.setenv("GITHUB_SCOPE", "org")
    jobs: dict[str, list[int]] = {"small": [], "medium": []}
    for class_name, end, wait, start, cost in MEASURED:
        job = queue(fleet, labels=("self-hosted", f"class:{class_name}"))
        jobs[class_name].append(job)
        advance(fleet, job, "busy" if end in ("busy", "failed") else "completed")
        if end == "failed":
            task_exits(fleet, job, exit_code=1)
        costs = {} if cost is None else {"cost_usd": cost}
        measure(fleet, job, queue_wait_seconds=wait, start_seconds=start, **costs)
    jobs["rejected"] = [queue(fleet, labels=("self-hosted", "class:huge"))]
    jobs["elsewhere"] = [queue(fleet, repository=OTHER_REPO)]
    old = queue(fleet, labels=("self-hosted", "class:large"))
    advance(fleet, old, "completed")
    eight_days_ago = iso(time.time() - 8 * 86400)
    measure(fleet, old, created_at=eight_days_ago, queue_wait_seconds=9999, cost_usd=1.5)
    jobs["old"] = [old]
    return jobs


SMALL = {
    "jobs": 6,
    "outcomes": outcomes(completed=6),
    "queue_wait_seconds": {"p50": 7.0, "p90": 45.0, "max": 45.0},
    "start_seconds": {"p50": 52.25, "p90": 80.0, "max": 80.0},
    "cost_usd": {"total": 0.0231, "per_job_mean": 0.00385},
}
MEDIUM = {
    "jobs": 4,
    "outcomes": outcomes(completed=2, failed=1, in_flight=1),
    "queue_wait_seconds": {"p50": 9.0, "p90": 60.0, "max": 60.0},
    "start_seconds": {"p50": 90.0, "p90": 110.0, "max": 110.0},
    "cost_usd": {"total": 0.1368, "per_job_mean": 0.0456},
}


def test_stats_json(fleet: Fleet, run: Cli, jobs: dict[str, list[int]]) -> None:
    before = time.time()
    summary = run.json("stats")

    assert list(summary) == [
        "since",
        "jobs",
        "outcomes",
        "queue_wait_seconds",
        "start_seconds",
        "cost_usd",
        "by_class",
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", summary["since"])
    assert abs(before - 7 * 86400 - (parse_time(summary["since"]) or 0)) < 60  # --since 7d
    # the old job is left out; the rejected one counts, without measures
    assert {k: v for k, v in summary.items() if k not in ("since", "by_class")} == {
        "jobs": 12,
        "outcomes": outcomes(completed=8, failed=1, rejected=1, in_flight=2),
        # ten queue waits, sorted: 1 3 5 7 9 12 20 30 45 60 (nearest rank)
        "queue_wait_seconds": {"p50": 9.0, "p90": 45.0, "max": 60.0},
        "start_seconds": {"p50": 60.0, "p90": 100.0, "max": 110.0},
        "cost_usd": {"total": 0.1599, "per_job_mean": 0.017767},  # nine jobs with a cost
    }
    assert summary["by_class"] == {
        "huge": {
            "jobs": 1,
            "outcomes": outcomes(rejected=1),
            "queue_wait_seconds": NOTHING,
            "start_seconds": NOTHING,
            "cost_usd": {"total": None, "per_job_mean": None},
        },
        "medium": MEDIUM,
        "small": {
            **SMALL,
            "jobs": 7,  # and the job of the other repository, default class, still starting
            "outcomes": outcomes(completed=6, in_flight=1),
        },
    }


def test_the_table(fleet: Fleet, run: Cli, jobs: dict[str, list[int]]) -> None:
    result = run("stats", "--repo", REPO)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert re.fullmatch(
        rf"Jobs created since \S+Z, repository {REPO} \(table {fleet.prefix}-state\)", lines[0]
    )
    assert lines[1:7] == [
        "CLASS      JOBS    COMPLETED    FAILED    STOPPED    REJECTED    IN-FLIGHT",
        "-------  ------  -----------  --------  ---------  ----------  -----------",
        "huge          1            0         0          0           1            0",
        "medium        4            2         1          0           0            1",
        "small         6            6         0          0           0            0",
        "all          11            8         1          0           1            1",
    ]
    assert lines[7:] == [
        "",
        "Queue wait and start time (p50 / p90 / max); cost of the jobs that have one",
        "CLASS    QUEUE WAIT            START                     COST     PER JOB",
        "-------  --------------------  ------------------------  -------  ---------",
        "huge     -                     -                         -        -",
        "medium   9s / 1m 00s / 1m 00s  1m 30s / 1m 50s / 1m 50s  $0.1368  $0.0456",
        "small    7s / 45s / 45s        52s / 1m 20s / 1m 20s     $0.0231  $0.0039",
        "all      9s / 45s / 1m 00s     1m 00s / 1m 40s / 1m 50s  $0.1599  $0.0178",
    ]


def test_filters(fleet: Fleet, run: Cli, jobs: dict[str, list[int]]) -> None:
    medium = run.json("stats", "--class", "MEDIUM")  # class names: case-insensitive
    assert {k: v for k, v in medium.items() if k not in ("since", "by_class")} == MEDIUM
    assert medium["by_class"] == {"medium": MEDIUM}

    small_here = run.json("stats", "--class", "small", "--repo", REPO.upper())
    assert small_here["by_class"] == {"small": SMALL}

    elsewhere = run.json("stats", "--repo", OTHER_REPO.lower())  # GitHub: case-insensitive
    assert (elsewhere["jobs"], elsewhere["outcomes"]) == (1, outcomes(in_flight=1))
    assert elsewhere["queue_wait_seconds"] == NOTHING
    assert list(elsewhere["by_class"]) == ["small"]


def test_since(fleet: Fleet, run: Cli, jobs: dict[str, list[int]]) -> None:
    nine_days = run.json("stats", "--since", "9d")
    assert nine_days["jobs"] == 13  # the job created eight days ago too
    assert nine_days["queue_wait_seconds"]["max"] == 9999.0
    assert nine_days["by_class"]["large"]["cost_usd"] == {"total": 1.5, "per_job_mean": 1.5}
    assert nine_days["cost_usd"]["total"] == 1.6599

    newest = fleet.record(jobs["elsewhere"][0])["created_at"]
    latest = run.json("stats", "--since", newest)
    assert (latest["since"], latest["jobs"]) == (newest, 1)

    later = run.json("stats", "--since", "2999-01-01")
    assert (later["since"], later["jobs"]) == ("2999-01-01T00:00:00.000Z", 0)


def test_an_empty_table(fleet: Fleet, run: Cli) -> None:
    summary = run.json("stats")
    assert summary == {
        "since": summary["since"],
        "jobs": 0,
        "outcomes": outcomes(),
        "queue_wait_seconds": NOTHING,
        "start_seconds": NOTHING,
        "cost_usd": {"total": None, "per_job_mean": None},
        "by_class": {},
    }
    result = run("stats", "--class", "large")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"Jobs created since \S+Z, class large: none\n", result.stdout)


def test_a_bad_since(run: Cli) -> None:
    result = run("stats", "--since", "last week")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --since 'last week': give a span")


def test_reads_the_index_page_by_page_never_a_scan(
    fleet: Fleet, run: Cli, aws_proxy: FaultProxy
) -> None:
    count = 130  # more than a page (100)
    for _ in range(count):
        queue(fleet, labels=("self-hosted", "class:huge"))  # rejected: a record, no task
    env = {"AWS_ENDPOINT_URL_DYNAMODB": aws_proxy.url}

    summary = run.json("stats", "--since", "1h", env=env)

    assert summary["jobs"] == count
    assert summary["outcomes"]["rejected"] == count
    assert not aws_proxy.requests("Scan")
    queries = aws_proxy.requests("Query")
    assert len(queries) == 2
    for query in queries:
        body = query["body"]
        assert body["IndexName"] == "by-kind-created"
        assert body["KeyConditionExpression"] == "#kind = :kind AND created_at >= :since"
        assert body["ExpressionAttributeValues"] == {
            ":kind": {"S": "runner"},
            ":since": {"S": summary["since"]},
        }
    assert "ExclusiveStartKey" not in queries[0]["body"]
    assert "ExclusiveStartKey" in queries[1]["body"]
