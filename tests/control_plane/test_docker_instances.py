"""Single-use Docker instances (control_plane/instances.py): a placed Docker task drains its
EC2 instance, a stopped one terminates it through its Auto Scaling group (replaced at the
group's minimum size), the cleanup retires drained instances a lost event left, and
DOCKER_INSTANCE_REUSE=true turns all of it off. The Auto Scaling group and its instances are
the emulator's; each instance is registered in the cluster as its ECS agent would."""

from __future__ import annotations

from typing import Any

import pytest
from control_plane.settings import Settings, SettingsError

from tests.control_plane.class_helpers import (
    CLASSES,
    ECS_AMI,
    configure_classes,
    docker_provider,
    register_container_instance,
)
from tests.control_plane.cleanup_helpers import acted, clean, launch
from tests.control_plane.harness import Fleet, task_state_change

pytestmark = pytest.mark.usefixtures("held_tasks")
DOCKER = ("self-hosted", "class:docker")
INSTANCE_CALLS = ("DescribeContainerInstances", "UpdateContainerInstancesState")


def docker_group(fleet: Fleet, *, desired: int, min_size: int = 0) -> list[str]:
    """The fleet's Docker classes (and a Fargate one) on the x86_64 Docker Auto Scaling group
    the module creates, with `desired` instances registered in the cluster; returns their
    container instance ARNs in registration order (the emulator places tasks in that order)."""
    configure_classes(fleet, {"small": CLASSES["small"], "docker": CLASSES["docker"]}, instances=0)
    ami = fleet.client("ssm").get_parameter(Name=ECS_AMI["x86_64"])["Parameter"]["Value"]
    name = docker_provider(fleet)
    fleet.client("ec2").create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={"ImageId": ami, "InstanceType": "m7i.xlarge"},
    )
    autoscaling = fleet.client("autoscaling")
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
        MinSize=min_size,
        MaxSize=10,
        DesiredCapacity=desired,
        VPCZoneIdentifier=fleet.subnet_id,
        NewInstancesProtectedFromScaleIn=True,
    )
    return [register_container_instance(fleet, i["InstanceId"]) for i in group(fleet)["Instances"]]


def group(fleet: Fleet) -> dict[str, Any]:
    name = docker_provider(fleet)
    autoscaling = fleet.client("autoscaling")
    return autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ][0]


def container_instance(fleet: Fleet, arn: str) -> dict[str, Any]:
    return fleet.client("ecs").describe_container_instances(
        cluster=fleet.prefix, containerInstances=[arn]
    )["containerInstances"][0]


def ec2_state(fleet: Fleet, arn: str) -> str:
    instance_id = container_instance(fleet, arn)["ec2InstanceId"]
    (reservation,) = fleet.client("ec2").describe_instances(InstanceIds=[instance_id])[
        "Reservations"
    ]
    return reservation["Instances"][0]["State"]["Name"]


def event(fleet: Fleet, task_arn: str, last_status: str, **detail: Any) -> dict[str, Any]:
    """The task's state change as ECS emits it for a task on a capacity provider: with the
    provider and, on EC2, the container instance and launch type."""
    task = fleet.describe(task_arn)
    placement = {"capacityProviderName": task["capacityProviderName"]}
    if task.get("containerInstanceArn"):
        placement.update(containerInstanceArn=task["containerInstanceArn"], launchType="EC2")
    return task_state_change(fleet, task_arn, last_status, **placement, **detail)


def stop(fleet: Fleet, task_arn: str) -> dict[str, Any]:
    """The runner's job is done: the task stops (the emulator frees its instance); returns
    ECS's STOPPED event, which a test delivers when it chooses."""
    fleet.client("ecs").stop_task(cluster=fleet.prefix, task=task_arn, reason="job done")
    return event(fleet, task_arn, "STOPPED", exit_code=0, stoppedReason="job done")


def docker_task(fleet: Fleet) -> tuple[str, str]:
    """A Docker job launched through the webhook; returns its task and container instance."""
    task_arn = fleet.record(launch(fleet, DOCKER))["task_arn"]
    return task_arn, fleet.describe(task_arn)["containerInstanceArn"]


def test_a_placed_docker_task_drains_its_instance_and_the_next_task_lands_elsewhere(
    fleet: Fleet,
) -> None:
    first, second = docker_group(fleet, desired=2)
    task_arn, placed = docker_task(fleet)
    assert placed == first

    assert fleet.invoke(event(fleet, task_arn, "RUNNING"))["instance"] == "draining"
    assert container_instance(fleet, first)["status"] == "DRAINING"
    assert container_instance(fleet, second)["status"] == "ACTIVE"

    # the job is done and its task stopped, but ECS's STOPPED event has not come yet: the
    # first instance has room again, and still no later task lands on it
    stop(fleet, task_arn)
    assert docker_task(fleet)[1] == second


def test_a_stopped_docker_task_terminates_its_instance_whatever_the_events_order(
    fleet: Fleet,
) -> None:
    (instance,) = docker_group(fleet, desired=1)
    task_arn, _ = docker_task(fleet)
    pending, running = (event(fleet, task_arn, s) for s in ("PENDING", "RUNNING"))
    stopped = stop(fleet, task_arn)

    # every event twice, and the PENDING one late
    outcomes = [fleet.invoke(e).get("instance") for e in (running, running, stopped, stopped)]
    outcomes.append(fleet.invoke(pending).get("instance"))

    assert outcomes == ["draining", "draining", "terminated", "gone", "draining"]
    assert ec2_state(fleet, instance) == "terminated"
    assert group(fleet)["DesiredCapacity"] == 0  # decremented once
    assert group(fleet)["Instances"] == []


