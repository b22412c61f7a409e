"""Runner classes of every kind (Fargate, its own capacity strategy, arm64 with more disk,
Docker on an EC2 capacity provider): the RunTask request ECS receives for each (read at the
fault proxy in front of the emulator), what the job's record keeps, relaunches on the class's
capacity, and what a Docker task costs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local_mode import fault_proxy
from tests.control_plane.class_helpers import CLASSES, configure_classes, docker_provider
from tests.control_plane.cleanup_helpers import interrupt, launch, seed_job
from tests.control_plane.harness import Fleet, job_payload, task_state_change


def requests_received(fleet: Fleet) -> list[dict[str, Any]]:
    """The RunTask requests ECS answered, in order."""
    return [call["body"] for call in fleet.run_task_calls() if call["status"] == 200]


def network(request: dict[str, Any]) -> dict[str, Any]:
    return request["networkConfiguration"]["awsvpcConfiguration"]


def test_each_kind_of_class_gets_its_own_run_task_request(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_classes(fleet)
    monkeypatch.setenv("ASSIGN_PUBLIC_IP", "true")  # public subnets: Fargate tasks get an IP
    jobs = {name: launch(fleet, ("self-hosted", f"class:{name}")) for name in CLASSES}

    small, spot, arm, docker = requests_received(fleet)
    for request in (small, spot, arm):
        assert network(request)["assignPublicIp"] == "ENABLED"
        assert "placementConstraints" not in request
    assert small["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1}]
    assert small["clientToken"] == f"{jobs['small']}-1-ondemand"
    # the class's own strategy (spotPreferred: Spot first) over the module-wide FARGATE
    assert spot["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert spot["clientToken"] == f"{jobs['spot']}-1-spot"
    assert arm["taskDefinition"] == f"{fleet.prefix}-arm"
    provider = docker_provider(fleet)
    assert docker["taskDefinition"] == f"{fleet.prefix}-docker"
    assert docker["capacityProviderStrategy"] == [{"capacityProvider": provider, "weight": 1}]
    assert docker["placementConstraints"] == [{"type": "distinctInstance"}]
    assert docker["group"] == f"{fleet.prefix}-docker"  # one group for every Docker class
    assert network(docker)["assignPublicIp"] == "DISABLED"  # awsvpc on EC2: no public IP
    assert docker["clientToken"] == f"{jobs['docker']}-1-docker"

    records = {name: fleet.record(job_id) for name, job_id in jobs.items()}
    kept = ("capacity_provider", "docker", "architecture", "ephemeral_storage_gib")
    assert {name: tuple(r.get(k) for k in kept) for name, r in records.items()} == {
        "small": ("FARGATE", False, "x86_64", None),
        "spot": ("FARGATE_SPOT", False, "x86_64", None),
        "arm": ("FARGATE", False, "arm64", 100),
        "docker": (provider, True, "x86_64", None),
    }
    task = fleet.describe(records["docker"]["task_arn"])
    assert task["capacityProviderName"] == provider
    assert task["containerInstanceArn"]  # placed on the registered container instance


def test_a_docker_class_that_packs_tasks_has_no_placement_constraint(fleet: Fleet) -> None:
    configure_classes(fleet, {"small": CLASSES["small"], "packed": {**CLASSES["docker"]}})
    doc = json.loads(
        fleet.client("ssm").get_parameter(Name=f"/{fleet.prefix}/config/class-sizes")["Parameter"][
            "Value"
        ]
    )
    doc["classes"]["packed"]["distinct_instance"] = False
    fleet.client("ssm").put_parameter(
        Name=f"/{fleet.prefix}/config/class-sizes",
        Value=json.dumps(doc),
        Type="String",
        Overwrite=True,
    )
    launch(fleet, ("self-hosted", "class:packed"))
    (request,) = requests_received(fleet)
    assert "placementConstraints" not in request
    assert request["capacityProviderStrategy"][0]["capacityProvider"] == docker_provider(fleet)


def test_two_docker_classes_never_share_an_instance(fleet: Fleet) -> None:
    """distinctInstance separates the tasks of one task group: every Docker class's RunTask
    names the fleet's Docker group, so a job of another Docker class waits for its own
    instance instead of landing beside the first (the emulator places as ECS does)."""
    other = {**CLASSES["docker"], "cpu": 1024, "memory": 2048}
    configure_classes(
        fleet, {"small": CLASSES["small"], "docker": CLASSES["docker"], "dind": other}
    )
    launch(fleet, ("self-hosted", "class:docker"))
    launch(fleet, ("self-hosted", "class:dind"))

    requests = requests_received(fleet)
    assert {r["group"] for r in requests} == {f"{fleet.prefix}-docker"}
    first, second = (fleet.describe(arn) for arn in fleet.tasks())
    placed = [t for t in (first, second) if t.get("containerInstanceArn")]
    waiting = [t for t in (first, second) if t["lastStatus"] == "PROVISIONING"]
    assert (len(placed), len(waiting)) == (1, 1)  # the one instance had room for both


def test_a_docker_job_delivered_twice_launches_once(fleet: Fleet) -> None:
    configure_classes(fleet)
    payload = job_payload(labels=["self-hosted", "class:docker"])
    first = fleet.deliver(payload)
    again = fleet.deliver(payload)

    assert first["result"] == "launched"
    assert again["result"] == "duplicate"
    (request,) = requests_received(fleet)
    assert request["capacityProviderStrategy"][0]["capacityProvider"] == docker_provider(fleet)
    assert fleet.tasks() == [first["task_arn"]]


def test_a_lost_run_task_answer_is_retried_with_the_docker_client_token(fleet: Fleet) -> None:
    configure_classes(fleet)
    fleet.ecs_proxy.add(fault_proxy.lost_response("RunTask", count=1))
    payload = job_payload(labels=["self-hosted", "class:docker"])
    result = fleet.deliver(payload)

    calls = fleet.run_task_calls()
    assert len(calls) == 2
    job_id = payload["workflow_job"]["id"]
    assert {c["body"]["clientToken"] for c in calls} == {f"{job_id}-1-docker"}
    assert fleet.tasks() == [result["task_arn"]]  # ECS answered the retry with the first task


def test_an_interrupted_docker_job_is_relaunched_on_its_capacity_provider(fleet: Fleet) -> None:
    configure_classes(fleet, instances=2)  # the first task's instance is still busy
    job_id = launch(fleet, ("self-hosted", "class:docker"))
    seed_job(fleet, job_id, labels=["self-hosted", "class:docker"])  # still queued
    first = interrupt(fleet, job_id, "TaskFailedToStart")

    first_request, relaunch = requests_received(fleet)
    record = fleet.record(job_id)
    assert record["task_arn"] != first and record["relaunches"] == 1
    for field in ("capacityProviderStrategy", "placementConstraints", "networkConfiguration"):
        assert relaunch[field] == first_request[field]
    assert relaunch["clientToken"] == f"{job_id}-2-docker"
    assert record["capacity_provider"] == docker_provider(fleet)


def test_a_job_recorded_before_docker_classes_relaunches_where_its_class_runs_now(
    fleet: Fleet,
) -> None:
    """A record written before classes had `docker` relaunches as its class is configured
    now: a class without its own strategy on the module-wide one, another on its own."""
    configure_classes(fleet)
    jobs = [launch(fleet), launch(fleet, ("self-hosted", "class:spot"))]
    for job_id in jobs:
        fleet.client("dynamodb").update_item(
            TableName=f"{fleet.prefix}-state",
            Key={"pk": {"S": f"job#{job_id}"}},
            UpdateExpression="REMOVE docker, architecture, ephemeral_storage_gib",
        )
        seed_job(fleet, job_id)
        interrupt(fleet, job_id)

    relaunched = [r for r in requests_received(fleet) if r["clientToken"].split("-")[1] == "2"]
    assert [r["capacityProviderStrategy"][0]["capacityProvider"] for r in relaunched] == [
        "FARGATE",
        "FARGATE_SPOT",
    ]
    assert all("placementConstraints" not in r for r in relaunched)
    assert [fleet.record(job_id)["relaunches"] for job_id in jobs] == [1, 1]


def test_a_docker_task_is_billed_its_seconds_but_not_priced(fleet: Fleet, capsys) -> None:
    configure_classes(fleet)
    job_id = launch(fleet, ("self-hosted", "class:docker"))
    task_arn = fleet.record(job_id)["task_arn"]
    fleet.client("ecs").stop_task(cluster=fleet.prefix, task=task_arn, reason="done")
    stopped = task_state_change(
        fleet,
        task_arn,
        "STOPPED",
        exit_code=0,
        stopCode="EssentialContainerExited",
        pullStartedAt="2026-11-28T00:00:00Z",
        stoppedAt="2026-11-28T00:05:00Z",
        capacityProviderName=docker_provider(fleet),
        launchType="EC2",
    )
    fleet.invoke(stopped)
    fleet.invoke(stopped)  # again: billed once

    record = fleet.record(job_id)
    assert record["billed_seconds"] == 300
    assert "cost_usd" not in record  # EC2 bills the instance, not the task
    assert record["billed_tasks"] == [task_arn]
    assert '"JobCostUSD"' not in capsys.readouterr().out
