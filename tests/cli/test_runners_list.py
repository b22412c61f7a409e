"""`ecsrunner runners list`: newest first from the by-kind-created index, filters, limit,
pagination across DynamoDB pages, and the JSON shape."""

from __future__ import annotations

import pytest

from ecsrunner.records import PAGE_SIZE, SUMMARY_FIELDS
from local_mode.fault_proxy import FaultProxy
from tests.cli.conftest import Cli, advance, queue, task_exits
from tests.control_plane.harness import OWNER, REPO, Fleet

OTHER_REPO = f"{OWNER}/Other-Repo"


def names(listing: dict) -> list[str]:
    return [runner["runner_name"] for runner in listing["runners"]]


HEADERS = ["RUNNER", "STATUS", "CLASS", "REPOSITORY", "JOB", "AGE", "TASK"]


def test_the_table_shows_every_runner_newest_first(fleet: Fleet, run: Cli) -> None:
    small = queue(fleet)
    medium = queue(fleet, labels=("self-hosted", "class:medium"))
    advance(fleet, medium, "busy")

    result = run("runners", "list")

    assert result.exit_code == 0, result.output
    header, rule, *rows = result.stdout.splitlines()
    assert header.split() == HEADERS  # no REASON: no runner was rejected or failed
    assert set(rule) == {"-", " "}
    expected = [
        (medium, "busy", "medium", fleet.record(medium)["task_arn"].rsplit("/", 1)[1]),
        (small, "starting", "small", fleet.record(small)["task_arn"].rsplit("/", 1)[1]),
    ]
    assert len(rows) == len(expected)
    for row, (job_id, status, class_name, task) in zip(rows, expected, strict=True):
        cells = row.split()
        assert cells[:4] == [fleet.runner_name(job_id), status, class_name, REPO]
        assert " ".join(cells[4:7]) == "CI / build"  # workflow / job
        assert cells[7].endswith("s")  # an age, seconds old
        assert cells[8:] == [task]


def test_a_reason_column_when_a_runner_was_rejected_or_failed(fleet: Fleet, run: Cli) -> None:
    crashed = queue(fleet)
    advance(fleet, crashed, "busy")
    task_exits(fleet, crashed, exit_code=137, stoppedReason="OutOfMemoryError: killed")
    rejected = queue(fleet, labels=("self-hosted", "class:huge"))
    busy = queue(fleet)
    advance(fleet, busy, "busy")

    result = run("runners", "list")

    assert result.exit_code == 0, result.output
    header, _, *rows = result.stdout.splitlines()
    assert header.split() == [*HEADERS, "REASON"]
    reason_at = header.index("REASON")  # the last column: its text runs to the line's end
    reasons = {row.split()[0]: row[reason_at:].rstrip() for row in rows}
    assert reasons == {
        fleet.runner_name(busy): "-",
        fleet.runner_name(rejected): fleet.record(rejected)["reason"],
        fleet.runner_name(crashed): (
            "EssentialContainerExited: OutOfMemoryError: killed; exit code 137"
        ),
    }
    assert reasons[fleet.runner_name(rejected)].startswith("unknown class 'huge'")
    # JSON is unchanged: the record's reason and stop reason, as stored
    listing = {r["runner_name"]: r for r in run.json("runners", "list")["runners"]}
    for job_id in (crashed, rejected, busy):
        record = fleet.record(job_id)
        shown = listing[fleet.runner_name(job_id)]
        assert (shown["reason"], shown["stop_reason"], shown["exit_code"]) == (
            record.get("reason"),
            record.get("stop_reason"),
            record.get("exit_code"),
        )
    # absent when none of the listed runners was rejected or failed
    header = run("runners", "list", "--status", "busy").stdout.splitlines()[0]
    assert header.split() == HEADERS


def test_json_has_every_documented_field_and_iso_times(fleet: Fleet, run: Cli) -> None:
    job_id = queue(fleet, labels=("self-hosted", "class:large"))
    advance(fleet, job_id, "completed", conclusion="failure")

    listing = run.json("runners", "list")

    assert set(listing) == {"runners", "truncated"}
    assert listing["truncated"] is False
    (runner,) = listing["runners"]
    assert tuple(runner) == SUMMARY_FIELDS
    record = fleet.record(job_id)
    assert runner == {
        **dict.fromkeys(SUMMARY_FIELDS),
        "runner_name": fleet.runner_name(job_id),
        "job_id": job_id,
        "status": "completed",
        "class_name": "large",
        "cpu": 2048,
        "memory": 4096,
        "repository": REPO,
        "workflow_name": "CI",
        "job_name": "build",
        "run_id": int(record["run_id"]),
        "run_attempt": 1,
        "labels": ["self-hosted", "class:large"],
        "task_arn": record["task_arn"],
        "capacity_provider": "FARGATE",
        "conclusion": "failure",
        "created_at": record["created_at"],
        "updated_at": record["updated_at"],
    }
    assert runner["created_at"].endswith("Z") and "T" in runner["created_at"]


