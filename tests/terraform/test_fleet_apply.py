"""The module applied to the emulator with every optional part on (tests/terraform/fleet):
what exists afterwards, as AWS reports it. One apply per session (pytest-terraform)."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from control_plane.images.refs import FINGERPRINT_FILES, runner_fingerprint
from pytest_terraform import terraform

from local_mode import vtl
from tests.terraform.tfharness import REPO_ROOT, TERRAFORM, Emulator, terraform_env

PREFIX = "tf-test"
CLASSES = {
    "tiny": {"cpu": 256, "memory": 512},
    "small": {"cpu": 512, "memory": 1024},
    "medium": {"cpu": 1024, "memory": 3072},
    "xlarge": {"cpu": 4096, "memory": 16384},
    "arm": {  # issue 14: a Fargate class's architecture, disk and capacity strategy
        "cpu": 1024,
        "memory": 2048,
        "architecture": "arm64",
        "ephemeral_storage_gib": 50,
        "capacity_strategy": "FARGATE",
    },
}
# The class-sizes document's defaults of the optional attributes (fleet/main.tf has no docker
# class: assign_public_ip is true there).
CLASS_DEFAULTS = {
    "architecture": "x86_64",
    "ephemeral_storage_gib": None,
    "docker": False,
    "capacity_strategy": None,
}
TAGS = {"team": "ci", "cost-center": "42"}
WEBHOOK_SECRET = "tf-test-webhook-secret-0123456789"  # as in fleet/main.tf
PREVIOUS_WEBHOOK_SECRET = "tf-test-previous-webhook-secret-01"
NAMESPACE = "CI/Runners"  # metrics_namespace, as in fleet/main.tf
ACCOUNT = "123456789012"  # moto's
ROLE = f"arn:aws:iam::{ACCOUNT}:role/runner-fleet"  # the roles' ARN prefix (iam_role_path)
# Actions without resource-level permissions: the only ones allowed on "*".
NO_RESOURCE_LEVEL = {
    "ecr:GetAuthorizationToken",
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
    "ecs:ListTasks",  # authorizes on container instances, which Fargate has none of
    "ecs:ListTaskDefinitionFamilies",
    "ecs:ListTaskDefinitions",
    "ecs:DeregisterTaskDefinition",  # no resource type in ECS's authorization reference
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
    "logs:DescribeLogGroups",  # ECS Exec's session logging looks its group up
}

LAMBDA_ADDRESS = "module.fleet.module.control_plane.aws_lambda_function.control_plane"

terraform("fleet", scope="session")


@pytest.fixture(scope="module")
def outputs(fleet: Any) -> dict[str, Any]:
    return fleet.outputs["fleet"]["value"]


def all_resources(module: dict[str, Any]) -> list[dict[str, Any]]:
    """Resources of a `terraform show -json` module and of all its child modules."""
    found = list(module.get("resources", []))
    for child in module.get("child_modules", []):
        found += all_resources(child)
    return found


def role_policies(emulator: Emulator, role: str) -> list[dict[str, Any]]:
    iam = emulator.client("iam")
    statements = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        statements += document["Statement"]
    return statements


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def statement(statements: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    (found,) = [s for s in statements if s.get("Sid") == sid]
    return found


# ----------------------------------------------------------------------------- fleet


def test_one_task_definition_per_class_with_its_size(fleet: Any, emulator: Emulator) -> None:
    ecs = emulator.client("ecs")
    families = set(ecs.list_task_definition_families(familyPrefix=PREFIX)["families"])
    assert families == {f"{PREFIX}-{name}" for name in CLASSES}
    for name, size in CLASSES.items():
        definition = ecs.describe_task_definition(taskDefinition=f"{PREFIX}-{name}")[
            "taskDefinition"
        ]
        assert (int(definition["cpu"]), int(definition["memory"])) == (size["cpu"], size["memory"])
        assert definition["requiresCompatibilities"] == ["FARGATE"]
        assert definition["networkMode"] == "awsvpc"
        assert definition["taskRoleArn"] == f"{ROLE}/{PREFIX}-task-us-east-1"
        assert definition["executionRoleArn"] == f"{ROLE}/{PREFIX}-task-execution-us-east-1"
        (container,) = definition["containerDefinitions"]
        assert container["name"] == "runner"
        assert container["essential"] is True
        assert container["memory"] == size["memory"]
        arm64 = size.get("architecture") == "arm64"
        assert container["image"] == (
            f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{PREFIX}-runner:v1"
            + ("-arm64" if arm64 else "")  # the variant's tag (images/refs.py variant_suffix)
        )
        assert definition["runtimePlatform"]["cpuArchitecture"] == ("ARM64" if arm64 else "X86_64")
        if "ephemeral_storage_gib" in size:
            assert definition["ephemeralStorage"] == {"sizeInGiB": size["ephemeral_storage_gib"]}
        else:
            assert "ephemeralStorage" not in definition
        assert container["environment"] == [  # runner_job_policy_arns: jobs keep credentials
            {"name": "AWS_REGION", "value": "us-east-1"},
            {"name": "RUNNER_JOB_AWS_CREDENTIALS", "value": "true"},
        ]
        assert container["stopTimeout"] == 120
        assert container["linuxParameters"]["initProcessEnabled"] is True
        assert container["logConfiguration"] == {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": f"/aws/ecs/{PREFIX}",
                "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "runner",
            },
        }


def test_cluster_runs_fargate_and_spot_with_container_insights(
    fleet: Any, emulator: Emulator
) -> None:
    (cluster,) = emulator.client("ecs").describe_clusters(
        clusters=[PREFIX], include=["SETTINGS", "TAGS"]
    )["clusters"]
    assert cluster["status"] == "ACTIVE"
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]
    assert sorted(cluster["capacityProviders"]) == ["FARGATE", "FARGATE_SPOT"]
    assert {t["key"]: t["value"] for t in cluster["tags"]} == TAGS


def test_ecr_repository_is_immutable_scanned_and_expires_images(
    fleet: Any, emulator: Emulator, outputs: dict[str, Any]
) -> None:
    ecr = emulator.client("ecr")
    (repository,) = ecr.describe_repositories(repositoryNames=[f"{PREFIX}-runner"])["repositories"]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["repositoryUri"] == outputs["ecr_repository_url"]
    policy = json.loads(
        ecr.get_lifecycle_policy(repositoryName=f"{PREFIX}-runner")["lifecyclePolicyText"]
    )
    rules = sorted(policy["rules"], key=lambda rule: rule["rulePriority"])
    untagged, shield, most_recent = (rule["selection"] for rule in rules)
    assert {"tagStatus": "untagged", "countType": "sinceImagePushed"}.items() <= untagged.items()
    # The image the task definitions run is matched first, so no later rule expires it.
    assert shield["tagStatus"] == "tagged"
    assert shield["tagPrefixList"] == ["v1"]
    assert shield["countNumber"] >= 10000
    assert most_recent == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 100,
    }


def test_log_groups_keep_logs_as_long_as_configured(fleet: Any, emulator: Emulator) -> None:
    logs = emulator.client("logs")
    groups = {
        group["logGroupName"]: group.get("retentionInDays")
        for group in logs.describe_log_groups()["logGroups"]
    }
    for name in [
        f"/aws/ecs/{PREFIX}",
        f"/aws/lambda/{PREFIX}-control-plane",
        f"/aws/codebuild/{PREFIX}-images",
    ]:
        assert groups.get(name) == 14, (name, groups)


# ----------------------------------------------------------------------------- state, config


def test_state_table_per_contract(fleet: Any, emulator: Emulator) -> None:
    dynamodb = emulator.client("dynamodb")
    table = dynamodb.describe_table(TableName=f"{PREFIX}-state")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] in {"ENABLED", "ENABLING"}
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by-kind-created"
    assert index["KeySchema"] == [
        {"AttributeName": "kind", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert index["Projection"]["ProjectionType"] == "ALL"
    ttl = dynamodb.describe_time_to_live(TableName=f"{PREFIX}-state")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    backups = dynamodb.describe_continuous_backups(TableName=f"{PREFIX}-state")
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"


def test_class_sizes_parameter_holds_the_contract_json(
    fleet: Any, emulator: Emulator, outputs: dict[str, Any]
) -> None:
    name = f"/{PREFIX}/config/class-sizes"
    assert outputs["class_sizes_parameter_name"] == name
    parameter = emulator.client("ssm").get_parameter(Name=name)["Parameter"]
    assert parameter["Type"] == "String"
    assert json.loads(parameter["Value"]) == {
        "default_class": "medium",
        "classes": {name: {**CLASS_DEFAULTS, **size} for name, size in CLASSES.items()},
    }


def test_secrets_are_secure_strings_under_the_prefix(
    fleet: Any, emulator: Emulator, app_private_key: str
) -> None:
    ssm = emulator.client("ssm")
    found = {
        p["Name"]: p["Type"]
        for p in ssm.get_parameters_by_path(Path=f"/{PREFIX}/secrets")["Parameters"]
    }
    assert found == {
        f"/{PREFIX}/secrets/webhook-secret": "SecureString",
        f"/{PREFIX}/secrets/webhook-secret-previous": "SecureString",
        f"/{PREFIX}/secrets/github-app-private-key": "SecureString",
    }  # App auth: no PAT parameter
    values = {
        name: ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        for name in found
    }
    assert values[f"/{PREFIX}/secrets/webhook-secret"] == WEBHOOK_SECRET
    assert values[f"/{PREFIX}/secrets/webhook-secret-previous"] == PREVIOUS_WEBHOOK_SECRET
    assert values[f"/{PREFIX}/secrets/github-app-private-key"] == app_private_key


# ----------------------------------------------------------------------------- webhook API


def test_webhook_route_puts_events_on_the_bus(
    fleet: Any, emulator: Emulator, outputs: dict[str, Any]
) -> None:
    apigateway = emulator.client("apigateway")
    (api,) = [a for a in apigateway.get_rest_apis()["items"] if a["name"] == f"{PREFIX}-webhook"]
    resources = {r["path"]: r for r in apigateway.get_resources(restApiId=api["id"])["items"]}
    assert set(resources) == {"/", "/webhook"}
    assert set(resources["/webhook"]["resourceMethods"]) == {"POST"}
    webhook = resources["/webhook"]["id"]

    method = apigateway.get_method(restApiId=api["id"], resourceId=webhook, httpMethod="POST")
    assert method["authorizationType"] == "NONE"  # GitHub signs with HMAC; the Lambda checks
    assert method["requestParameters"] == {
        "method.request.header.X-GitHub-Event": True,
        "method.request.header.X-Hub-Signature-256": True,
        "method.request.header.X-GitHub-Delivery": False,
    }
    validator = apigateway.get_request_validator(
        restApiId=api["id"], requestValidatorId=method["requestValidatorId"]
    )
    assert validator["validateRequestParameters"] is True

    integration = apigateway.get_integration(
        restApiId=api["id"], resourceId=webhook, httpMethod="POST"
    )
    assert integration["type"] == "AWS"
    assert integration["httpMethod"] == "POST"
    assert integration["uri"] == "arn:aws:apigateway:us-east-1:events:action/PutEvents"
    assert integration["credentials"] == f"{ROLE}/{PREFIX}-api-events-us-east-1"
    assert integration["passthroughBehavior"] == "NEVER"
    assert integration["requestParameters"] == {
        "integration.request.header.X-Amz-Target": "'AWSEvents.PutEvents'",
        "integration.request.header.Content-Type": "'application/x-amz-json-1.1'",
    }
    template = integration["requestTemplates"]["application/json"]
    source = (REPO_ROOT / "modules/control-plane/templates/webhook-request.vtl").read_text()
    assert template == source.replace("${event_bus_name}", f"{PREFIX}-github").replace(
        "${event_source}", "aws-runner-fleet.github"
    )

    stage = apigateway.get_stage(restApiId=api["id"], stageName="v1")
    assert stage["methodSettings"]["*/*"]["throttlingRateLimit"] == 50
    assert stage["methodSettings"]["*/*"]["throttlingBurstLimit"] == 100
    assert outputs["webhook_url"] == (
        f"https://{api['id']}.execute-api.us-east-1.amazonaws.com/v1/webhook"
    )


def test_mapping_template_builds_the_contract_entry() -> None:
    """The module's request template, rendered by a Velocity engine, is the PutEvents request
    of docs/CONTRACTS.md "Webhook event" (test_vtl_templates.py covers its edge cases)."""
    body = b'{"a":1}'
    headers = {
        "X-GitHub-Event": "workflow_job",
        "X-Hub-Signature-256": "sha256=" + "0" * 64,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    }
    entry = vtl.put_events_entry(body, headers, event_bus_name="bus")
    assert entry["EventBusName"] == "bus"
    assert entry["Source"] == "aws-runner-fleet.github"
    assert entry["DetailType"] == "workflow_job"
    assert json.loads(entry["Detail"]) == {
        "body": "eyJhIjoxfQ==",
        "signature": "sha256=" + "0" * 64,
        "event": "workflow_job",
        "delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    }


# ----------------------------------------------------------------------------- events


def test_rules_feed_the_lambda_with_retries_and_a_dead_letter_queue(
    fleet: Any, emulator: Emulator, outputs: dict[str, Any]
) -> None:
    events = emulator.client("events")
    function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{PREFIX}-control-plane"
    dlq_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{PREFIX}-events-dlq"
    cluster_arn = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/{PREFIX}"
    expected = {
        (f"{PREFIX}-github", f"{PREFIX}-workflow-job"): {
            "source": ["aws-runner-fleet.github"],
            "detail-type": ["workflow_job"],
        },
        ("default", f"{PREFIX}-ecs-task-state"): {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {"clusterArn": [cluster_arn]},
        },
        ("default", f"{PREFIX}-codebuild-state"): {
            "source": ["aws.codebuild"],
            "detail-type": ["CodeBuild Build State Change"],
            "detail": {"project-name": [f"{PREFIX}-images"]},
        },
        ("default", f"{PREFIX}-cleanup"): None,
    }
    assert outputs["event_bus_name"] == f"{PREFIX}-github"
    found = {}
    for bus in ["default", f"{PREFIX}-github"]:
        for rule in events.list_rules(EventBusName=bus, NamePrefix=PREFIX)["Rules"]:
            found[(bus, rule["Name"])] = rule
    assert set(found) == set(expected)
    for key, pattern in expected.items():
        rule = found[key]
        if pattern is None:
            assert rule["ScheduleExpression"] == "rate(1 minute)"
        else:
            assert json.loads(rule["EventPattern"]) == pattern
        (target,) = events.list_targets_by_rule(Rule=key[1], EventBusName=key[0])["Targets"]
        assert target["Arn"] == function_arn
        assert target["RetryPolicy"] == {
            "MaximumRetryAttempts": 8,
            "MaximumEventAgeInSeconds": 3600,
        }
        assert target["DeadLetterConfig"] == {"Arn": dlq_arn}


def test_the_lambda_may_be_invoked_by_exactly_these_rules(fleet: Any, emulator: Emulator) -> None:
    policy = json.loads(
        emulator.client("lambda").get_policy(FunctionName=f"{PREFIX}-control-plane")["Policy"]
    )
    rule_arns = {
        f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{PREFIX}-github/{PREFIX}-workflow-job",
        f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{PREFIX}-ecs-task-state",
        f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{PREFIX}-codebuild-state",
        f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{PREFIX}-cleanup",
    }
    granted = set()
    for grant in policy["Statement"]:
        assert grant["Principal"] == {"Service": "events.amazonaws.com"}
        assert grant["Action"] == "lambda:InvokeFunction"
        granted.add(grant["Condition"]["ArnLike"]["AWS:SourceArn"])
    assert granted == rule_arns


def test_dead_letter_queue_is_encrypted_and_only_these_rules_may_send(
    fleet: Any, emulator: Emulator, outputs: dict[str, Any]
) -> None:
    sqs = emulator.client("sqs")
    url = sqs.get_queue_url(QueueName=f"{PREFIX}-events-dlq")["QueueUrl"]
    assert outputs["dlq_url"] == url
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert attributes["MessageRetentionPeriod"] == "1209600"
    (grant,) = json.loads(attributes["Policy"])["Statement"]
    assert grant["Effect"] == "Allow"
    assert grant["Principal"] == {"Service": "events.amazonaws.com"}
    assert as_list(grant["Action"]) == ["sqs:SendMessage"]
    assert grant["Resource"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:{PREFIX}-events-dlq"
    sources = set(as_list(grant["Condition"]["ArnEquals"]["aws:SourceArn"]))
    assert len(sources) == 4
    assert all(source.startswith(f"arn:aws:events:us-east-1:{ACCOUNT}:rule/") for source in sources)


# ----------------------------------------------------------------------------- Lambda


def test_lambda_runs_the_package_with_names_not_secrets_in_its_environment(
    fleet: Any, emulator: Emulator, app_private_key: str, outputs: dict[str, Any]
) -> None:
    function = emulator.client("lambda").get_function(FunctionName=f"{PREFIX}-control-plane")
    config = function["Configuration"]
    assert config["Runtime"] == "python3.12"
    assert config["Handler"] == "control_plane.handler.lambda_handler"
    assert config["Timeout"] == 120
    assert config["TracingConfig"] == {"Mode": "Active"}
    assert function["Concurrency"]["ReservedConcurrentExecutions"] == 5
    env = config["Environment"]["Variables"]
    assert env == {
        "NAME_PREFIX": PREFIX,
        "STATE_TABLE": f"{PREFIX}-state",
        "CLASS_SIZES_PARAM": f"/{PREFIX}/config/class-sizes",
        "SSM_PREFIX": f"/{PREFIX}",
        "WEBHOOK_SECRET_PARAM": f"/{PREFIX}/secrets/webhook-secret",
        "WEBHOOK_SECRET_PREVIOUS_PARAM": f"/{PREFIX}/secrets/webhook-secret-previous",
        "WEBHOOK_SECRET_PREVIOUS_GRACE_SECONDS": "43200",
        "GITHUB_AUTH": "app",
        "GITHUB_APP_ID": "123456",
        "GITHUB_APP_INSTALLATION_ID": "987654",
        "GITHUB_APP_KEY_PARAM": f"/{PREFIX}/secrets/github-app-private-key",
        "GITHUB_API_URL": "https://github.example.com/api/v3",
        "GITHUB_SCOPE": "org",
        "GITHUB_OWNER": "octo-org",
        "GITHUB_REPO": "",
        "RUNNER_GROUP_ID": "3",
        "RUNNER_EXTRA_LABELS": "linux,x64",
        "CLUSTER_NAME": PREFIX,
        "SUBNET_IDS": ",".join(fleet.outputs["subnet_ids"]["value"]),
        "SECURITY_GROUP_IDS": fleet.outputs["security_group_id"]["value"],
        "ASSIGN_PUBLIC_IP": "true",
        "CAPACITY_STRATEGY": "spotPreferred",
        "RUNNER_TIMEOUT_MINUTES": "360",
        "RUNNER_IDLE_MINUTES": "15",
        "MAX_RELAUNCHES": "2",
        "ECR_REPOSITORY_URL": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{PREFIX}-runner",
        "RUNNER_IMAGE": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{PREFIX}-runner:v1",
        "IMAGE_BUILD_PROJECT": f"{PREFIX}-images",
        "DEFAULT_BASE_IMAGE": "public.ecr.aws/docker/library/ubuntu:22.04",
        "ALLOWED_BASE_IMAGES": "public.ecr.aws/docker/library/*,docker.io/library/*",
        "IMAGE_MAX_AGE_DAYS": "7",
        "DLQ_URL": emulator.client("sqs").get_queue_url(QueueName=f"{PREFIX}-events-dlq")[
            "QueueUrl"
        ],
        "ECS_TASK_ROLE_ARN": f"{ROLE}/{PREFIX}-task-us-east-1",
        "ECS_EXECUTION_ROLE_ARN": f"{ROLE}/{PREFIX}-task-execution-us-east-1",
        "ENABLE_EXECUTE_COMMAND": "true",
        "JIT_BUCKET": outputs["jit_bucket_name"],
        "RUNNER_LOG_GROUP": f"/aws/ecs/{PREFIX}",
        "LOG_LEVEL": "INFO",
        "GITHUB_JIT_CONFIGS_PER_MINUTE": "150",
        # image tags derive from it: Terraform's digest of runner/ = the control plane's twin
        "RUNNER_IMAGE_FINGERPRINT": runner_fingerprint(
            {name: (REPO_ROOT / "runner" / name).read_bytes() for name in FINGERPRINT_FILES}
        ),
        "METRICS_NAMESPACE": NAMESPACE,
        "FARGATE_PRICES": env["FARGATE_PRICES"],  # below
        "STRANDED_JOB_SECONDS": "900",
        "DOCKER_CAPACITY_WAIT_MINUTES": "15",
        # image builds on: arm64 images build in CodeBuild's ARM environment
        "IMAGE_BUILD_ENVIRONMENTS": json.dumps(
            {
                "arm64": {
                    "compute_type": "BUILD_GENERAL1_LARGE",
                    "image": "aws/codebuild/amazonlinux-aarch64-standard:3.0",
                    "type": "ARM_CONTAINER",
                }
            },
            separators=(",", ":"),
        ),
    }
    # the given prices, the defaults for the others
    assert json.loads(env["FARGATE_PRICES"]) == {
        "x86_64_vcpu_hour": 0.04048,
        "x86_64_gb_hour": 0.004445,
        "arm64_vcpu_hour": 0.03,
        "arm64_gb_hour": 0.00356,
        "ephemeral_storage_gb_hour": 0.000111,
        "spot_discount": 0.65,
    }
    for value in env.values():
        assert WEBHOOK_SECRET not in value
        assert PREVIOUS_WEBHOOK_SECRET not in value
        assert "PRIVATE KEY" not in value
    assert {t: function["Tags"][t] for t in TAGS} == TAGS
    invoke = emulator.client("lambda").get_function_event_invoke_config(
        FunctionName=f"{PREFIX}-control-plane"
    )
    assert invoke["MaximumRetryAttempts"] == 2


def test_deployed_code_is_the_zip_the_module_built(fleet: Any, emulator: Emulator) -> None:
    state = json.loads(fleet_terraform(fleet, "show", "-json", fleet.terraform.state_path))
    (build,) = [
        r
        for r in all_resources(state["values"]["root_module"])
        if r["address"] == "module.fleet.terraform_data.lambda_package[0]"
    ]
    built = Path(fleet.terraform.module_dir) / build["values"]["output"]
    names = zipfile.ZipFile(built).namelist()
    assert "control_plane/handler.py" in names
    assert "requests/__init__.py" in names
    assert "jwt/__init__.py" in names
    config = emulator.client("lambda").get_function(FunctionName=f"{PREFIX}-control-plane")[
        "Configuration"
    ]
    digest = hashlib.sha256(built.read_bytes()).digest()
    assert config["CodeSha256"] == base64.b64encode(digest).decode()


# ----------------------------------------------------------------------------- IAM


def test_every_policy_names_its_resources(fleet: Any, emulator: Emulator) -> None:
    for role in [
        f"{PREFIX}-control-plane-us-east-1",
        f"{PREFIX}-task-us-east-1",
        f"{PREFIX}-task-execution-us-east-1",
        f"{PREFIX}-api-events-us-east-1",
        f"{PREFIX}-image-build-us-east-1",
    ]:
        grants = role_policies(emulator, role)
        assert grants, f"{role} has no policy"
        for grant in grants:
            assert grant["Effect"] == "Allow"
            if "*" in as_list(grant["Resource"]):
                assert as_list(grant["Resource"]) == ["*"]
                assert set(as_list(grant["Action"])) <= NO_RESOURCE_LEVEL, (role, grant)
            for action in as_list(grant["Action"]):
                assert "*" not in action, (role, grant)


def test_control_plane_may_run_only_this_fleets_tasks(
    fleet: Any, emulator: Emulator, outputs: dict[str, Any]
) -> None:
    statements = role_policies(emulator, f"{PREFIX}-control-plane-us-east-1")
    arn = f"arn:aws:{{}}:us-east-1:{ACCOUNT}:{{}}"
    cluster = arn.format("ecs", f"cluster/{PREFIX}")

    run = statement(statements, "RunRunnerTasks")
    assert as_list(run["Action"]) == ["ecs:RunTask"]
    assert as_list(run["Resource"]) == [arn.format("ecs", f"task-definition/{PREFIX}-*")]
    assert run["Condition"] == {"ArnEquals": {"ecs:cluster": cluster}}

    tasks = statement(statements, "ManageRunnerTasks")
    assert as_list(tasks["Resource"]) == [arn.format("ecs", f"task/{PREFIX}/*")]
    assert statement(statements, "ListRunnerTasks")["Condition"] == {
        "ArnEquals": {"ecs:cluster": cluster}
    }

    pass_role = statement(statements, "PassTaskRoles")
    assert sorted(as_list(pass_role["Resource"])) == sorted(
        [f"{ROLE}/{PREFIX}-task-us-east-1", f"{ROLE}/{PREFIX}-task-execution-us-east-1"]
    )
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }

    parameters = statement(statements, "ReadOwnParameters")
    assert as_list(parameters["Action"]) == ["ssm:GetParameter"]
    assert sorted(as_list(parameters["Resource"])) == [
        arn.format("ssm", f"parameter/{PREFIX}/config/*"),
        arn.format("ssm", f"parameter/{PREFIX}/secrets/*"),
    ]
    bucket = f"arn:aws:s3:::{outputs['jit_bucket_name']}"
    write = statement(statements, "WriteJitConfigs")
    assert sorted(as_list(write["Action"])) == ["s3:DeleteObject", "s3:PutObject"]
    assert as_list(write["Resource"]) == [f"{bucket}/jit/*"]
    listing = statement(statements, "ListJitConfigs")
    assert as_list(listing["Resource"]) == [bucket]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "jit/*"}}
    assert statement(statements, "EncryptJitConfigs")["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    }
    table = statement(statements, "StateTable")
    assert sorted(as_list(table["Action"])) == [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ]
    assert sorted(as_list(table["Resource"])) == [
        arn.format("dynamodb", f"table/{PREFIX}-state"),
        arn.format("dynamodb", f"table/{PREFIX}-state/index/*"),
    ]
    builds = statement(statements, "ImageBuilds")
    assert as_list(builds["Resource"]) == [arn.format("codebuild", f"project/{PREFIX}-images")]
    assert sorted(as_list(builds["Action"])) == [
        "codebuild:BatchGetBuilds",
        "codebuild:StartBuild",
        "codebuild:StopBuild",
    ]
    dlq = statement(statements, "DeadLetterQueue")
    assert sorted(as_list(dlq["Action"])) == [
        "sqs:DeleteMessage",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
    ]
    assert sorted(as_list(statement(statements, "Tracing")["Action"])) == [
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    ]
    assert as_list(dlq["Resource"]) == [arn.format("sqs", f"{PREFIX}-events-dlq")]
    images = statement(statements, "RunnerImages")
    assert as_list(images["Resource"]) == [arn.format("ecr", f"repository/{PREFIX}-runner")]
    logs = statement(statements, "Logs")
    assert as_list(logs["Resource"]) == [
        arn.format("logs", f"log-group:/aws/lambda/{PREFIX}-control-plane:*")
    ]


def test_roles_have_the_path_and_boundary_and_trust_only_this_account(
    fleet: Any, emulator: Emulator
) -> None:
    iam = emulator.client("iam")
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/{PREFIX}-boundary"
    for name in ("control-plane", "task", "task-execution", "api-events", "image-build"):
        role = iam.get_role(RoleName=f"{PREFIX}-{name}-us-east-1")["Role"]
        assert role["Path"] == "/runner-fleet/", name
        assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary, name
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        (grant,) = trust["Statement"]
        # API Gateway sends no aws:SourceAccount when it assumes an integration's role
        expected = None if name == "api-events" else ACCOUNT
        found = grant.get("Condition", {}).get("StringEquals", {}).get("aws:SourceAccount")
        assert found == expected, name
    build = iam.get_role(RoleName=f"{PREFIX}-image-build-us-east-1")["Role"][
        "AssumeRolePolicyDocument"
    ]
    build = json.loads(build) if isinstance(build, str) else build
    assert build["Statement"][0]["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:codebuild:us-east-1:{ACCOUNT}:project/{PREFIX}-images"
    }


def test_api_role_may_only_put_events_on_the_bus(fleet: Any, emulator: Emulator) -> None:
    (grant,) = role_policies(emulator, f"{PREFIX}-api-events-us-east-1")
    assert as_list(grant["Action"]) == ["events:PutEvents"]
    assert as_list(grant["Resource"]) == [
        f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/{PREFIX}-github"
    ]


def test_build_role_pushes_only_to_the_fleets_repository(fleet: Any, emulator: Emulator) -> None:
    statements = role_policies(emulator, f"{PREFIX}-image-build-us-east-1")
    push = statement(statements, "PushRunnerImages")
    assert as_list(push["Resource"]) == [
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{PREFIX}-runner"
    ]
    assert "ecr:PutImage" in as_list(push["Action"])
    context = statement(statements, "ReadBuildContext")
    (resource,) = as_list(context["Resource"])
    assert re.fullmatch(rf"arn:aws:s3:::{PREFIX}-build-\w+/runner/\*", resource)


# ----------------------------------------------------------------------------- image builds


def test_codebuild_project_builds_the_runner_folder_privileged(
    fleet: Any, emulator: Emulator, outputs: dict[str, Any]
) -> None:
    (project,) = emulator.client("codebuild").batch_get_projects(names=[f"{PREFIX}-images"])[
        "projects"
    ]
    assert outputs["image_build_project_name"] == f"{PREFIX}-images"
    assert project["serviceRole"] == f"{ROLE}/{PREFIX}-image-build-us-east-1"
    assert project["environment"]["privilegedMode"] is True
    assert {v["name"]: v["value"] for v in project["environment"]["environmentVariables"]} == {
        "ECR_REPOSITORY_URL": outputs["ecr_repository_url"]
    }
    assert project["source"]["type"] == "S3"
    bucket, prefix = project["source"]["location"].split("/", 1)
    assert prefix == "runner/"

    s3 = emulator.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {
        "runner/Dockerfile",
        "runner/entrypoint.sh",
        "runner/buildspec.yml",
        "runner/.dockerignore",
    }
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == (REPO_ROOT / key).read_bytes(), key
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# ----------------------------------------------------------------------------- outputs, tags


def test_outputs_name_everything_and_hold_no_secret(
    outputs: dict[str, Any], app_private_key: str
) -> None:
    for name in [
        "webhook_url",
        "state_table_name",
        "class_sizes_parameter_name",
        "cluster_name",
        "cluster_arn",
        "ecr_repository_url",
        "lambda_function_name",
        "event_bus_name",
        "dlq_url",
        "lambda_role_arn",
        "api_role_arn",
        "task_role_arn",
        "task_execution_role_arn",
        "image_build_role_arn",
    ]:
        assert outputs.get(name), name
    assert outputs["state_table_name"] == f"{PREFIX}-state"
    assert outputs["cluster_name"] == PREFIX
    assert outputs["lambda_function_name"] == f"{PREFIX}-control-plane"
    serialized = json.dumps(outputs)
    assert WEBHOOK_SECRET not in serialized
    assert PREVIOUS_WEBHOOK_SECRET not in serialized
    assert "PRIVATE KEY" not in serialized
    assert app_private_key.splitlines()[1] not in serialized


# ----------------------------------------------------------------------------- monitoring


def test_alarms_notify_the_topic_and_watch_the_given_namespace(
    fleet: Any, emulator: Emulator, outputs: dict[str, Any]
) -> None:
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:{PREFIX}-alarms"
    alarms = emulator.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{PREFIX}-")
    alarms = {alarm["AlarmName"]: alarm for alarm in alarms["MetricAlarms"]}
    assert set(alarms) == {
        f"{PREFIX}-{key}"
        for key in ["dlq-not-empty", "lambda-errors", "queue-wait-p90", "jobs-stranded"]
    }
    assert outputs["alarm_arns"] == {
        key.removeprefix(f"{PREFIX}-"): alarm["AlarmArn"] for key, alarm in alarms.items()
    }
    for alarm in alarms.values():
        assert (alarm["AlarmActions"], alarm["OKActions"]) == ([topic], [topic])
    queue_wait = alarms[f"{PREFIX}-queue-wait-p90"]
    assert (queue_wait["Namespace"], queue_wait["ExtendedStatistic"]) == (NAMESPACE, "p90")
    assert queue_wait["Threshold"] == 120  # alarm_queue_wait_seconds
    assert queue_wait["EvaluateLowSampleCountPercentile"] == "evaluate"
    stranded = alarms[f"{PREFIX}-jobs-stranded"]
    assert (stranded["Namespace"], stranded["MetricName"]) == (NAMESPACE, "JobsStranded")
    assert stranded["Period"] == 60  # a window per cleanup run (cleanup_interval_minutes)


def test_dashboard_charts_the_given_namespace_for_every_class(
    fleet: Any, emulator: Emulator, outputs: dict[str, Any]
) -> None:
    assert outputs["dashboard_name"] == PREFIX
    body = emulator.client("cloudwatch").get_dashboard(DashboardName=PREFIX)["DashboardBody"]
    lines = [line for w in json.loads(body)["widgets"] for line in w["properties"]["metrics"]]
    ours = [line for line in lines if line[0] not in ("AWS/SQS", "AWS/Lambda")]
    assert {line[0] for line in ours} == {NAMESPACE, "ECS/ContainerInsights"}
    for name in CLASSES:
        assert [NAMESPACE, "QueueWaitSeconds", "Fleet", PREFIX, "Class", name] in [
            line[:6] for line in ours
        ]
        assert [NAMESPACE, "JobCostUSD", "Fleet", PREFIX, "Class", name] in [
            line[:6] for line in ours
        ]
        assert ["ClusterName", PREFIX, "TaskDefinitionFamily", f"{PREFIX}-{name}"] in [
            line[2:6] for line in ours
        ]


def fleet_terraform(fleet: Any, *args: str) -> str:
    """Runs terraform on the applied fleet (its working directory, data dir and state)."""
    runner = fleet.terraform
    result = subprocess.run(
        [TERRAFORM, *args, "-no-color"],
        cwd=runner.module_dir,
        env={**os.environ, **terraform_env(), "TF_DATA_DIR": runner.work_dir},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_every_taggable_resource_carries_the_tags(fleet: Any) -> None:
    state = json.loads(fleet_terraform(fleet, "show", "-json", fleet.terraform.state_path))

    taggable = [
        r
        for r in all_resources(state["values"]["root_module"])
        if r["mode"] == "managed"
        and r["address"].startswith("module.fleet")
        and "tags" in r["values"]
    ]
    assert len(taggable) > 25
    untagged = [
        r["address"] for r in taggable if not TAGS.items() <= (r["values"]["tags"] or {}).items()
    ]
    assert not untagged


def planned_changes(fleet: Any, plan_file: Path) -> dict[str, list[str]]:
    """The fleet's plan now: changed attributes by address (replacements included)."""
    fleet_terraform(
        fleet, "plan", "-input=false", f"-state={fleet.terraform.state_path}", f"-out={plan_file}"
    )
    plan = json.loads(fleet_terraform(fleet, "show", "-json", str(plan_file)))
    changes = {}
    for change in plan.get("resource_changes", []):
        if change["change"]["actions"] in (["no-op"], ["read"]):
            continue
        before, after = change["change"]["before"] or {}, change["change"]["after"] or {}
        changes[change["address"]] = sorted(
            key for key in set(before) | set(after) if before.get(key) != after.get(key)
        )
    return changes


