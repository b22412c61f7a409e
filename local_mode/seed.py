"""A fleet in the emulator without Terraform, for the control-plane and CLI tests and the
benchmarks: the resources the module creates that the control plane reads, under the names
of docs/CONTRACTS.md, created with boto3, and the Lambda environment the module sets for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import boto3

# The class-sizes parameter of the module's default runner_class_sizes
CLASS_SIZES = {
    "default_class": "small",
    "classes": {
        "small": {"cpu": 512, "memory": 1024},
        "medium": {"cpu": 1024, "memory": 2048},
        "large": {"cpu": 2048, "memory": 4096},
    },
}


def seed_fleet(
    prefix: str,
    *,
    repository: str,
    secrets: Mapping[str, str],
    image: str,
    container: Mapping[str, Any] | None = None,
    class_sizes: Mapping[str, Any] = CLASS_SIZES,
    client: Callable[[str], Any] = boto3.client,
) -> dict[str, str]:
    """Creates a fleet's network, state table, parameters, cluster and task definitions.

    `repository` is the `owner/name` the runners serve, `secrets` the SecureStrings under
    `/<prefix>/secrets/` by name (webhook-secret, github-pat, ...), `image` and `container`
    the runner container's image and further fields, `class_sizes` the class-sizes
    parameter (one task definition per class). Returns the Lambda's environment for a
    repository-scoped fleet with PAT auth, as the module sets it; callers add what differs.
    """
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.88.0.0/16")["Vpc"]["VpcId"]
    # moto's RunTask names the task's network interface only with DNS hostnames on
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(
        VpcId=vpc, CidrBlock="10.88.1.0/24", AvailabilityZone=f"{ec2.meta.region_name}a"
    )["Subnet"]["SubnetId"]
    group = ec2.create_security_group(
        GroupName=f"{prefix}-runners", Description="runner tasks", VpcId=vpc
    )["GroupId"]

    client("dynamodb").create_table(
        TableName=f"{prefix}-state",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "kind", "created_at")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-kind-created",
                "KeySchema": [
                    {"AttributeName": "kind", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )

    ssm = client("ssm")
    ssm.put_parameter(
        Name=f"/{prefix}/config/class-sizes", Value=json.dumps(class_sizes), Type="String"
    )
    for name, value in secrets.items():
        ssm.put_parameter(Name=f"/{prefix}/secrets/{name}", Value=value, Type="SecureString")

    # The JIT config bucket, without the module's bucket policy: these callers run the control
    # plane with the emulator's root credentials (tests/terraform and tests/e2e cover it).
    client("s3").create_bucket(Bucket=f"{prefix}-jit")

    ecs = client("ecs")
    ecs.create_cluster(clusterName=prefix, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    for class_name, size in class_sizes["classes"].items():
        ecs.register_task_definition(
            family=f"{prefix}-{class_name}",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu=str(size["cpu"]),
            memory=str(size["memory"]),
            containerDefinitions=[
                {
                    "name": "runner",
                    "image": image,
                    "memory": size["memory"],
                    "essential": True,
                    **(container or {}),
                }
            ],
        )

    owner, name = repository.split("/")
    return {
        "NAME_PREFIX": prefix,
        "STATE_TABLE": f"{prefix}-state",
        "CLASS_SIZES_PARAM": f"/{prefix}/config/class-sizes",
        "SSM_PREFIX": f"/{prefix}",
        "WEBHOOK_SECRET_PARAM": f"/{prefix}/secrets/webhook-secret",
        "GITHUB_AUTH": "pat",
        "GITHUB_PAT_PARAM": f"/{prefix}/secrets/github-pat",
        "GITHUB_SCOPE": "repo",
        "GITHUB_OWNER": owner,
        "GITHUB_REPO": name,
        "RUNNER_GROUP_ID": "1",
        "CLUSTER_NAME": prefix,
        "SUBNET_IDS": subnet,
        "SECURITY_GROUP_IDS": group,
        "ASSIGN_PUBLIC_IP": "false",
        "CAPACITY_STRATEGY": "FARGATE",
        "IMAGE_BUILD_PROJECT": "",
        "LOG_LEVEL": "INFO",
        "JIT_BUCKET": f"{prefix}-jit",
    }
