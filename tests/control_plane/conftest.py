"""Fixtures of the control-plane tests: each test gets its own fleet (name prefix) in the
session's moto server, a GitHub stand-in over HTTP and a fault proxy in front of ECS."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local_mode.fault_proxy import FaultProxy
from local_mode.github_api import GitHubAPI
from local_mode.moto_server import MotoServer
from tests.control_plane.harness import (
    APP_ID,
    CLASS_SIZES,
    EXTRA_LABELS,
    INSTALLATION_ID,
    OWNER,
    PAT,
    REGION,
    REPO,
    WEBHOOK_SECRET,
    AppKey,
    Fleet,
)

_fleets = itertools.count(1)


@pytest.fixture(scope="session")
def app_key() -> AppKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return AppKey(private, public)


@pytest.fixture
def github(app_key: AppKey) -> Iterator[GitHubAPI]:
    api = GitHubAPI(
        pats=[PAT],
        apps={APP_ID: app_key.public_pem},
        installations={INSTALLATION_ID: APP_ID},
        repos=[REPO],
    ).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def ecs_proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_server.url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def fleet(
    aws_env: MotoServer,
    github: GitHubAPI,
    ecs_proxy: FaultProxy,
    app_key: AppKey,
    monkeypatch: pytest.MonkeyPatch,
) -> Fleet:
    """A fleet named like the module names it (docs/CONTRACTS.md), created with boto3."""
    prefix = f"cp{next(_fleets)}-{uuid.uuid4().hex[:6]}"
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24", AvailabilityZone="us-east-1a")
    group = ec2.create_security_group(
        GroupName=f"{prefix}-runners", Description="runner tasks", VpcId=vpc
    )

    boto3.client("dynamodb").create_table(
        TableName=f"{prefix}-state",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "kind", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
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
    ssm = boto3.client("ssm")
    ssm.put_parameter(
        Name=f"/{prefix}/config/class-sizes", Value=json.dumps(CLASS_SIZES), Type="String"
    )
    for name, value in (
        ("webhook-secret", WEBHOOK_SECRET),
        ("github-pat", PAT),
        ("github-app-private-key", app_key.private_pem),
    ):
        ssm.put_parameter(Name=f"/{prefix}/secrets/{name}", Value=value, Type="SecureString")

    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName=prefix, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    for class_name, size in CLASS_SIZES["classes"].items():
        ecs.register_task_definition(
            family=f"{prefix}-{class_name}",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu=str(size["cpu"]),
            memory=str(size["memory"]),
            containerDefinitions=[
                {
                    "name": "runner",
                    "image": "runner:test",
                    "memory": size["memory"],
                    "essential": True,
                    "stopTimeout": 120,
                    "environment": [{"name": "AWS_REGION", "value": REGION}],
                }
            ],
        )

    env = {
        "NAME_PREFIX": prefix,
        "STATE_TABLE": f"{prefix}-state",
        "CLASS_SIZES_PARAM": f"/{prefix}/config/class-sizes",
        "SSM_PREFIX": f"/{prefix}",
        "WEBHOOK_SECRET_PARAM": f"/{prefix}/secrets/webhook-secret",
        "GITHUB_AUTH": "pat",
        "GITHUB_PAT_PARAM": f"/{prefix}/secrets/github-pat",
        "GITHUB_APP_ID": APP_ID,
        "GITHUB_APP_INSTALLATION_ID": INSTALLATION_ID,
        "GITHUB_APP_KEY_PARAM": f"/{prefix}/secrets/github-app-private-key",
        "GITHUB_API_URL": github.url,
        "GITHUB_SCOPE": "repo",
        "GITHUB_OWNER": OWNER,
        "GITHUB_REPO": REPO.split("/")[1],
        "RUNNER_GROUP_ID": "1",
        "RUNNER_EXTRA_LABELS": ",".join(EXTRA_LABELS),
        "CLUSTER_NAME": prefix,
        "SUBNET_IDS": subnet["Subnet"]["SubnetId"],
        "SECURITY_GROUP_IDS": group["GroupId"],
        "ASSIGN_PUBLIC_IP": "false",
        "CAPACITY_STRATEGY": "FARGATE",
        "IMAGE_BUILD_PROJECT": "",
        "LOG_LEVEL": "INFO",
        # ECS calls go through the fault proxy; every other service straight to moto
        "AWS_ENDPOINT_URL_ECS": ecs_proxy.url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Fleet(
        prefix=prefix,
        moto_url=aws_env.url,
        github=github,
        ecs_proxy=ecs_proxy,
        subnet_id=subnet["Subnet"]["SubnetId"],
        security_group_id=group["GroupId"],
        env=env,
    )