# The only accepted difference is a moto gap: it does not store a Lambda's DeadLetterConfig.
MOTO_GAP = {LAMBDA_ADDRESS: ["dead_letter_config"]}
BUILD_ADDRESS = "module.fleet.terraform_data.lambda_package[0]"


def test_a_second_plan_changes_nothing(fleet: Any, tmp_path: Path) -> None:
    """source_code_hash derives from the sources: a plan after apply is empty."""
    changes = planned_changes(fleet, tmp_path / "tfplan")
    assert changes in ({}, MOTO_GAP), changes


def test_a_missing_zip_is_rebuilt_and_the_next_plan_is_clean(fleet: Any, tmp_path: Path) -> None:
    """A fresh checkout (CI, a teammate, Terraform Cloud) has no .build/: the plan rebuilds the
    zip before anything reads it, and once built the plan is empty again."""
    state = json.loads(fleet_terraform(fleet, "show", "-json", fleet.terraform.state_path))
    (build,) = [
        r for r in all_resources(state["values"]["root_module"]) if r["address"] == BUILD_ADDRESS
    ]
    built = Path(fleet.terraform.module_dir) / build["values"]["output"]
    built.unlink()
    changes = planned_changes(fleet, tmp_path / "missing")
    assert BUILD_ADDRESS in changes, changes
    # The function is updated in place with the rebuilt zip's path (known after apply), not
    # replaced and not failing on the missing file.
    assert set(changes.get(LAMBDA_ADDRESS, [])) <= {
        "dead_letter_config",
        "filename",
        "last_modified",
    }
    state_path = f"-state={fleet.terraform.state_path}"
    fleet_terraform(fleet, "apply", "-input=false", "-auto-approve", state_path)
    assert zipfile.ZipFile(built).testzip() is None
    changes = planned_changes(fleet, tmp_path / "rebuilt")
    assert changes in ({}, MOTO_GAP), changes


