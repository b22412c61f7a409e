"""The ECS agent of the Docker classes' instances, played against the emulator.

moto boots an Auto Scaling group's instances but runs no agent on them, and keeps a container
instance registered after its EC2 instance is gone. `sync` does what the agents and ECS would:
each running instance of the cluster's Auto Scaling group capacity providers that is not yet a
container instance registers (naming itself in its identity document, with its instance
type's CPU and memory), and a container instance whose EC2 instance has terminated is
deregistered. The local stack syncs once after `terraform apply`, and the runner simulator
on every few polls: single-use instances (lambda/control_plane/instances.py) are terminated
after their job, and their groups launch fresh ones.
"""

from __future__ import annotations

import json
from typing import Any

FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
LIVE = ("pending", "running")  # EC2 states of an instance whose agent is (about to be) up


def group_names(ecs: Any, cluster: str) -> list[str]:
    """The Auto Scaling groups of the cluster's EC2 capacity providers."""
    (described,) = ecs.describe_clusters(clusters=[cluster])["clusters"]
    names = [p for p in described.get("capacityProviders", []) if p not in FARGATE_PROVIDERS]
    if not names:
        return []
    providers = ecs.describe_capacity_providers(capacityProviders=names)["capacityProviders"]
    return [
        p["autoScalingGroupProvider"]["autoScalingGroupArn"].split("autoScalingGroupName/")[-1]
        for p in providers
    ]


def registered(ecs: Any, cluster: str) -> dict[str, str]:
    """EC2 instance id => container instance ARN, of the cluster's registered instances."""
    arns = ecs.list_container_instances(cluster=cluster).get("containerInstanceArns", [])
    if not arns:
        return {}
    described = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)
    return {
        i["ec2InstanceId"]: i["containerInstanceArn"]
        for i in described["containerInstances"]
        if i.get("status") in ("ACTIVE", "DRAINING")
    }


def sync(ecs: Any, autoscaling: Any, ec2: Any, cluster: str, region: str) -> list[str]:
    """Registers the groups' new instances and deregisters the gone ones; returns the
    container instance ARNs registered now."""
    groups = group_names(ecs, cluster)
    if not groups:
        return []
    described = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=groups)
    ids = [i["InstanceId"] for g in described["AutoScalingGroups"] for i in g["Instances"]]
    known = registered(ecs, cluster)
    instances = {}
    if ids or known:
        reservations = ec2.describe_instances(InstanceIds=sorted({*ids, *known}))["Reservations"]
        instances = {i["InstanceId"]: i for r in reservations for i in r["Instances"]}
    for instance_id, arn in known.items():
        if instances.get(instance_id, {}).get("State", {}).get("Name") not in LIVE:
            ecs.deregister_container_instance(cluster=cluster, containerInstance=arn, force=True)
    new = [
        instances[i]
        for i in ids
        if i not in known and instances.get(i, {}).get("State", {}).get("Name") in LIVE
    ]
    if not new:
        return []
    wanted = sorted({instance["InstanceType"] for instance in new})
    types = {
        t["InstanceType"]: t
        for t in ec2.describe_instance_types(InstanceTypes=wanted)["InstanceTypes"]
    }
    return [
        ecs.register_container_instance(
            cluster=cluster,
            instanceIdentityDocument=json.dumps(identity_document(instance, region)),
            totalResources=total_resources(types[instance["InstanceType"]]),
        )["containerInstance"]["containerInstanceArn"]
        for instance in new
    ]


def identity_document(instance: dict, region: str) -> dict[str, str]:
    """The instance identity document the agent reads from the instance metadata service."""
    return {
        "instanceId": instance["InstanceId"],
        "instanceType": instance["InstanceType"],
        "imageId": instance.get("ImageId", ""),
        "availabilityZone": instance.get("Placement", {}).get("AvailabilityZone", ""),
        "privateIp": instance.get("PrivateIpAddress", ""),
        "architecture": instance.get("Architecture", "x86_64"),
        "region": region,
        "version": "2017-09-30",
    }


def total_resources(instance_type: dict) -> list[dict[str, Any]]:
    """CPU units (1024 per vCPU) and MiB of memory the agent registers: the instance type's
    (a real agent registers a little less memory: the kernel and the agent keep some)."""
    cpu = instance_type["VCpuInfo"]["DefaultVCpus"] * 1024
    memory = instance_type["MemoryInfo"]["SizeInMiB"]
    return [
        {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
    ]
