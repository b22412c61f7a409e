"""The emulator's ECS on an EC2 (Auto Scaling group) capacity provider (local_mode/emulator.py),
over HTTP with boto3: placement on registered instances with room, `distinctInstance`,
PROVISIONING when nothing has room, and Fargate tasks as moto runs them; and the runner
simulator (local_mode/runner_sim.py) on such tasks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests

from local_mode import runner_sim
from local_mode import stack as local_stack
from local_mode.moto_server import MotoServer

REGION = "us-east-1"
TASK_CPU, TASK_MEMORY = 2048, 3072  # the task definition's task-level size
DISTINCT = [{"type": "distinctInstance"}]
INSTANCE_TYPES = ["m7i.xlarge", "m5.xlarge"]


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    server = MotoServer.start()
    server.hold_ecs_tasks()  # tasks stay where RunTask and StopTask leave them
    try:
        yield server
    finally:
        server.stop()


def client(server: MotoServer, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto's fixed test credential
    )


@dataclass
class Fleet:
    ecs: Any
    cluster: str
    provider: str
    instance_ids: list[str]
    network: dict
    ec2: Any

    def register(self, instance_id: str, cpu: int = 4096, memory: int = 8192) -> str:
        """What the ECS agent does when the instance boots."""
        return self.ecs.register_container_instance(
            cluster=self.cluster,
            instanceIdentityDocument=json.dumps({"instanceId": instance_id, "region": REGION}),
            totalResources=[
                {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
            ],
        )["containerInstance"]["containerInstanceArn"]

    def run(self, constraints: list | None = None, provider: str | None = None) -> dict:
        (task,) = self.ecs.run_task(
            cluster=self.cluster,
            taskDefinition=self.cluster,
            capacityProviderStrategy=[{"capacityProvider": provider or self.provider, "weight": 1}],
            placementConstraints=constraints or [],
            networkConfiguration=self.network,
        )["tasks"]
        return task

    def describe(self, task: dict) -> dict:
        return self.ecs.describe_tasks(cluster=self.cluster, tasks=[task["taskArn"]])["tasks"][0]

    def stop(self, task: dict) -> None:
        self.ecs.stop_task(cluster=self.cluster, task=task["taskArn"], reason="done")


@pytest.fixture
def make_fleet(server: MotoServer, request: pytest.FixtureRequest) -> Callable[[int], Fleet]:
    """A cluster with an Auto Scaling group of `instances` instances behind an EC2 capacity
    provider (managed scaling on), as modules/ecs-fleet builds it; nothing registered yet."""
    ec2, autoscaling, ecs = (client(server, s) for s in ("ec2", "autoscaling", "ecs"))
    name = request.node.name.replace("_", "-")[:40]

    def make(instances: int) -> Fleet:
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        # tasks' network interfaces get private DNS names (moto's RunTask needs them)
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName=name, Description="tasks", VpcId=vpc)
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": image})
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            MixedInstancesPolicy={  # the instance types are the overrides', as in the module
                "LaunchTemplate": {
                    "LaunchTemplateSpecification": {"LaunchTemplateName": name},
                    "Overrides": [{"InstanceType": t} for t in INSTANCE_TYPES],
                },
                "InstancesDistribution": {"OnDemandAllocationStrategy": "prioritized"},
            },
            MinSize=instances,
            MaxSize=10,
            DesiredCapacity=instances,
            VPCZoneIdentifier=subnet,
            NewInstancesProtectedFromScaleIn=True,
        )
        (asg,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ]
        ecs.create_cluster(clusterName=name)
        ecs.create_capacity_provider(
            name=name,
            autoScalingGroupProvider={
                "autoScalingGroupArn": asg["AutoScalingGroupARN"],
                "managedScaling": {"status": "ENABLED", "targetCapacity": 100},
                "managedTerminationProtection": "ENABLED",
            },
        )
        ecs.put_cluster_capacity_providers(
            cluster=name,
            capacityProviders=["FARGATE", name],
            defaultCapacityProviderStrategy=[],
        )
        ecs.register_task_definition(
            family=name,
            requiresCompatibilities=["EC2"],
            networkMode="awsvpc",
            cpu=str(TASK_CPU),
            memory=str(TASK_MEMORY),
            containerDefinitions=[{"name": "runner", "image": "runner:1", "essential": True}],
        )
        network = {
            "awsvpcConfiguration": {
                "subnets": [subnet],
                "securityGroups": [group["GroupId"]],
                "assignPublicIp": "DISABLED",
            }
        }
        ids = [i["InstanceId"] for i in asg["Instances"]]
        assert len(ids) == instances
        return Fleet(ecs, name, name, ids, network, ec2)

    return make


def test_distinct_instance_puts_each_task_on_its_own_instance(make_fleet) -> None:
    fleet = make_fleet(2)
    instances = {fleet.register(i) for i in fleet.instance_ids}  # room for 2 tasks each
    first, second = fleet.run(DISTINCT), fleet.run(DISTINCT)
    for task in (first, second):
        assert task["lastStatus"] == "RUNNING"
        assert task["launchType"] == "EC2"
        assert task["capacityProviderName"] == fleet.provider
    assert {first["containerInstanceArn"], second["containerInstanceArn"]} == instances

    waiting = fleet.run(DISTINCT)  # each instance has room, but already a task of the group
    assert waiting["lastStatus"] == "PROVISIONING"
    assert "containerInstanceArn" not in waiting
    assert waiting["capacityProviderName"] == fleet.provider
    assert waiting["desiredStatus"] == "RUNNING"

    packed = fleet.run()  # without the constraint the task packs next to one
    assert packed["lastStatus"] == "RUNNING" and packed["containerInstanceArn"] in instances


def test_a_waiting_task_takes_the_instance_a_stopped_task_frees(make_fleet) -> None:
    fleet = make_fleet(1)
    fleet.register(fleet.instance_ids[0])
    running, waiting = fleet.run(DISTINCT), fleet.run(DISTINCT)
    assert waiting["lastStatus"] == "PROVISIONING"
    assert fleet.describe(waiting)["lastStatus"] == "PROVISIONING"  # it stays

    fleet.stop(running)
    placed = fleet.describe(waiting)
    assert placed["lastStatus"] == "RUNNING"
    assert placed["containerInstanceArn"] == running["containerInstanceArn"]


def test_no_registered_instance_means_provisioning_until_one_registers(make_fleet) -> None:
    fleet = make_fleet(1)
    task = fleet.run(DISTINCT)  # moto raised "No instances found in cluster"
    assert task["lastStatus"] == "PROVISIONING" and "containerInstanceArn" not in task

    instance = fleet.register(fleet.instance_ids[0])
    placed = fleet.describe(task)
    assert placed["lastStatus"] == "RUNNING" and placed["containerInstanceArn"] == instance


def test_an_instance_holds_what_its_agent_registered(make_fleet) -> None:
    fleet = make_fleet(1)
    instance = fleet.register(fleet.instance_ids[0], cpu=TASK_CPU, memory=TASK_MEMORY)
    (described,) = fleet.ecs.describe_container_instances(
        cluster=fleet.cluster, containerInstances=[instance]
    )["containerInstances"]
    registered = {r["name"]: r.get("integerValue") for r in described["registeredResources"]}
    assert registered["CPU"] == TASK_CPU and registered["MEMORY"] == TASK_MEMORY

    first = fleet.run()
    assert first["lastStatus"] == "RUNNING"
    full = fleet.run()  # moto: 4096 units per instance, and no task at all without room
    assert full["lastStatus"] == "PROVISIONING"

    fleet.stop(first)
    fleet.stop(first)  # stopping it again frees nothing more
    assert fleet.describe(full)["lastStatus"] == "RUNNING"
    third = fleet.run()
    assert third["lastStatus"] == "PROVISIONING"


def test_a_provisioning_task_stops_without_an_instance(make_fleet) -> None:
    fleet = make_fleet(1)
    task = fleet.run()
    fleet.stop(task)
    stopped = fleet.describe(task)
    assert stopped["lastStatus"] == "STOPPED" and "containerInstanceArn" not in stopped
    fleet.register(fleet.instance_ids[0])
    assert fleet.describe(task)["lastStatus"] == "STOPPED"  # never placed afterwards


def test_fargate_tasks_are_unchanged(make_fleet) -> None:
    fleet = make_fleet(1)
    fleet.ecs.register_task_definition(
        family="fargate",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="512",
        memory="1024",
        # moto's Fargate RunTask sums the containers' memory: it needs one
        containerDefinitions=[{"name": "runner", "image": "runner:1", "memory": 1024}],
    )
    (task,) = fleet.ecs.run_task(
        cluster=fleet.cluster,
        taskDefinition="fargate",
        capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
        networkConfiguration=fleet.network,
    )["tasks"]
    assert task["lastStatus"] == "RUNNING"  # no instance registered, none needed
    assert task["capacityProviderName"] == "FARGATE"
    assert "containerInstanceArn" not in task


def test_a_mixed_instances_group_launches_its_first_override(make_fleet) -> None:
    fleet = make_fleet(1)
    (reservation,) = fleet.ec2.describe_instances(InstanceIds=fleet.instance_ids)["Reservations"]
    assert reservation["Instances"][0]["InstanceType"] == INSTANCE_TYPES[0]  # moto: none


def test_the_runner_simulator_runs_a_waiting_task_once_it_is_placed(
    make_fleet, server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in server.client_env(REGION).items():
        monkeypatch.setenv(key, value)
    fleet = make_fleet(1)
    instance = fleet.register(fleet.instance_ids[0])
    first, second, cancelled = (fleet.run(DISTINCT) for _ in range(3))
    sent: list[dict] = []

    def post(url: str, json: dict, timeout: float) -> requests.Response:
        sent.append(json["detail"])
        response = requests.Response()
        response.status_code = 202
        return response

    settings = runner_sim.Settings(
        region=REGION,
        aws_endpoint_url=server.url,
        cluster_name=fleet.cluster,
        webhook_url="",
        events_url="http://events",
        webhook_secret="",
        github_api_url="http://github",
        github_repo="o/r",
        real_entrypoint=False,
    )
    # each runner dies at once (no GitHub here): its task stops and frees the instance
    simulator = runner_sim.RunnerSimulator(settings, post=post, fate=lambda task: runner_sim.DIE)

    def events(task: dict) -> list[tuple[str, dict]]:
        return [(e["lastStatus"], e) for e in sent if e["taskArn"] == task["taskArn"]]

    simulator.poll_once()  # the first runs; the others wait for the instance
    fleet.stop(cancelled)  # the cleanup stops one that never got an instance
    deadline = time.monotonic() + 20
    while sum(status == "STOPPED" for status, _ in events(first) + events(second)) < 2:
        assert time.monotonic() < deadline, sent
        simulator.poll_once()
        time.sleep(0.1)

    for task in (first, second):
        (running, started), (stopped, _) = events(task)
        assert (running, stopped) == ("RUNNING", "STOPPED")
        assert started["launchType"] == "EC2"
        assert started["capacityProviderName"] == fleet.provider
        assert started["containerInstanceArn"] == instance
    assert sent.index(events(first)[1][1]) < sent.index(events(second)[0][1])  # after it freed

    ((status, never),) = events(cancelled)  # only its stop, and it never started
    assert status == "STOPPED" and never["stopCode"] == "UserInitiated"
    assert not {"startedAt", "pullStartedAt", "containerInstanceArn"} & never.keys()


def test_the_local_stack_registers_the_groups_instances_as_their_agent_would(
    make_fleet, server: MotoServer
) -> None:
    fleet = make_fleet(2)
    current = {"aws_endpoint_url": server.url, "region": REGION, "cluster_name": fleet.cluster}
    registered = local_stack.register_container_instances(current)

    described = fleet.ecs.describe_container_instances(
        cluster=fleet.cluster, containerInstances=registered
    )["containerInstances"]
    assert sorted(i["ec2InstanceId"] for i in described) == sorted(fleet.instance_ids)
    for instance in described:  # m7i.xlarge: 4 vCPUs, 16 GiB
        resources = {r["name"]: r.get("integerValue") for r in instance["registeredResources"]}
        assert (resources["CPU"], resources["MEMORY"]) == (4096, 16384)
    assert fleet.run(DISTINCT)["containerInstanceArn"] in registered


def test_only_the_providers_own_instances_take_its_tasks(make_fleet) -> None:
    fleet = make_fleet(1)
    image = fleet.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    (stray,) = fleet.ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="m5.xlarge"
    )["Instances"]
    fleet.register(stray["InstanceId"])  # in the cluster, but not in the provider's group
    task = fleet.run()
    assert task["lastStatus"] == "PROVISIONING"
    own = fleet.register(fleet.instance_ids[0])
    assert fleet.describe(task)["containerInstanceArn"] == own