# ----------------------------------------------------------------------------- job isolation
# Job steps are hostile (docs/security.md): they run with the task role's reach at most.

# What job code must never be allowed, whatever a policy's wildcards say.
FLEET_POWERS = [
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:DeleteParameter",
    "ssm:PutParameter",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:DeleteObject",
    "s3:PutObject",
    "kms:Decrypt",
    "secretsmanager:GetSecretValue",
    "ecs:RunTask",
    "ecs:StopTask",
    "ecs:DescribeTasks",
    "ecs:ExecuteCommand",
    "ecs:RegisterTaskDefinition",
    "iam:PassRole",
    "iam:PutRolePolicy",
    "sts:AssumeRole",
    "lambda:InvokeFunction",
    "lambda:UpdateFunctionCode",
    "events:PutEvents",
    "dynamodb:GetItem",
    "dynamodb:Scan",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "sqs:SendMessage",
    "codebuild:StartBuild",
]
ECS_EXEC_CHANNELS = {
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
}


def fleet_powers_granted(statements: list[dict[str, Any]]) -> list[str]:
    """The FLEET_POWERS an Allow statement grants: its Action wildcards matched as IAM does
    (case-insensitive), and every NotAction statement counted as granting everything else."""
    granted = []
    for grant in statements:
        if grant.get("Effect") != "Allow":
            continue
        for power in FLEET_POWERS:
            if "NotAction" in grant:
                hit = not any(
                    fnmatch.fnmatch(power.lower(), a.lower()) for a in as_list(grant["NotAction"])
                )
            else:
                hit = any(
                    fnmatch.fnmatch(power.lower(), a.lower()) for a in as_list(grant["Action"])
                )
            if hit:
                granted.append(power)
    return granted


