"""The examples apply as written: examples/default (the README's seed block, with its VPC and
security group), examples/image-builds and examples/docker-builds, each applied once to the
emulator and destroyed.

Each runs from a copy with an override file (tfharness.copy_example), so the examples stay
real-AWS root modules. They apply at the same time: most of an apply is the provider waiting
on the emulator, so together they take about as long as one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.terraform.tfharness import REPO_ROOT, Emulator, copy_example, run_terraform

pytestmark = pytest.mark.terraform

ACCOUNT = "123456789012"  # moto's
# examples/image-builds needs these; its secrets come as TF_VAR_..., as its README says.
IMAGE_BUILDS_VARS = {
    "github_org": "octo-org",
    "subnet_ids": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
    "security_group_ids": ["sg-0a1b2c3d"],
}
IMAGE_BUILDS_SECRETS = {
    "TF_VAR_github_pat": "ghp_" + "e" * 36,
    "TF_VAR_webhook_secret": "image-builds-webhook-secret-0123",
}
DOCKER_BUILDS_REGION = "us-west-2"  # the example's default region
DOCKER_BUILDS_SECRETS = {
    "TF_VAR_github_pat": "ghp_" + "d" * 36,
    "TF_VAR_webhook_secret": "docker-builds-webhook-secret-0123",
}


def private_network(emulator: Emulator, region: str) -> dict[str, Any]:
    """The private subnets and security group examples/docker-builds takes, made in the
    emulator (its Auto Scaling group looks its subnets up)."""
    ec2 = emulator.client("ec2", region)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=f"{region}{zone}")["Subnet"][
            "SubnetId"
        ]
        for zone, cidr in [("a", "10.42.1.0/24"), ("b", "10.42.2.0/24")]
    ]
    group = ec2.create_security_group(
        GroupName="docker-ci-runners", Description="egress only", VpcId=vpc
    )["GroupId"]
    return {
        "github_repo": "octo-org/docker-repo",
        "private_subnet_ids": subnets,
        "security_group_ids": [group],
    }


@dataclass
class Deployment:
    directory: Path
    region: str
    env: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    destroyed: bool = False

    def terraform(self, *args: str, check: bool = True) -> str:
        result = run_terraform(list(args), self.directory, env=self.env, check=check)
        return result.stdout + result.stderr

    def apply(self) -> str | None:
        """None when the apply worked, else its output."""
        result = run_terraform(
            ["apply", "-auto-approve"], self.directory, env=self.env, check=False
        )
        if result.returncode != 0:
            return result.stdout + result.stderr
        self.outputs = {
            name: output["value"]
            for name, output in json.loads(self.terraform("output", "-json")).items()
        }
        return None

    def destroy(self) -> str | None:
        result = run_terraform(
            ["destroy", "-auto-approve"], self.directory, env=self.env, check=False
        )
        self.destroyed = result.returncode == 0
        return None if self.destroyed else result.stdout + result.stderr


def in_parallel(action: str, deployments: list[Deployment]) -> list[str | None]:
    with ThreadPoolExecutor(len(deployments)) as pool:
        return list(pool.map(lambda deployment: getattr(deployment, action)(), deployments))


@pytest.fixture(scope="module")
def examples(
    emulator: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Deployment]]:
    workdir = tmp_path_factory.mktemp("examples")
    default = Deployment(copy_example("default", workdir, emulator), region="us-east-1")
    image_builds = Deployment(
        copy_example("image-builds", workdir, emulator),
        region="eu-west-1",  # the example's default region
        env=IMAGE_BUILDS_SECRETS,
    )
    (image_builds.directory / "terraform.tfvars.json").write_text(json.dumps(IMAGE_BUILDS_VARS))
    docker_builds = Deployment(
        copy_example("docker-builds", workdir, emulator),
        region=DOCKER_BUILDS_REGION,
        env=DOCKER_BUILDS_SECRETS,
    )
    network = private_network(emulator, DOCKER_BUILDS_REGION)
    (docker_builds.directory / "terraform.tfvars.json").write_text(json.dumps(network))
    deployments = {
        "default": default,
        "image-builds": image_builds,
        "docker-builds": docker_builds,
    }
    for deployment in deployments.values():
        deployment.terraform("init", "-backend=false")
    try:
        failures = in_parallel("apply", list(deployments.values()))
        assert failures == [None] * len(deployments), "\n".join(filter(None, failures))
        yield deployments
    finally:
        leftovers = [d for d in deployments.values() if not d.destroyed]
        if leftovers:
            failures = in_parallel("destroy", leftovers)
            assert not any(failures), "\n".join(filter(None, failures))


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def lambda_environment(emulator: Emulator, name: str, region: str) -> dict[str, str]:
    function = emulator.client("lambda", region).get_function(FunctionName=name)
    return function["Configuration"]["Environment"]["Variables"]


# ----------------------------------------------------------------------------- examples/default


def test_seed_example_runs_one_task_definition_per_class_of_the_block(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    ecs = emulator.client("ecs")
    sizes = {"small": (512, 1024), "medium": (1024, 2048), "large": (2048, 4096)}
    families = ecs.list_task_definition_families(familyPrefix="runner-fleet-", status="ACTIVE")
    assert set(families["families"]) == {f"runner-fleet-{name}" for name in sizes}
    for name, size in sizes.items():
        definition = ecs.describe_task_definition(taskDefinition=f"runner-fleet-{name}")
        definition = definition["taskDefinition"]
        assert (int(definition["cpu"]), int(definition["memory"])) == size
        assert definition["requiresCompatibilities"] == ["FARGATE"]
    (cluster,) = ecs.describe_clusters(clusters=["runner-fleet"])["clusters"]
    assert sorted(cluster["capacityProviders"]) == ["FARGATE", "FARGATE_SPOT"]


def test_seed_example_webhook_api_is_the_webhook_url(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    apigateway = emulator.client("apigateway")
    (api,) = [a for a in apigateway.get_rest_apis()["items"] if a["name"] == "runner-fleet-webhook"]
    resources = {r["path"]: r for r in apigateway.get_resources(restApiId=api["id"])["items"]}
    assert set(resources["/webhook"]["resourceMethods"]) == {"POST"}
    integration = apigateway.get_integration(
        restApiId=api["id"], resourceId=resources["/webhook"]["id"], httpMethod="POST"
    )
    assert integration["uri"] == "arn:aws:apigateway:us-east-1:events:action/PutEvents"
    assert examples["default"].outputs["webhook_url"] == (
        f"https://{api['id']}.execute-api.us-east-1.amazonaws.com/v1/webhook"
    )


def test_seed_example_builds_images_with_the_image_builder_project(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    (project,) = emulator.client("codebuild").batch_get_projects(names=["image_builder"])[
        "projects"
    ]
    assert (
        project["serviceRole"] == f"arn:aws:iam::{ACCOUNT}:role/runner-fleet-image-build-us-east-1"
    )
    assert project["source"]["type"] == "S3"
    assert project["source"]["location"].endswith("/runner/")
    env = lambda_environment(emulator, "runner-fleet-control-plane", "us-east-1")
    assert env["IMAGE_BUILD_PROJECT"] == "image_builder"


def test_seed_example_wires_its_vpc_security_group_and_token(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    ec2 = emulator.client("ec2")
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["ecs-fleet"]}])["Vpcs"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    (group,) = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["ecs-fleet-runner-tasks"]}]
    )["SecurityGroups"]

    env = lambda_environment(emulator, "runner-fleet-control-plane", "us-east-1")
    assert sorted(env["SUBNET_IDS"].split(",")) == sorted(s["SubnetId"] for s in subnets["Subnets"])
    assert env["SECURITY_GROUP_IDS"] == group["GroupId"]
    assert (env["GITHUB_AUTH"], env["GITHUB_SCOPE"]) == ("pat", "repo")
    assert (env["GITHUB_OWNER"], env["GITHUB_REPO"]) == ("your-github-org", "your-repo")
    parameter = emulator.client("ssm").get_parameter(
        Name=env["GITHUB_PAT_PARAM"], WithDecryption=True
    )["Parameter"]
    assert parameter["Type"] == "SecureString"
    assert parameter["Value"] == "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"  # the block's token
    assert examples["default"].outputs["state_table_name"] == "runner-fleet-state"


FARGATE_PRICES = {  # the contract's defaults (us-east-1, Linux)
    "x86_64_vcpu_hour": 0.04048,
    "x86_64_gb_hour": 0.004445,
    "arm64_vcpu_hour": 0.03238,
    "arm64_gb_hour": 0.00356,
    "ephemeral_storage_gb_hour": 0.000111,
    "spot_discount": 0.7,
}


def dashboard_metrics(emulator: Emulator, name: str, region: str) -> dict[str, list[list[Any]]]:
    """Widget title => its metric lines, as CloudWatch holds the dashboard."""
    body = emulator.client("cloudwatch", region).get_dashboard(DashboardName=name)
    widgets = json.loads(body["DashboardBody"])["widgets"]
    return {widget["properties"]["title"]: widget["properties"]["metrics"] for widget in widgets}


def alarms_by_name(emulator: Emulator, prefix: str, region: str) -> dict[str, dict[str, Any]]:
    alarms = emulator.client("cloudwatch", region).describe_alarms(AlarmNamePrefix=f"{prefix}-")
    return {alarm["AlarmName"]: alarm for alarm in alarms["MetricAlarms"]}


def test_seed_example_has_the_dashboard_over_every_class(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    widgets = dashboard_metrics(emulator, "runner-fleet", "us-east-1")
    lines = [line for metrics in widgets.values() for line in metrics]
    fleet_lines = [line for line in lines if line[0] == "AWSRunnerFleet"]
    assert {line[1] for line in fleet_lines} == {
        "QueueWaitSeconds",
        "StartSeconds",
        "RunnersLaunched",
        "JobsRejected",
        "LaunchFailures",
        "Relaunches",
        "JobCostUSD",
    }
    assert all(line[2:4] == ["Fleet", "runner-fleet"] for line in fleet_lines)
    queue_wait = [line for line in fleet_lines if line[1] == "QueueWaitSeconds"]
    assert sorted((line[5], line[6]["stat"]) for line in queue_wait) == [
        (name, stat) for name in ["large", "medium", "small"] for stat in ["p50", "p90"]
    ]
    cost = [line for line in fleet_lines if line[1] == "JobCostUSD"]
    assert sorted(line[5] for line in cost if len(line) == 7) == ["large", "medium", "small"]
    running = [line for line in lines if line[0] == "ECS/ContainerInsights"]
    # image builds are on: each class runs under its family and its `-img` family
    assert sorted(line[5] for line in running) == sorted(
        f"runner-fleet-{name}{suffix}"
        for name in ["small", "medium", "large"]
        for suffix in ["", "-img"]
    )
    assert [
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        "runner-fleet-events-dlq",
    ] in [line[:4] for line in lines]
    assert {tuple(line[:4]) for line in lines if line[0] == "AWS/Lambda"} == {
        ("AWS/Lambda", metric, "FunctionName", "runner-fleet-control-plane")
        for metric in ["Errors", "Throttles"]
    }


def test_seed_example_has_the_four_alarms_notifying_no_one(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    alarms = alarms_by_name(emulator, "runner-fleet", "us-east-1")
    summary = {
        name: (
            alarm["Namespace"],
            alarm["MetricName"],
            alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
            alarm["Threshold"],
        )
        for name, alarm in alarms.items()
    }
    assert summary == {
        "runner-fleet-dlq-not-empty": (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "Maximum",
            0,
        ),
        "runner-fleet-lambda-errors": ("AWS/Lambda", "Errors", "Sum", 0),
        "runner-fleet-queue-wait-p90": ("AWSRunnerFleet", "QueueWaitSeconds", "p90", 300),
        "runner-fleet-jobs-stranded": ("AWSRunnerFleet", "JobsStranded", "Maximum", 0),
    }
    assert {name: alarm["Dimensions"] for name, alarm in alarms.items()} == {
        "runner-fleet-dlq-not-empty": [{"Name": "QueueName", "Value": "runner-fleet-events-dlq"}],
        "runner-fleet-lambda-errors": [
            {"Name": "FunctionName", "Value": "runner-fleet-control-plane"}
        ],
        "runner-fleet-queue-wait-p90": [{"Name": "Fleet", "Value": "runner-fleet"}],
        "runner-fleet-jobs-stranded": [{"Name": "Fleet", "Value": "runner-fleet"}],
    }
    for alarm in alarms.values():
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert (alarm["AlarmActions"], alarm["OKActions"]) == ([], [])
    assert alarms["runner-fleet-jobs-stranded"]["Period"] == 300  # the cleanup's 5 minutes


def test_seed_example_gives_the_lambda_the_metrics_settings(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    env = lambda_environment(emulator, "runner-fleet-control-plane", "us-east-1")
    assert env["METRICS_NAMESPACE"] == "AWSRunnerFleet"
    assert json.loads(env["FARGATE_PRICES"]) == FARGATE_PRICES
    assert env["STRANDED_JOB_SECONDS"] == "900"


# ----------------------------------------------------------------------------- image-builds


def test_image_builds_example_uploads_the_runner_folder_as_build_context(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    codebuild = emulator.client("codebuild", "eu-west-1")
    (project,) = codebuild.batch_get_projects(names=["ci-runners-images"])["projects"]
    assert examples["image-builds"].outputs["image_build_project_name"] == "ci-runners-images"
    bucket, prefix = project["source"]["location"].split("/", 1)
    s3 = emulator.client("s3", "eu-west-1")
    etags = {
        item["Key"]: item["ETag"].strip('"')
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    }
    files = ["Dockerfile", "entrypoint.sh", "buildspec.yml", ".dockerignore"]
    assert etags == {
        f"{prefix}{name}": hashlib.md5(
            (REPO_ROOT / "runner" / name).read_bytes(), usedforsecurity=False
        ).hexdigest()
        for name in files
    }


def test_image_builds_example_configures_an_org_fleet_on_spot(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    env = lambda_environment(emulator, "ci-runners-control-plane", "eu-west-1")
    assert (env["GITHUB_SCOPE"], env["GITHUB_OWNER"]) == ("org", "octo-org")
    assert env["CAPACITY_STRATEGY"] == "spotPreferred"
    assert env["DEFAULT_BASE_IMAGE"] == "public.ecr.aws/docker/library/ubuntu:24.04"
    assert env["SUBNET_IDS"] == ",".join(IMAGE_BUILDS_VARS["subnet_ids"])
    sizes = json.loads(
        emulator.client("ssm", "eu-west-1").get_parameter(Name=env["CLASS_SIZES_PARAM"])[
            "Parameter"
        ]["Value"]
    )
    assert sizes["default_class"] == "medium"
    assert sizes["classes"]["xlarge"] == {
        "cpu": 8192,
        "memory": 32768,
        "architecture": "x86_64",
        "ephemeral_storage_gib": None,
        "docker": False,
        "capacity_strategy": None,
    }
    # image builds on: arm64 images build in CodeBuild's ARM environment
    assert json.loads(env["IMAGE_BUILD_ENVIRONMENTS"]) == {
        "arm64": {
            "type": "ARM_CONTAINER",
            "image": "aws/codebuild/amazonlinux-aarch64-standard:3.0",
            "compute_type": "BUILD_GENERAL1_LARGE",
        }
    }
    (cluster,) = emulator.client("ecs", "eu-west-1").describe_clusters(
        clusters=["ci-runners"], include=["TAGS"]
    )["clusters"]
    assert {"key": "Project", "value": "ci-runners"} in cluster["tags"]


# ----------------------------------------------------------------------------- docker-builds

DOCKER_CI = "docker-ci"


def task_definition(emulator: Emulator, family: str) -> dict[str, Any]:
    ecs = emulator.client("ecs", DOCKER_BUILDS_REGION)
    return ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]


def test_docker_builds_example_runs_arm64_and_100_gib_classes_on_fargate(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    arm = task_definition(emulator, f"{DOCKER_CI}-arm")
    assert arm["requiresCompatibilities"] == ["FARGATE"]
    assert arm["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    assert arm["containerDefinitions"][0]["image"].endswith(":default-arm64")
    bigdisk = task_definition(emulator, f"{DOCKER_CI}-bigdisk")
    assert bigdisk["ephemeralStorage"] == {"sizeInGiB": 100}
    assert bigdisk["runtimePlatform"]["cpuArchitecture"] == "X86_64"
    small = task_definition(emulator, f"{DOCKER_CI}-small")
    assert "ephemeralStorage" not in small  # Fargate's 20 GiB


def test_docker_builds_example_runs_its_docker_class_privileged_on_ec2(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    docker = task_definition(emulator, f"{DOCKER_CI}-docker")
    assert docker["requiresCompatibilities"] == ["EC2"]
    assert docker["networkMode"] == "awsvpc"
    (container,) = docker["containerDefinitions"]
    assert container["privileged"] is True
    assert container["image"].endswith(":default-docker")
    assert {"name": "RUNNER_DOCKER", "value": "true"} in container["environment"]
    assert container["mountPoints"] == [
        {"sourceVolume": "docker", "containerPath": "/var/lib/docker", "readOnly": False}
    ]
    (volume,) = docker["volumes"]
    assert volume["name"] == "docker"
    assert volume["dockerVolumeConfiguration"]["scope"] == "task"


def test_docker_builds_example_has_an_auto_scaling_group_capacity_provider(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    ecs = emulator.client("ecs", DOCKER_BUILDS_REGION)
    name = f"{DOCKER_CI}-docker-x86_64"
    assert examples["docker-builds"].outputs["docker_capacity_providers"] == {"x86_64": name}
    (provider,) = ecs.describe_capacity_providers(capacityProviders=[name])["capacityProviders"]
    group_provider = provider["autoScalingGroupProvider"]
    assert group_provider["managedScaling"]["status"] == "ENABLED"
    assert group_provider["managedScaling"]["targetCapacity"] == 100
    assert group_provider["managedTerminationProtection"] == "ENABLED"
    (group_arn,) = examples["docker-builds"].outputs["docker_autoscaling_group_arns"].values()
    assert group_provider["autoScalingGroupArn"] == group_arn
    (cluster,) = ecs.describe_clusters(clusters=[DOCKER_CI])["clusters"]
    assert sorted(cluster["capacityProviders"]) == ["FARGATE", "FARGATE_SPOT", name]

    autoscaling = emulator.client("autoscaling", DOCKER_BUILDS_REGION)
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ]
    assert (group["MinSize"], group["MaxSize"]) == (0, 5)
    assert group["NewInstancesProtectedFromScaleIn"] is True
    assert {"AmazonECSManaged"} <= {tag["Key"] for tag in group["Tags"]}
    subnets = json.loads(
        (examples["docker-builds"].directory / "terraform.tfvars.json").read_text()
    )
    assert sorted(group["VPCZoneIdentifier"].split(",")) == sorted(subnets["private_subnet_ids"])


def test_docker_builds_example_instances_block_task_metadata_access(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    ec2 = emulator.client("ec2", DOCKER_BUILDS_REGION)
    (version,) = ec2.describe_launch_template_versions(
        LaunchTemplateName=f"{DOCKER_CI}-docker-x86_64", Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    config = base64.b64decode(data["UserData"]).decode().splitlines()
    assert "ECS_AWSVPC_BLOCK_IMDS=true" in config
    assert f"ECS_CLUSTER={DOCKER_CI}" in config
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    recommended = emulator.client("ssm", DOCKER_BUILDS_REGION).get_parameter(
        Name="/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
    )["Parameter"]["Value"]
    assert data["ImageId"] == recommended


def test_docker_builds_example_instance_role_acts_on_its_cluster_only(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    iam = emulator.client("iam")
    role = f"{DOCKER_CI}-docker-instance-{DOCKER_BUILDS_REGION}"
    (profile,) = iam.list_instance_profiles_for_role(RoleName=role)["InstanceProfiles"]
    assert profile["InstanceProfileName"] == role
    document = iam.get_role_policy(RoleName=role, PolicyName="ecs-agent")["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    cluster = f"arn:aws:ecs:{DOCKER_BUILDS_REGION}:{ACCOUNT}:cluster/{DOCKER_CI}"
    resources = {r for statement in document["Statement"] for r in as_list(statement["Resource"])}
    actions = {a for statement in document["Statement"] for a in as_list(statement["Action"])}
    assert cluster in resources
    assert resources <= {
        cluster,
        f"arn:aws:ecs:{DOCKER_BUILDS_REGION}:{ACCOUNT}:container-instance/{DOCKER_CI}/*",
        "*",
    }
    assert "ecs:RegisterContainerInstance" in actions
    assert not [action for action in actions if not action.startswith("ecs:")]  # no ECR, no logs


def test_docker_builds_example_tells_the_control_plane_about_docker(
    examples: dict[str, Deployment], emulator: Emulator
) -> None:
    env = lambda_environment(emulator, f"{DOCKER_CI}-control-plane", DOCKER_BUILDS_REGION)
    assert env["DOCKER_CAPACITY_WAIT_MINUTES"] == "15"
    assert env["IMAGE_BUILD_ENVIRONMENTS"] == "{}"  # image builds off
    assert env["ASSIGN_PUBLIC_IP"] == "false"
    sizes = json.loads(
        emulator.client("ssm", DOCKER_BUILDS_REGION).get_parameter(Name=env["CLASS_SIZES_PARAM"])[
            "Parameter"
        ]["Value"]
    )
    assert sizes["classes"]["docker"]["capacity_provider"] == f"{DOCKER_CI}-docker-x86_64"
    assert sizes["classes"]["docker"]["distinct_instance"] is True
    assert sizes["classes"]["arm"]["architecture"] == "arm64"
    assert sizes["classes"]["bigdisk"]["ephemeral_storage_gib"] == 100
    alarms = alarms_by_name(emulator, DOCKER_CI, DOCKER_BUILDS_REGION)
    assert alarms[f"{DOCKER_CI}-capacity-wait"]["MetricName"] == "TasksWaitingForCapacity"


# ----------------------------------------------------------------------------- destroy


def test_destroy_leaves_nothing_behind(examples: dict[str, Deployment], emulator: Emulator) -> None:
    deployments = list(examples.values())
    failures = in_parallel("destroy", deployments)
    assert not any(failures), "\n".join(filter(None, failures))
    for deployment in deployments:
        assert deployment.terraform("state", "list").strip() == ""
    names = {api["name"] for api in emulator.client("apigateway").get_rest_apis()["items"]}
    assert "runner-fleet-webhook" not in names
    regions = [
        ("us-east-1", "runner-fleet"),
        ("eu-west-1", "ci-runners"),
        (DOCKER_BUILDS_REGION, DOCKER_CI),
    ]
    for region, prefix in regions:
        arns = emulator.client("ecs", region).list_task_definitions(status="ACTIVE")
        assert not [arn for arn in arns["taskDefinitionArns"] if f"/{prefix}-" in arn]
    buckets = emulator.client("s3", "eu-west-1").list_buckets()["Buckets"]
    assert not [b for b in buckets if b["Name"].startswith(("ci-runners-", "runner-fleet-"))]
    for region, prefix in regions:
        cloudwatch = emulator.client("cloudwatch", region)
        assert not cloudwatch.list_dashboards(DashboardNamePrefix=prefix)["DashboardEntries"]
        assert not alarms_by_name(emulator, prefix, region)
    autoscaling = emulator.client("autoscaling", DOCKER_BUILDS_REGION)
    assert not autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
    # (by name: moto fails DescribeCapacityProviders without names)
    providers = emulator.client("ecs", DOCKER_BUILDS_REGION).describe_capacity_providers(
        capacityProviders=[f"{DOCKER_CI}-docker-x86_64"]
    )
    assert providers["capacityProviders"] == []
