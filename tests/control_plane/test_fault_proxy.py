"""The fault-injecting proxy in front of the emulator (local_mode/fault_proxy.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from local_mode import fault_proxy
from local_mode.fault_proxy import FaultProxy
from local_mode.moto_server import MotoServer

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@dataclass
class Ecs:
    client: Any
    cluster: str

    def run(self, token: str | None = None, provider: str = "FARGATE") -> dict:
        ec2 = boto3.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # moto needs it
        subnet = ec2.create_subnet(
            VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a"
        )
        group = ec2.create_security_group(GroupName=f"g-{vpc}", Description="d", VpcId=vpc)
        kwargs = {"clientToken": token} if token else {}
        return self.client.run_task(
            cluster=self.cluster,
            taskDefinition=self.cluster,
            capacityProviderStrategy=[{"capacityProvider": provider, "weight": 1}],
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": [subnet["Subnet"]["SubnetId"]],
                    "securityGroups": [group["GroupId"]],
                }
            },
            **kwargs,
        )

    def tasks(self) -> list[str]:
        return self.client.list_tasks(cluster=self.cluster)["taskArns"]


@pytest.fixture
def ecs(aws_env: MotoServer, ecs_proxy: FaultProxy) -> Ecs:
    client = boto3.client("ecs", endpoint_url=ecs_proxy.url, config=NO_RETRIES)
    cluster = f"proxy-{uuid.uuid4().hex[:8]}"
    client.create_cluster(clusterName=cluster)
    client.register_task_definition(
        family=cluster,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "c", "image": "i", "memory": 512}],
    )
    return Ecs(client, cluster)


def test_requests_pass_through_untouched(ecs: Ecs, ecs_proxy: FaultProxy) -> None:
    assert any(arn.endswith(ecs.cluster) for arn in ecs.client.list_clusters()["clusterArns"])
    assert [r["operation"] for r in ecs_proxy.requests()][-1] == "ListClusters"


def test_throttling_applies_count_times(ecs, ecs_proxy: FaultProxy) -> None:
    ecs_proxy.add(fault_proxy.throttling("ListClusters", count=2))
    for _ in range(2):
        with pytest.raises(ClientError) as caught:
            ecs.client.list_clusters()
        assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    ecs.client.list_clusters()
    assert [r["injected"] for r in ecs_proxy.requests("ListClusters")] == [True, True, False]


def test_spot_shortage_only_for_spot_requests(ecs, ecs_proxy: FaultProxy) -> None:
    ecs_proxy.add(fault_proxy.spot_capacity_shortage(count=5))
    on_demand = ecs.run()
    assert len(on_demand["tasks"]) == 1
    spot = ecs.run(provider="FARGATE_SPOT")
    assert spot["tasks"] == []
    assert "Capacity is unavailable" in spot["failures"][0]["reason"]


def test_a_repeated_client_token_returns_the_first_task(ecs) -> None:
    first = ecs.run(token="job-1")["tasks"][0]["taskArn"]
    assert ecs.run(token="job-1")["tasks"][0]["taskArn"] == first
    assert ecs.run(token="job-2")["tasks"][0]["taskArn"] != first
    assert len(ecs.tasks()) == 2


def test_a_lost_response_still_reaches_the_emulator(ecs, ecs_proxy: FaultProxy) -> None:
    ecs_proxy.add(fault_proxy.lost_response("RunTask"))
    with pytest.raises(ClientError):
        ecs.run(token="lost")
    assert len(ecs.tasks()) == 1


def test_control_api_over_http(ecs, ecs_proxy: FaultProxy) -> None:
    added = requests.post(
        f"{ecs_proxy.url}/_faults", json=fault_proxy.server_error("ListClusters"), timeout=5
    )
    assert added.status_code == 201
    with pytest.raises(ClientError):
        ecs.client.list_clusters()
    seen = requests.get(f"{ecs_proxy.url}/_requests", timeout=5).json()["requests"]
    assert seen[-1] == {
        "operation": "ListClusters",
        "body": {},
        "status": 500,
        "injected": True,
        "path": "/",
    }
    assert requests.post(f"{ecs_proxy.url}/_reset", timeout=5).json() == {"reset": True}
    assert ecs_proxy.requests() == []


def test_s3_requests_are_recorded_with_their_method_and_path(
    aws_env: MotoServer, ecs_proxy: FaultProxy
) -> None:
    """The benchmark attributes a JIT config's PutObject to its job by the key in the path."""
    s3 = boto3.client("s3", endpoint_url=ecs_proxy.url, region_name="us-east-1")
    bucket = f"proxy-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="jit/fleet-42/ab.env", Body=b"X=1\n")
    (put,) = ecs_proxy.requests("S3 PUT")[-1:]
    assert put["path"] == f"/{bucket}/jit/fleet-42/ab.env"
    assert put["status"] == 200