def test_the_evaluation_catches_a_role_that_holds_fleet_powers(
    fleet: Any, emulator: Emulator
) -> None:
    """The check below can fail: the control plane's role holds such powers, and wildcards
    and NotAction are understood."""
    assert "s3:PutObject" in fleet_powers_granted(
        role_policies(emulator, f"{PREFIX}-control-plane-us-east-1")
    )
    assert fleet_powers_granted([{"Effect": "Allow", "Action": "SSM:Get*", "Resource": "*"}])
    assert "ecs:RunTask" in fleet_powers_granted(
        [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]
    )


def test_the_task_role_holds_nothing_of_the_fleets(fleet: Any, emulator: Emulator) -> None:
    """What the module grants the identity job steps can reach: ECS Exec's channels only. The
    user's runner_job_policy_arns are attached as given, and nothing else is."""
    iam = emulator.client("iam")
    module_granted = role_policies(emulator, f"{PREFIX}-task-us-east-1")
    assert fleet_powers_granted(module_granted) == []
    actions = {a for grant in module_granted for a in as_list(grant["Action"])}
    session_logs = {"logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"}
    assert actions == ECS_EXEC_CHANNELS | session_logs | {"logs:DescribeLogGroups"}
    (logs,) = [g for g in module_granted if g.get("Sid") == "EcsExecSessionLogs"]
    assert as_list(logs["Resource"]) == [
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/ecs/{PREFIX}/exec:*"
    ]
    attached = iam.list_attached_role_policies(RoleName=f"{PREFIX}-task-us-east-1")[
        "AttachedPolicies"
    ]
    assert [p["PolicyName"] for p in attached] == [f"{PREFIX}-job-s3-and-kms"]
    for role in ("control-plane", "task-execution", "api-events", "image-build"):
        assert not iam.list_attached_role_policies(RoleName=f"{PREFIX}-{role}-us-east-1")[
            "AttachedPolicies"
        ]


