"""The cleanup's rules on Docker tasks (a Docker class, on an EC2 capacity provider, with a
container instance registered in the emulator): orphans, timeouts, idle runners and
relaunches as on Fargate, and tasks waiting for EC2 capacity reported, never stopped as idle."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.control_plane import emf
from tests.control_plane.class_helpers import configure_classes, docker_provider
from tests.control_plane.cleanup_helpers import (
    acted,
    age,
    clean,
    connect,
    interrupt,
    launch,
    run_task,
    seed_job,
    task_status,
)
from tests.control_plane.harness import Fleet, job_payload, task_state_change

pytestmark = pytest.mark.usefixtures("held_tasks")
DOCKER = ("self-hosted", "class:docker")
MINUTE = 60.0


def running_docker_job(fleet: Fleet) -> tuple[int, str]:
    job_id = launch(fleet, DOCKER)
    task_arn = fleet.record(job_id)["task_arn"]
    fleet.invoke(task_state_change(fleet, task_arn, "RUNNING"))
    return job_id, task_arn


def test_orphaned_timed_out_and_idle_docker_tasks_are_stopped(fleet: Fleet) -> None:
    configure_classes(fleet, instances=3)  # one task per instance
    orphan = run_task(fleet, f"{fleet.prefix}-990001", "docker", docker_provider(fleet))
    timed_out, timed_out_task = running_docker_job(fleet)
    name = fleet.runner_name(timed_out)
    connect(fleet, name)
    fleet.deliver(job_payload("in_progress", job_id=timed_out, runner_name=name, labels=DOCKER))
    age(fleet, timed_out, 7 * 3600)
    idle, idle_task = running_docker_job(fleet)
    age(fleet, idle, 20 * MINUTE)
    for task_arn in (orphan, timed_out_task, idle_task):
        assert fleet.describe(task_arn)["capacityProviderName"] == docker_provider(fleet)

    assert acted(clean()) == {
        "tasks_stopped_orphan": 1,
        "tasks_stopped_timeout": 1,
        "tasks_stopped_idle": 1,
    }
    for task_arn in (orphan, timed_out_task, idle_task):
        assert task_status(fleet, task_arn)[0] == "STOPPED"
    assert fleet.record(timed_out)["stopped_by"] == "timeout"
    assert fleet.record(idle)["reason"] == "idle runner: no job after 20 min (limit 15 min)"
    assert acted(clean()) == {}


def test_a_docker_job_whose_task_stopped_unseen_is_relaunched_by_the_cleanup(
    fleet: Fleet,
) -> None:
    configure_classes(fleet, instances=2)
    job_id = launch(fleet, DOCKER)
    seed_job(fleet, job_id, labels=list(DOCKER))
    first = interrupt(fleet, job_id, "TaskFailedToStart", seen=False)

    # and the first runner's registration, which will never connect, is deleted
    assert acted(clean()) == {"jobs_relaunched": 1, "registrations_deleted": 1}
    record = fleet.record(job_id)
    assert record["task_arn"] != first
    assert fleet.describe(record["task_arn"])["capacityProviderName"] == docker_provider(fleet)
    relaunch = fleet.run_task_calls()[-1]["body"]
    assert relaunch["placementConstraints"] == [{"type": "distinctInstance"}]
    assert relaunch["clientToken"] == f"{job_id}-2-docker"


def provisioning(fleet: Fleet, task_arn: str, created_ago: float, **fields: Any) -> None:
    """ECS describes the task as waiting for capacity since `created_ago` seconds (moto
    starts every task RUNNING at once)."""
    task = fleet.describe(task_arn)
    fleet.ecs_describes(
        {
            "taskArn": task_arn,
            "taskDefinitionArn": task["taskDefinitionArn"],
            "startedBy": task["startedBy"],
            "lastStatus": "PROVISIONING",
            "desiredStatus": "RUNNING",
            "capacityProviderName": task["capacityProviderName"],
            "createdAt": time.time() - created_ago,
            **fields,
        }
    )


def capacity_waits(out: str) -> list[tuple[float, dict[str, str]]]:
    return [(m.value, m.dimensions) for m in emf.named(out, "TasksWaitingForCapacity")]


def test_a_task_waiting_for_capacity_is_reported_and_not_stopped_as_idle(
    fleet: Fleet, capsys
) -> None:
    configure_classes(fleet)
    job_id = launch(fleet, DOCKER)
    task_arn = fleet.record(job_id)["task_arn"]
    age(fleet, job_id, 20 * MINUTE)  # launched 20 minutes ago: past the idle limit
    provisioning(fleet, task_arn, 20 * MINUTE)
    capsys.readouterr()

    assert acted(clean()) == {"tasks_waiting_for_capacity": 1}
    assert task_status(fleet, task_arn)[0] == "RUNNING"
    assert fleet.record(job_id)["status"] == "starting"
    out = capsys.readouterr().out
    (wait,) = capacity_waits(out)
    assert wait == (1, {"Fleet": fleet.prefix, "Class": "docker"})
    (line,) = [json.loads(x) for x in out.splitlines() if "waiting for capacity" in x]
    assert line["level"] == "error"
    assert (line["task_arn"], line["job_id"], line["class_name"]) == (task_arn, job_id, "docker")
    assert (line["waited_minutes"], line["limit_minutes"]) == (20, 15)
    assert line["capacity_provider"] == docker_provider(fleet)

    # placed at last, running for 2 minutes: idle counts from its start, not its creation
    provisioning(fleet, task_arn, 22 * MINUTE, lastStatus="RUNNING", startedAt=time.time() - 120)
    assert acted(clean()) == {}
    assert capacity_waits(capsys.readouterr().out) == [
        (0, {"Fleet": fleet.prefix, "Class": "docker"})
    ]


def test_a_wait_within_the_limit_is_not_reported(
    fleet: Fleet, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CAPACITY_WAIT_MINUTES", "30")
    configure_classes(fleet)
    job_id = launch(fleet, DOCKER)
    provisioning(fleet, fleet.record(job_id)["task_arn"], 20 * MINUTE)
    capsys.readouterr()

    assert acted(clean()) == {}
    assert capacity_waits(capsys.readouterr().out) == [
        (0, {"Fleet": fleet.prefix, "Class": "docker"})
    ]


def test_a_fleet_without_docker_classes_publishes_a_fleet_wide_zero(fleet: Fleet, capsys) -> None:
    clean()
    assert capacity_waits(capsys.readouterr().out) == [(0, {"Fleet": fleet.prefix})]