def test_a_used_instance_is_terminated_even_when_a_task_landed_on_it_since(
    fleet: Fleet,
) -> None:
    """The first task's drain never happened (its events lost, or a job set its instance
    active again): a second Docker task landed on the used instance after the first stopped.
    The first task's STOPPED event terminates the instance all the same."""
    (instance,) = docker_group(fleet, desired=1)
    first, _ = docker_task(fleet)
    stopped = stop(fleet, first)
    _, placed = docker_task(fleet)
    assert placed == instance  # no drain: it landed on the used instance

    assert fleet.invoke(stopped)["instance"] == "terminated"
    assert ec2_state(fleet, instance) == "terminated"


def test_at_the_group_minimum_a_fresh_instance_replaces_the_used_one(fleet: Fleet) -> None:
    (instance,) = docker_group(fleet, desired=1, min_size=1)
    task_arn, _ = docker_task(fleet)
    stopped = stop(fleet, task_arn)  # its RUNNING event lost: STOPPED drains it too

    assert fleet.invoke(stopped)["instance"] == "terminated"
    assert fleet.invoke(stopped)["instance"] == "gone"

    assert ec2_state(fleet, instance) == "terminated"
    warm = group(fleet)
    assert warm["DesiredCapacity"] == 1
    (replacement,) = warm["Instances"]
    assert replacement["InstanceId"] != container_instance(fleet, instance)["ec2InstanceId"]
    (reservation,) = fleet.client("ec2").describe_instances(
        InstanceIds=[replacement["InstanceId"]]
    )["Reservations"]
    assert reservation["Instances"][0]["State"]["Name"] == "running"


def test_only_docker_tasks_touch_container_instances(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker_group(fleet, desired=1)
    # any Auto Scaling call would fail: nothing answers there
    monkeypatch.setenv("AWS_ENDPOINT_URL_AUTOSCALING", "http://127.0.0.1:9")
    fargate = fleet.record(launch(fleet))["task_arn"]
    assert fleet.describe(fargate)["capacityProviderName"] == "FARGATE"
    events = [event(fleet, fargate, s) for s in ("PENDING", "RUNNING")] + [stop(fleet, fargate)]
    for each in events:
        assert "instance" not in fleet.invoke(each)
    assert [r for op in INSTANCE_CALLS for r in fleet.ecs_proxy.requests(op)] == []

    task_arn, instance = docker_task(fleet)
    assert fleet.invoke(event(fleet, task_arn, "RUNNING"))["instance"] == "draining"
    (drain,) = fleet.ecs_proxy.requests("UpdateContainerInstancesState")
    assert drain["body"]["containerInstances"] == [instance]
    assert drain["body"]["status"] == "DRAINING"


def test_reuse_leaves_docker_instances_in_service(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_INSTANCE_REUSE", "true")
    assert Settings.from_env().docker_instance_reuse is True
    first, second = docker_group(fleet, desired=2)
    task_arn, placed = docker_task(fleet)
    fleet.invoke(event(fleet, task_arn, "RUNNING"))
    fleet.invoke(stop(fleet, task_arn))

    assert placed == first
    assert container_instance(fleet, placed)["status"] == "ACTIVE"
    assert ec2_state(fleet, placed) == "running"
    assert docker_task(fleet)[1] == placed  # the next job runs on the same instance
    # nor does the cleanup retire a draining one (a Spot interruption drains it)
    fleet.client("ecs").update_container_instances_state(
        cluster=fleet.prefix, containerInstances=[second], status="DRAINING"
    )
    assert "instances_terminated" not in acted(clean())
    assert ec2_state(fleet, second) == "running"
    assert [r for op in INSTANCE_CALLS for r in fleet.ecs_proxy.requests(op)] == []


def test_docker_instance_reuse_is_true_or_false(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings.from_env().docker_instance_reuse is False
    monkeypatch.setenv("DOCKER_INSTANCE_REUSE", "yes")
    with pytest.raises(SettingsError, match="DOCKER_INSTANCE_REUSE must be true or false"):
        Settings.from_env()


def test_the_cleanup_terminates_drained_instances_that_run_nothing(fleet: Fleet) -> None:
    busy, lost, warm = docker_group(fleet, desired=3)
    task_arn, placed = docker_task(fleet)
    assert placed == busy
    fleet.invoke(event(fleet, task_arn, "RUNNING"))  # drained, its job still running
    # drained by its task's RUNNING event; the task has gone and its STOPPED event was lost
    fleet.client("ecs").update_container_instances_state(
        cluster=fleet.prefix, containerInstances=[lost], status="DRAINING"
    )

    assert acted(clean()) == {"instances_terminated": 1}
    assert ec2_state(fleet, lost) == "terminated"
    assert (ec2_state(fleet, busy), container_instance(fleet, busy)["status"]) == (
        "running",
        "DRAINING",
    )
    assert (ec2_state(fleet, warm), container_instance(fleet, warm)["status"]) == (
        "running",
        "ACTIVE",
    )
    assert acted(clean()) == {}