def test_only_ecs_reads_a_jit_config_and_only_the_control_plane_writes_one(
    fleet: Any, emulator: Emulator, outputs: dict[str, Any]
) -> None:
    bucket = outputs["jit_bucket_name"]
    key = f"jit/{PREFIX}-4242/{'c0ffee' * 6}0000.env"
    lambda_s3 = emulator.role_client("s3", f"{ROLE}/{PREFIX}-control-plane-us-east-1")
    agent_s3 = emulator.role_client("s3", f"{ROLE}/{PREFIX}-task-execution-us-east-1")
    lambda_s3.put_object(Bucket=bucket, Key=key, Body=b"ACTIONS_RUNNER_INPUT_JITCONFIG=eyJ9\n")
    try:
        body = agent_s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == b"ACTIONS_RUNNER_INPUT_JITCONFIG=eyJ9\n"
        for client in (lambda_s3, emulator.client("s3")):  # the control plane, an administrator
            with pytest.raises(ClientError):
                client.get_object(Bucket=bucket, Key=key)
        with pytest.raises(ClientError):
            agent_s3.put_object(Bucket=bucket, Key=key, Body=b"ACTIONS_RUNNER_INPUT_JITCONFIG=x\n")
        with pytest.raises(ClientError):
            agent_s3.delete_object(Bucket=bucket, Key=key)
    finally:
        lambda_s3.delete_object(Bucket=bucket, Key=key)

    s3 = emulator.client("s3")
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    default = encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    key_id = default["KMSMasterKeyID"]
    assert emulator.client("kms").get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert (rule["Status"], rule["Expiration"]["Days"]) == ("Enabled", 1)
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)  # no stale secrets kept