@pytest.fixture
def mixed(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Runners of two repositories of an org-scoped fleet, in several statuses and classes."""
    monkeypatch.setenv("GITHUB_SCOPE", "org")
    jobs = {
        "done": queue(fleet),  # Hello-World, small → completed
        "busy": queue(fleet, labels=("self-hosted", "class:large"), repository=OTHER_REPO),
        "starting": queue(fleet, repository=OTHER_REPO),
        "rejected": queue(fleet, labels=("self-hosted", "class:huge")),
    }
    advance(fleet, jobs["done"], "completed")
    advance(fleet, jobs["busy"], "busy")
    return jobs


FILTERS = [
    ((), ["rejected", "starting", "busy", "done"]),
    (("--status", "completed"), ["done"]),
    (("--status", "busy", "--status", "completed"), ["busy", "done"]),
    (("--status", "active"), ["starting", "busy"]),
    (("--repo", OTHER_REPO.upper()), ["starting", "busy"]),  # GitHub: case-insensitive
    (("--repo", REPO), ["rejected", "done"]),
    (("--class", "LARGE"), ["busy"]),
    (("--class", "small", "--repo", OTHER_REPO), ["starting"]),
    (("--status", "active", "--class", "huge"), []),
    (("--since", "1h"), ["rejected", "starting", "busy", "done"]),
    (("--since", "2999-01-01"), []),
    (("--limit", "2"), ["rejected", "starting"]),
]


def test_filters(fleet: Fleet, run: Cli, mixed: dict[str, int]) -> None:
    for args, expected in FILTERS:  # one fleet for all cases: the records are the same
        listing = run.json("runners", "list", *args)
        assert names(listing) == [fleet.runner_name(mixed[key]) for key in expected], args


def test_since_a_moment_keeps_what_was_created_from_then_on(
    fleet: Fleet, run: Cli, mixed: dict[str, int]
) -> None:
    since = fleet.record(mixed["busy"])["created_at"]
    listing = run.json("runners", "list", "--since", since)
    expected = ["rejected", "starting", "busy"]
    assert names(listing) == [fleet.runner_name(mixed[key]) for key in expected]


def test_more_runners_than_one_page(fleet: Fleet, run: Cli, aws_proxy: FaultProxy) -> None:
    count = PAGE_SIZE + 30
    for _ in range(count):
        queue(fleet, labels=("self-hosted", "class:huge"))  # rejected: a record, no task
    stored = sorted(fleet.records(), key=lambda r: r["created_at"], reverse=True)
    env = {"AWS_ENDPOINT_URL_DYNAMODB": aws_proxy.url}

    everything = run.json("runners", "list", "--limit", "0", env=env)

    assert len(everything["runners"]) == count and everything["truncated"] is False
    assert set(names(everything)) == {r["runner_name"] for r in stored}
    created = [r["created_at"] for r in everything["runners"]]
    assert created == sorted(created, reverse=True)  # newest first, across pages
    queries = aws_proxy.requests("Query")
    assert len(queries) == 2  # 130 records: two pages of the index, no scan
    assert not aws_proxy.requests("Scan")
    for query in queries:
        assert query["body"]["IndexName"] == "by-kind-created"
        assert query["body"]["ScanIndexForward"] is False
    assert "ExclusiveStartKey" not in queries[0]["body"]
    assert "ExclusiveStartKey" in queries[1]["body"]

    aws_proxy.reset()
    first = run("runners", "list", "--limit", "120", env=env)
    assert sum(fleet.prefix in line for line in first.stdout.splitlines()) == 120
    assert first.stdout.rstrip().endswith(
        "(120 shown; more match: raise --limit or narrow the filters)"
    )
    assert run.json("runners", "list", "--limit", "120")["truncated"] is True

    aws_proxy.reset()
    top = run.json("runners", "list", "--limit", "5", env=env)
    assert names(top) == names(everything)[:5]
    assert len(aws_proxy.requests("Query")) == 1  # enough found: no further page read


def test_nothing_to_list(run: Cli) -> None:
    result = run("runners", "list")
    assert (result.exit_code, result.stdout) == (0, "no runners match\n")
    assert run.json("runners", "list") == {"runners": [], "truncated": False}
