"""`ecsrunner runs list`: the jobs runners ran, by runner or by repository, with conclusion
and duration (from when the runner took the job to when it finished)."""

from __future__ import annotations

import re

import pytest

from ecsrunner.output import parse_time
from tests.cli.conftest import RUN_FIELDS, Cli, advance, measure, queue, task_exits
from tests.control_plane.class_helpers import configure_classes, docker_provider
from tests.control_plane.harness import OWNER, REPO, Fleet, job_payload

OTHER_REPO = f"{OWNER}/Other-Repo"
# What the control plane records of a finished job (docs/CONTRACTS.md), as DynamoDB numbers.
MEASURES = {
    "job_seconds": 65,
    "queue_wait_seconds": 4.5,
    "start_seconds": 31.25,
    "billed_seconds": 96,
    "cost_usd": 0.0123,
}
NO_MEASURES = dict.fromkeys(MEASURES)


def entered(record: dict, status: str) -> str:
    return next(e["at"] for e in record["history"] if e["status"] == status)


@pytest.fixture
def jobs(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Jobs of two repositories (an org-scoped fleet), oldest first."""
    monkeypatch.setenv("GITHUB_SCOPE", "org")
    jobs = {
        "passed": queue(fleet),
        "elsewhere": queue(fleet, repository=OTHER_REPO),
        "crashed": queue(fleet, labels=("self-hosted", "class:medium")),
        "rejected": queue(fleet, labels=("self-hosted", "class:huge")),
        "waiting": queue(fleet),
    }
    advance(fleet, jobs["passed"], "completed")
    measure(fleet, jobs["passed"], **MEASURES)
    advance(fleet, jobs["elsewhere"], "completed", conclusion="cancelled")
    advance(fleet, jobs["crashed"], "busy")
    task_exits(fleet, jobs["crashed"], exit_code=137, stoppedReason="OutOfMemoryError")
    return jobs


def test_runs_of_a_repository_newest_first_with_conclusion_and_duration(
    fleet: Fleet, run: Cli, jobs: dict[str, int]
) -> None:
    listing = run.json("runs", "list", "--repo", REPO)

    assert set(listing) == {"runs", "truncated"} and listing["truncated"] is False
    runs = listing["runs"]
    # newest first; the rejected job never had a runner; the other repository is left out
    assert [r["job_id"] for r in runs] == [jobs["waiting"], jobs["crashed"], jobs["passed"]]
    assert all(list(r) == RUN_FIELDS for r in runs)
    passed = fleet.record(jobs["passed"])
    started, finished = entered(passed, "busy"), entered(passed, "completed")
    assert runs[2] == {
        "job_id": jobs["passed"],
        "runner_name": fleet.runner_name(jobs["passed"]),
        "repository": REPO,
        "workflow_name": "CI",
        "job_name": "build",
        "run_id": int(passed["run_id"]),
        "run_attempt": 1,
        "status": "completed",
        "conclusion": "success",
        "created_at": passed["created_at"],
        "started_at": started,
        "finished_at": finished,
        "duration_seconds": round(parse_time(finished) - parse_time(started), 3),
        # floats, whether DynamoDB holds 65 or 4.5
        "job_seconds": 65.0,
        "queue_wait_seconds": 4.5,
        "start_seconds": 31.25,
        "billed_seconds": 96.0,
        "cost_usd": 0.0123,
    }
    assert all(isinstance(runs[2][name], float) for name in MEASURES)
    assert (runs[1]["status"], runs[1]["conclusion"]) == ("failed", None)
    assert runs[1]["duration_seconds"] is not None
    crashed = fleet.record(jobs["crashed"])  # measured by the control plane as it ran
    assert {name: runs[1][name] for name in MEASURES} == {
        name: None if crashed.get(name) is None else float(crashed[name]) for name in MEASURES
    }
    # its task stopped with no image pull (the test's ECS event has none): billed nothing
    assert (runs[1]["billed_seconds"], runs[1]["cost_usd"], runs[1]["job_seconds"]) == (
        0.0,
        0.0,
        None,
    )
    waiting = runs[0]
    assert (waiting["status"], waiting["started_at"], waiting["duration_seconds"]) == (
        "starting",
        None,
        None,
    )


def test_the_table(fleet: Fleet, run: Cli, jobs: dict[str, int]) -> None:
    result = run("runs", "list", "--repo", OTHER_REPO.lower())  # GitHub: case-insensitive

    assert result.exit_code == 0, result.output
    header, rule, row = result.stdout.splitlines()
    assert header.split() == [
        "JOB",
        "NAME",
        "REPOSITORY",
        "RUNNER",
        "STATUS",
        "CONCLUSION",
        "DURATION",
        "COST",
        "AGE",
    ]
    assert set(rule) == {"-", " "}
    cells = row.split()
    assert cells[:7] == [
        str(jobs["elsewhere"]),
        "CI",
        "/",
        "build",
        OTHER_REPO,
        fleet.runner_name(jobs["elsewhere"]),
        "completed",
    ]
    assert cells[7] == "cancelled"
    # no job_seconds recorded: how long the runner had the job; no cost recorded
    assert re.fullmatch(r"\d+s", cells[8])
    assert cells[9] == "-"
    assert re.fullmatch(r"\d+s", cells[10])  # age, not a time stamp


def test_duration_and_cost_as_recorded(fleet: Fleet, run: Cli, jobs: dict[str, int]) -> None:
    result = run("runs", "list", "--repo", REPO)

    assert result.exit_code == 0, result.output
    rows = {row.split()[0]: row.split() for row in result.stdout.splitlines()[2:]}
    # GitHub's started → completed (not the runner's few seconds here), and the cost
    assert rows[str(jobs["passed"])][-4:-1] == ["1m", "05s", "$0.0123"]
    assert rows[str(jobs["waiting"])][-3:-1] == ["-", "-"]  # not started: no duration, cost


def test_all_lists_rejected_jobs_too(fleet: Fleet, run: Cli, jobs: dict[str, int]) -> None:
    everything = run.json("runs", "list", "--repo", REPO, "--all")["runs"]

    order = ["waiting", "rejected", "crashed", "passed"]
    assert [r["job_id"] for r in everything] == [jobs[key] for key in order]
    rejected = everything[1]
    assert list(rejected) == RUN_FIELDS
    record = fleet.record(jobs["rejected"])
    assert rejected == {
        "job_id": jobs["rejected"],
        "runner_name": None,  # no runner was ever started for it
        "repository": REPO,
        "workflow_name": "CI",
        "job_name": "build",
        "run_id": int(record["run_id"]),
        "run_attempt": 1,
        "status": "rejected",
        "conclusion": None,
        "created_at": record["created_at"],
        "started_at": None,
        "finished_at": record["created_at"],
        "duration_seconds": None,
        **NO_MEASURES,
    }
    result = run("runs", "list", "--repo", REPO, "--all")
    rows = result.stdout.splitlines()[2:]
    assert [row.split()[0] for row in rows] == [str(jobs[key]) for key in order]
    assert rows[1].split()[4:7] == [REPO, "-", "rejected"]


def test_the_run_of_one_runner(fleet: Fleet, run: Cli, jobs: dict[str, int]) -> None:
    name = fleet.runner_name(jobs["crashed"])
    by_name = run.json("runs", "list", "--runner-id", name)
    assert by_name == run.json("runs", "list", "--runner-id", str(jobs["crashed"]))
    (only,) = by_name["runs"]
    assert (only["runner_name"], only["status"]) == (name, "failed")


def test_a_runner_that_served_another_job(fleet: Fleet, run: Cli) -> None:
    """GitHub may hand a runner another queued job with the same labels: the run is that job."""
    started_for = queue(fleet)
    served = started_for + 1000
    name = fleet.runner_name(started_for)
    for action in ("in_progress", "completed"):
        payload = job_payload(action, job_id=served, runner_name=name, conclusion="success")
        fleet.deliver(payload)

    (only,) = run.json("runs", "list", "--runner-id", name)["runs"]

    assert (only["job_id"], only["runner_name"], only["conclusion"]) == (served, name, "success")


def test_limit_and_since(fleet: Fleet, run: Cli, jobs: dict[str, int]) -> None:
    top = run.json("runs", "list", "--repo", REPO, "--limit", "1")
    assert [r["job_id"] for r in top["runs"]] == [jobs["waiting"]]
    assert top["truncated"] is True
    result = run("runs", "list", "--repo", REPO, "--limit", "1")
    assert result.stdout.rstrip().endswith("(1 shown; more match: raise --limit or use --since)")

    since = fleet.record(jobs["crashed"])["created_at"]
    recent = run.json("runs", "list", "--repo", REPO, "--since", since)
    assert [r["job_id"] for r in recent["runs"]] == [jobs["waiting"], jobs["crashed"]]
    none = run("runs", "list", "--repo", REPO, "--since", "2999-01-01")
    assert (none.exit_code, none.stdout) == (0, "no runs match\n")


@pytest.mark.parametrize(
    "args", [(), ("--repo", REPO, "--runner-id", "1")], ids=["neither", "both"]
)
def test_one_of_runner_or_repository(run: Cli, args: tuple[str, ...]) -> None:
    result = run("runs", "list", *args)
    assert result.exit_code == 2
    assert result.stderr == "error: give one of --runner-id RUNNER or --repo OWNER/REPO\n"


def test_an_unknown_runner(fleet: Fleet, run: Cli) -> None:
    result = run("runs", "list", "--runner-id", "77")
    assert result.exit_code == 1
    assert result.stderr == f"error: no runner 77 in table {fleet.prefix}-state\n"


def test_a_docker_job_has_billed_seconds_but_no_cost(fleet: Fleet, run: Cli) -> None:
    """EC2 bills the instance: the control plane records the Docker task's seconds only, and
    `runs list` and `stats` show its cost as not known."""
    configure_classes(fleet)
    job_id = queue(fleet, labels=("self-hosted", "class:docker"))
    advance(fleet, job_id, "completed")
    task_exits(
        fleet,
        job_id,
        pullStartedAt="2026-11-28T00:00:00Z",
        stoppedAt="2026-11-28T00:02:00Z",
        capacityProviderName=docker_provider(fleet),
    )

    (listed,) = run.json("runs", "list", "--repo", REPO)["runs"]
    assert (listed["billed_seconds"], listed["cost_usd"]) == (120, None)
    header, _, row = run("runs", "list", "--repo", REPO).stdout.splitlines()
    assert row.split()[header.split().index("COST") + 2] == "-"  # the NAME "CI / build": 3
    stats = run.json("stats", "--class", "docker")
    assert stats["cost_usd"] == {"total": None, "per_job_mean": None}
    assert run("stats", "--class", "docker").stdout.splitlines()[-1].split()[-2:] == ["-", "-"]