def test_a_hostile_job_step_cannot_read_list_or_delete_another_runners_config(
    fleet: Any, emulator: Emulator, outputs: dict[str, Any], tmp_path: Path
) -> None:
    """Runner A's job step, started by the real entrypoint with the environment ECS gives the
    applied task definition's container, attacks runner B's pending config. This fleet attaches
    a careless runner_job_policy_arns (s3:* and kms:* on everything), so the step keeps the task
    role's credentials: with them (what ECS's credentials endpoint returns for the URI it finds)
    and B's exact key, the bucket policy alone must refuse every attempt; B's config is intact."""
    bucket = outputs["jit_bucket_name"]
    victim = f"{PREFIX}-5151"
    key = f"jit/{victim}/{'5eed' * 10}.env"
    config = b"ACTIONS_RUNNER_INPUT_JITCONFIG=eyJ2aWN0aW0iOiJCIn0=\n"
    lambda_s3 = emulator.role_client("s3", f"{ROLE}/{PREFIX}-control-plane-us-east-1")
    lambda_s3.put_object(Bucket=bucket, Key=key, Body=config)
    definition = emulator.client("ecs").describe_task_definition(taskDefinition=f"{PREFIX}-small")[
        "taskDefinition"
    ]
    stolen = emulator.role_credentials(definition["taskRoleArn"])
    (tmp_path / "stolen.json").write_text(json.dumps(stolen))

    work = tmp_path / "runner"
    work.mkdir()
    report = tmp_path / "report.json"
    run_sh = work / "run.sh"
    run_sh.write_text(
        "#!/bin/bash\n"
        "# the job: one hostile step, with the environment the runner passes to steps\n"
        f'exec "{sys.executable}" -m local_mode.hostile_step --bucket {bucket} --victim {victim}'
        f" --known-key {key} --stolen-credentials {tmp_path / 'stolen.json'}"
        f' --credentials-expected --endpoint "$AWS_ENDPOINT_URL" > {report}\n'
    )
    run_sh.chmod(0o755)
    (container,) = definition["containerDefinitions"]
    container_env = {  # what ECS gives this container: its variables, the environment file's,
        **{pair["name"]: pair["value"] for pair in container["environment"]},
        "ACTIONS_RUNNER_INPUT_JITCONFIG": "eyJydW5uZXIiOiJBIn0=",
        # and, for the task role, the credentials URI
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": f"/v2/credentials/{'a1' * 16}",
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO_ROOT),
        "AWS_ENDPOINT_URL": emulator.url,  # local stand-in for the regional endpoints
    }
    assert container_env["RUNNER_JOB_AWS_CREDENTIALS"] == "true"
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "runner" / "entrypoint.sh")],
        cwd=work,
        env=container_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    attempts = json.loads(report.read_text())
    not_refused = [a for a in attempts if not a["refused"]]
    assert not not_refused, not_refused
    (found,) = [a for a in attempts if a["attempt"] == "credential variables"]
    assert found["found"] == ["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]  # kept: job policies
    whats = {a["attempt"] for a in attempts}
    for attack in ("read", "delete", "delete version null of"):
        assert f"stolen: {attack} {key}" in whats
    assert {"stolen: list jit/", "stolen: delete the bucket policy"} <= whats
    # An administrator may not write or delete a config either (only the control plane may).
    for write in (
        lambda: emulator.client("s3").put_object(Bucket=bucket, Key=key, Body=b"X=1\n"),
        lambda: emulator.client("s3").delete_object(Bucket=bucket, Key=key),
    ):
        with pytest.raises(ClientError):
            write()
    agent_s3 = emulator.role_client("s3", f"{ROLE}/{PREFIX}-task-execution-us-east-1")
    assert agent_s3.get_object(Bucket=bucket, Key=key)["Body"].read() == config
    lambda_s3.delete_object(Bucket=bucket, Key=key)


def test_the_job_role_is_denied_the_jit_key_and_bucket_whatever_it_is_granted(
    fleet: Any, emulator: Emulator, outputs: dict[str, Any]
) -> None:
    bucket = outputs["jit_bucket_name"]
    policy = json.loads(emulator.client("s3").get_bucket_policy(Bucket=bucket)["Policy"])
    job_role = f"{ROLE}/{PREFIX}-task-us-east-1"
    (never,) = [s for s in policy["Statement"] if s["Sid"] == "NeverTheJobRole"]
    assert (never["Effect"], never["Action"]) == ("Deny", "s3:*")
    assert never["Condition"] == {"ArnEquals": {"aws:PrincipalArn": job_role}}
    kms = emulator.client("kms")
    encryption = emulator.client("s3").get_bucket_encryption(Bucket=bucket)
    key_id = encryption["ServerSideEncryptionConfiguration"]["Rules"][0][
        "ApplyServerSideEncryptionByDefault"
    ]["KMSMasterKeyID"]
    key_policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    (never,) = [s for s in key_policy["Statement"] if s["Sid"] == "NeverTheJobRole"]
    assert (never["Effect"], never["Action"]) == ("Deny", "kms:*")
    assert never["Condition"] == {"ArnEquals": {"aws:PrincipalArn": job_role}}
