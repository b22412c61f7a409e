"""`ecsrunner runners details`: every stored field, the status timeline, the live ECS task."""

from __future__ import annotations

import json
import re

import pytest
from control_plane.github import GitHubError
from control_plane.state import iso

from ecsrunner.records import SUMMARY_FIELDS
from local_mode import send_job
from tests.cli.conftest import Cli, advance, queue, task_exits
from tests.control_plane.harness import Fleet, job_payload


def value(text: str, key: str) -> str:
    """The value of a `key  value` line of the details output."""
    for line in text.splitlines():
        found, _, rest = line.partition(" ")
        if found == key:
            return rest.strip()
    raise AssertionError(f"no {key} line in:\n{text}")


@pytest.mark.usefixtures("held_tasks")
def test_a_busy_runner_with_its_running_task(fleet: Fleet, run: Cli) -> None:
    job_id = queue(fleet, labels=("self-hosted", "class:medium"))
    advance(fleet, job_id, "busy")
    record = fleet.record(job_id)
    name = fleet.runner_name(job_id)

    result = run("runners", "details", name)

    assert result.exit_code == 0, result.output
    text = result.stdout
    for field in record:  # every stored field is shown
        if field not in ("history", "created_at", "updated_at", "labels", "expires_at"):
            assert value(text, field) == str(record[field]), field
    assert re.fullmatch(rf"{record['created_at']} \(\d+s ago\)", value(text, "created_at"))
    expires = iso(float(record["expires_at"]))  # epoch seconds (the TTL) shown as a time
    assert re.fullmatch(rf"{expires} \(in (29|30)d\)", value(text, "expires_at"))
    assert value(text, "labels") == "self-hosted, class:medium"
    timeline = text.split("Timeline\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert [line.split()[0] for line in timeline] == ["pending", "starting", "running", "busy"]
    assert [line.split()[1] for line in timeline] == [e["at"] for e in record["history"]]
    live = text.split("ECS task\n", 1)[1]
    assert value(live, "last_status") == "RUNNING"
    assert value(live, "desired_status") == "RUNNING"
    assert value(live, "capacity_provider") == "FARGATE"
    # only what the emulator reports: no times or sizes, no stop, and not its PENDING
    # container on a RUNNING task, nor that container's exit code 0
    assert [line.split()[0] for line in live.splitlines()] == [
        "last_status",
        "desired_status",
        "capacity_provider",
    ]

    by_id = run.json("runners", "details", str(job_id))
    assert by_id == run.json("runners", "details", name)
    assert set(by_id) == {"runner", "task", "task_error"}
    assert by_id["runner"]["history"] == record["history"]
    assert by_id["runner"]["status"] == "busy"
    assert by_id["runner"]["cpu"] == 1024  # DynamoDB numbers as JSON numbers
    assert by_id["runner"]["expires_at"] == expires  # every time ISO 8601 in JSON
    assert set(by_id["runner"]) == set(SUMMARY_FIELDS) | set(record)
    assert by_id["task"]["task_arn"] == record["task_arn"]
    assert by_id["task"]["last_status"] == "RUNNING"
    assert by_id["task_error"] is None


def test_a_stopped_task_shows_its_stop_reason_and_exit_code(fleet: Fleet, run: Cli) -> None:
    job_id = queue(fleet)
    advance(fleet, job_id, "busy")
    task_arn = fleet.record(job_id)["task_arn"]
    # moto keeps no exit codes: ECS's answer for a task stopped by a Spot interruption
    fleet.ecs_describes(
        {
            "taskArn": task_arn,
            "clusterArn": task_arn.replace(":task/", ":cluster/").rsplit("/", 1)[0],
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "stopCode": "SpotInterruption",
            "stoppedReason": "Your Spot Task was interrupted.",
            "capacityProviderName": "FARGATE_SPOT",
            "cpu": "512",
            "memory": "1024",
            "startedAt": 1_790_000_000.0,
            "stoppedAt": 1_790_000_125.5,
            "containers": [{"name": "runner", "lastStatus": "STOPPED", "exitCode": 143}],
        }
    )

    details = run.json("runners", "details", str(job_id))

    assert details["task"] == {
        "task_arn": task_arn,
        "last_status": "STOPPED",
        "desired_status": "STOPPED",
        "stop_code": "SpotInterruption",
        "stopped_reason": "Your Spot Task was interrupted.",
        "container_status": "STOPPED",
        "exit_code": 143,
        "capacity_provider": "FARGATE_SPOT",
        "cpu": "512",
        "memory": "1024",
        "created_at": None,
        "started_at": "2026-09-21T14:13:20.000Z",
        "stopped_at": "2026-09-21T14:15:25.500Z",
    }


@pytest.mark.usefixtures("held_tasks")
def test_a_stopped_task_shows_no_container_state_the_emulator_invents(
    fleet: Fleet, run: Cli
) -> None:
    job_id = queue(fleet)
    advance(fleet, job_id, "busy")
    task_arn = fleet.record(job_id)["task_arn"]
    fleet.client("ecs").stop_task(cluster=fleet.prefix, task=task_arn, reason="Terminated")
    task_exits(fleet, job_id, exit_code=143, stopCode="UserInitiated", stoppedReason="Terminated")
    raw = fleet.describe(task_arn)  # the emulator: a PENDING container with exit code 0
    assert raw["lastStatus"] == "STOPPED"
    assert [(c["lastStatus"], c["exitCode"]) for c in raw["containers"]] == [("PENDING", 0)]

    text = run("runners", "details", str(job_id)).stdout
    stored, live = text.split("ECS task\n", 1)
    assert value(stored, "exit_code") == "143"  # the record's, from the task's STOPPED event
    assert value(live, "last_status") == "STOPPED"
    assert value(live, "stopped_reason") == "Terminated"
    assert "container_status" not in live
    assert "exit_code" not in live
    details = run.json("runners", "details", str(job_id))
    assert details["runner"]["exit_code"] == 143
    assert (details["task"]["container_status"], details["task"]["exit_code"]) == (None, None)


def test_a_job_without_a_task_shows_no_jit_config(fleet: Fleet, run: Cli) -> None:
    """The JIT config's key is recorded before GitHub is asked for the config: a launch that
    GitHub refused has a key and no config."""
    refused = {"message": "Resource not accessible by integration"}
    fleet.github.add_fault(r"generate-jitconfig$", status=403, method="POST", body=refused)
    job_id = send_job.new_job_id()
    with pytest.raises(GitHubError, match="403"):
        fleet.deliver(job_payload(job_id=job_id))
    record = fleet.record(job_id)
    assert record["status"] == "pending" and "task_arn" not in record
    assert record["jit_object"] and not fleet.jit_keys(record["runner_name"])
    rejected = queue(fleet, labels=("self-hosted", "class:huge"))
    launched = queue(fleet)
    assert fleet.record(launched)["jit_object"]

    for job, shown in ((job_id, False), (rejected, False), (launched, True)):
        details = run.json("runners", "details", str(job))
        assert ("jit_object" in details["runner"]) is shown, job
        assert "jit_parameter" not in details["runner"]
        text = run("runners", "details", str(job)).stdout
        assert ("jit_object" in text) is shown, job


def test_a_task_ecs_no_longer_knows(fleet: Fleet, run: Cli) -> None:
    job_id = queue(fleet)
    task_arn = fleet.record(job_id)["task_arn"]
    fleet.ecs_proxy.add(
        {
            "operation": "DescribeTasks",
            "status": 200,
            "count": 2,
            "body": {"tasks": [], "failures": [{"arn": task_arn, "reason": "MISSING"}]},
        }
    )

    result = run("runners", "details", str(job_id))
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith(
        f"{task_arn.rsplit('/', 1)[1]}: ECS no longer knows this task"
    )
    assert run.json("runners", "details", str(job_id))["task"] is None


def test_a_rejected_job_has_no_task(fleet: Fleet, run: Cli) -> None:
    job_id = queue(fleet, labels=("self-hosted", "class:huge"))
    result = run("runners", "details", fleet.runner_name(job_id))
    assert result.exit_code == 0, result.output
    assert value(result.stdout, "reason").startswith("unknown class 'huge'")
    assert result.stdout.rstrip().endswith("ECS task\nno task was started")
    details = json.loads(run("runners", "details", str(job_id), "-o", "json").stdout)
    assert (details["runner"]["status"], details["task"]) == ("rejected", None)
    assert not fleet.ecs_proxy.requests("DescribeTasks")  # nothing to ask ECS


def test_an_unknown_runner(fleet: Fleet, run: Cli) -> None:
    result = run("runners", "details", f"{fleet.prefix}-424242")
    assert result.exit_code == 1
    assert (
        result.stderr == f"error: no runner {fleet.prefix}-424242 in table {fleet.prefix}-state\n"
    )


def test_a_name_that_is_not_this_fleets(fleet: Fleet, run: Cli) -> None:
    result = run("runners", "details", "other-fleet-123")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: 'other-fleet-123' is not a runner of this fleet: give its name "
        f"({fleet.prefix}-<job id>) or its job id\n"
    )
