"""Runner classes of every kind in a test's fleet, arranged as the module arranges them: the
class-sizes document (docs/CONTRACTS.md), a task definition per class (EC2 and privileged for
a Docker class), and for Docker classes an EC2 capacity provider on the cluster with a
container instance registered as the ECS agent registers one."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.control_plane.harness import ACCOUNT, REGION, Fleet

ECS_AMI = {  # the ECS-optimized Amazon Linux 2023 AMIs' public parameters
    "x86_64": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
    "arm64": "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id",
}
# One class of each kind; sizes fit the emulator's container instance (4 vCPU, 7482 MiB).
CLASSES: dict[str, dict[str, Any]] = {
    "small": {"cpu": 512, "memory": 1024},
    "spot": {"cpu": 1024, "memory": 2048, "capacity_strategy": "spotPreferred"},
    "arm": {"cpu": 1024, "memory": 2048, "architecture": "arm64", "ephemeral_storage_gib": 100},
    "docker": {"cpu": 2048, "memory": 4096, "docker": True},
}


def docker_provider(fleet: Fleet, architecture: str = "x86_64") -> str:
    """The capacity provider name the module gives a Docker architecture group."""
    return f"{fleet.prefix}-docker-{architecture}"


def document(fleet: Fleet, classes: dict[str, dict[str, Any]], default: str) -> dict[str, Any]:
    """The class-sizes document as the control-plane module writes it: every key, and the
    capacity provider and distinct_instance on Docker classes only."""
    written = {}
    for name, size in classes.items():
        entry = {
            "architecture": "x86_64",
            "ephemeral_storage_gib": None,
            "docker": False,
            "capacity_strategy": None,
            **size,
        }
        if entry["docker"]:
            entry.setdefault("capacity_provider", docker_provider(fleet, entry["architecture"]))
            entry.setdefault("distinct_instance", True)
        written[name] = entry
    return {"default_class": default, "classes": written}


def configure_classes(
    fleet: Fleet,
    classes: dict[str, dict[str, Any]] = CLASSES,
    default: str = "small",
    instances: int = 1,
) -> dict[str, Any]:
    """Replaces the fleet's classes (before the control plane first reads them); returns the
    document. Each Docker architecture gets its capacity provider and `instances` container
    instances."""
    doc = document(fleet, classes, default)
    ecs = fleet.client("ecs")
    fleet.client("ssm").put_parameter(
        Name=f"/{fleet.prefix}/config/class-sizes",
        Value=json.dumps(doc),
        Type="String",
        Overwrite=True,
    )
    providers = ["FARGATE", "FARGATE_SPOT"]
    for name, size in doc["classes"].items():
        register_task_definition(fleet, name, size)
        provider = size.get("capacity_provider")
        if provider and provider not in providers:
            group = f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:{uuid.uuid4()}"
            ecs.create_capacity_provider(
                name=provider,
                autoScalingGroupProvider={
                    "autoScalingGroupArn": f"{group}:autoScalingGroupName/{provider}",
                    "managedScaling": {"status": "ENABLED", "targetCapacity": 100},
                    "managedTerminationProtection": "ENABLED",
                },
            )
            providers.append(provider)
            for _ in range(instances):
                register_instance(fleet, size["architecture"])
    ecs.put_cluster_capacity_providers(
        cluster=fleet.prefix, capacityProviders=providers, defaultCapacityProviderStrategy=[]
    )
    return doc


def register_task_definition(fleet: Fleet, name: str, size: dict[str, Any]) -> None:
    """The class's task definition: Fargate with its platform and disk, or EC2 and privileged."""
    architecture = "ARM64" if size["architecture"] == "arm64" else "X86_64"
    container = {"name": "runner", "image": "runner:test", "essential": True}
    spec: dict[str, Any] = {
        "family": f"{fleet.prefix}-{name}",
        "networkMode": "awsvpc",
        "cpu": str(size["cpu"]),
        "memory": str(size["memory"]),
        "runtimePlatform": {"cpuArchitecture": architecture, "operatingSystemFamily": "LINUX"},
    }
    if size["docker"]:
        spec["requiresCompatibilities"] = ["EC2"]
        container.update(privileged=True, memory=size["memory"], cpu=size["cpu"])
    else:
        spec["requiresCompatibilities"] = ["FARGATE"]
        container["memory"] = size["memory"]
        if size["ephemeral_storage_gib"]:
            spec["ephemeralStorage"] = {"sizeInGiB": size["ephemeral_storage_gib"]}
    fleet.client("ecs").register_task_definition(**spec, containerDefinitions=[container])


def register_instance(fleet: Fleet, architecture: str = "x86_64") -> str:
    """A container instance in the fleet's cluster, as the ECS agent of a Docker ASG's
    instance registers it; returns its ARN."""
    ami = fleet.client("ssm").get_parameter(Name=ECS_AMI[architecture])["Parameter"]["Value"]
    (instance,) = fleet.client("ec2").run_instances(
        ImageId=ami,
        MinCount=1,
        MaxCount=1,
        InstanceType="m7g.xlarge" if architecture == "arm64" else "m7i.xlarge",
        SubnetId=fleet.subnet_id,
    )["Instances"]
    identity = {
        "instanceId": instance["InstanceId"],
        "region": REGION,
        "instanceType": instance["InstanceType"],
        "architecture": architecture,
    }
    return fleet.client("ecs").register_container_instance(
        cluster=fleet.prefix,
        instanceIdentityDocument=json.dumps(identity),
        totalResources=[
            {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 15800},
        ],
    )["containerInstance"]["containerInstanceArn"]
