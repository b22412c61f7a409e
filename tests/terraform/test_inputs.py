"""The module's inputs: every bad value fails `terraform plan` with a clear message, and the
plan follows the optional inputs (auth, scope, image builds, default class, prebuilt zip)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.terraform.tfharness import Emulator, ModulePlanner, PlanResult

VALID: dict[str, Any] = {
    "github_pat": "ghp_" + "a" * 36,
    "github_repo": "octo-org/octo-repo",
    "webhook_secret": "0123456789abcdef0123",
    "subnet_ids": ["subnet-0a1b2c3d"],
    "security_groups": ["sg-0a1b2c3d"],
}
# Passed as sensitive root variables, as a careful user does (a literal in a module block is
# in the configuration anyway, and Terraform quotes the configuration in its errors).
SECRETS = {"github_pat", "github_app_private_key", "webhook_secret", "webhook_secret_previous"}
APP_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"
WITHOUT = object()  # marks an argument to leave out


def plan(planner: ModulePlanner, **changes: Any) -> PlanResult:
    merged = {key: value for key, value in {**VALID, **changes}.items() if value is not WITHOUT}
    secrets = {key: value for key, value in merged.items() if key in SECRETS}
    arguments = {key: value for key, value in merged.items() if key not in SECRETS}
    return planner.plan(secrets=secrets, **arguments)


def flat(output: str) -> str:
    """Terraform's error text on one line, without its box drawing."""
    return " ".join(output.replace("│", " ").split())


# One bad variable each: `validation` blocks, which see only their own variable.
BAD_VALUES: dict[str, tuple[Any, ...]] = {
    "cpu and memory not a Fargate size": (
        {"runner_class_sizes": {"small": {"cpu": 512, "memory": 8192}}},
        "must be a valid Fargate size",
    ),
    "cpu not a Fargate size": (
        {"runner_class_sizes": {"small": {"cpu": 300, "memory": 1024}}},
        "must be a valid Fargate size",
    ),
    "memory off the 1 GB steps": (
        {"runner_class_sizes": {"medium": {"cpu": 2048, "memory": 5000}}},
        "must be a valid Fargate size",
    ),
    # runner_class_sizes' rules of issue 14: each message names the bad class and only it
    # (a valid neighbour, `fine`, sorts after it: listed too, the message would differ).
    "Fargate class not a Fargate size, beside a docker class of that size": (
        {
            "runner_class_sizes": {
                "big": {"cpu": 3072, "memory": 6144},
                "fine": {"cpu": 3072, "memory": 6144, "docker": True},
            }
        },
        "must be a valid Fargate size (docker classes aside)",
        "Not a Fargate size: big.",
    ),
    "docker class not an EC2 task size": (
        {
            "runner_class_sizes": {
                "dind": {"cpu": 64, "memory": 1024, "docker": True},
                "fine": {"cpu": 128, "memory": 128, "docker": True},
            }
        },
        "A docker class must be a valid EC2 task size",
        "Not an EC2 task size: dind.",
    ),
    "unknown architecture": (
        {
            "runner_class_sizes": {
                "arm": {"cpu": 512, "memory": 1024, "architecture": "aarch64"},
                "fine": {"cpu": 512, "memory": 1024, "architecture": "arm64"},
            }
        },
        "architecture must be x86_64 or arm64",
        "Not so: arm.",
    ),
    "ephemeral storage below 21 GiB": (
        {
            "runner_class_sizes": {
                "disk": {"cpu": 512, "memory": 1024, "ephemeral_storage_gib": 20},
                "fine": {"cpu": 512, "memory": 1024, "ephemeral_storage_gib": 21},
            }
        },
        "ephemeral_storage_gib must be null (Fargate's 20 GiB) or a whole number of GiB from 21 "
        "to 200",
        "Not so: disk.",
    ),
    "ephemeral storage on a docker class": (
        {
            "runner_class_sizes": {
                "dind": {"cpu": 1024, "memory": 2048, "docker": True, "ephemeral_storage_gib": 50},
                "fine": {"cpu": 1024, "memory": 2048, "ephemeral_storage_gib": 200},
            }
        },
        "ephemeral_storage_gib is for Fargate classes",
        "Docker classes with ephemeral_storage_gib: dind.",
    ),
    "unknown class capacity strategy": (
        {
            "runner_class_sizes": {
                "cheap": {"cpu": 512, "memory": 1024, "capacity_strategy": "SPOT"},
                "fine": {"cpu": 512, "memory": 1024, "capacity_strategy": "FARGATE_SPOT"},
            }
        },
        "A class's capacity_strategy must be null",
        "Not so: cheap.",
    ),
    "capacity strategy on a docker class": (
        {
            "runner_class_sizes": {
                "dind": {
                    "cpu": 1024,
                    "memory": 2048,
                    "docker": True,
                    "capacity_strategy": "FARGATE",
                },
                "fine": {"cpu": 1024, "memory": 2048, "capacity_strategy": "spotPreferred"},
            }
        },
        "capacity_strategy is for Fargate classes",
        "Docker classes with capacity_strategy: dind.",
    ),
    "docker instance types under an unknown architecture": (
        {"docker_instance_types": {"amd64": ["m7i.xlarge"]}},
        "docker_instance_types: keys x86_64 and/or arm64",
    ),
    "docker AMI not an AMI id": (
        {"docker_ami_id": {"arm64": "al2023"}},
        "docker_ami_id: keys x86_64 and/or arm64, values AMI IDs",
    ),
    "docker volume smaller than the AMI": (
        {"docker_volume_size_gib": 20},
        "docker_volume_size_gib must be a whole number from 30",
    ),
    "no docker instance at all": ({"docker_max_instances": 0}, "docker_max_instances must be"),
    "negative docker minimum": ({"docker_min_instances": -1}, "docker_min_instances must be"),
    "capacity wait of no time": (
        {"docker_capacity_wait_minutes": 0},
        "docker_capacity_wait_minutes must be a whole number from 1 to 1440",
    ),
    "class name unusable in labels": (
        {"runner_class_sizes": {"Big_One": {"cpu": 512, "memory": 1024}}},
        "class names (used in `class:<name>` labels",
    ),
    "no class": ({"runner_class_sizes": {}}, "needs at least one class"),
    "repository not owner/repo": ({"github_repo": "octo-repo"}, "github_repo must be `owner/repo`"),
    "organization login": ({"github_org": "octo org"}, "github_org must be an organization login"),
    "App key not PEM": (
        {"github_app_private_key": "/home/me/app.pem"},
        "github_app_private_key must be the App's PEM private key",
    ),
    "App ID not numeric": ({"github_app_id": "my-app"}, "github_app_id must be"),
    "installation ID not numeric": (
        {"github_app_installation_id": "x1"},
        "github_app_installation_id must be",
    ),
    "PAT with spaces": ({"github_pat": "not a token at all"}, "github_pat must be a GitHub token"),
    "GHES URL without scheme": (
        {"github_api_url": "github.example.com/api/v3"},
        "github_api_url must be an http(s) URL",
    ),
    "short webhook secret": ({"webhook_secret": "short"}, "at least 16 characters"),
    "previous webhook secret with a space": (
        {"webhook_secret_previous": "previous-secret-0123 "},
        "webhook_secret_previous must be null, or at least 16 characters",
    ),
    "grace period over 30 days": (
        {"webhook_secret_previous_grace_hours": 721},
        "webhook_secret_previous_grace_hours must be a whole number between 1 and 720",
    ),
    "malformed region": ({"aws_region": "Europe"}, "aws_region must be an AWS region name"),
    "name prefix with capitals": ({"name_prefix": "Runner_Fleet"}, "name_prefix must be 3-24"),
    "name prefix too long": ({"name_prefix": "a" * 25}, "name_prefix must be 3-24"),
    "no subnet": ({"subnet_ids": []}, "subnet_ids must be a non-empty list"),
    "not a security group": ({"security_groups": ["default"]}, "security_groups must be 1-5"),
    "unknown capacity strategy": ({"capacity_strategy": "SPOT"}, "capacity_strategy must be"),
    "event bus named default": ({"event_bus_name": "default"}, "and not `default`"),
    "image build project name": ({"image_build_project": "my project"}, "image_build_project must"),
    "log retention CloudWatch does not offer": (
        {"log_retention_days": 10},
        "log_retention_days must be a CloudWatch Logs retention value",
    ),
    "extra label reserved for classes": (
        {"runner_extra_labels": ["class:big"]},
        "none starting with class: or image:",
    ),
    "runner timeout too short": ({"runner_timeout_minutes": 1}, "runner_timeout_minutes must be"),
    "idle time too long": ({"runner_idle_minutes": 2000}, "runner_idle_minutes must be"),
    "relaunches not a whole number": ({"max_relaunches": 1.5}, "max_relaunches must be"),
    "no JIT configs a minute": (
        {"github_jit_configs_per_minute": 0},
        "github_jit_configs_per_minute must be a number above 0",
    ),
    "container insights value": ({"container_insights": "on"}, "container_insights must be one of"),
    "image tag": ({"runner_image_tag": "-bad"}, "runner_image_tag must be a Docker tag"),
    "base image": ({"default_base_image": "ubuntu 22.04"}, "default_base_image must be"),
    "KMS key not an ARN": ({"kms_key_arn": "alias/mine"}, "kms_key_arn must be a KMS key ARN"),
    "zero reserved concurrency": (
        {"lambda_reserved_concurrency": 0},
        "0 would stop the control plane",
    ),
    "Lambda timeout": ({"lambda_timeout": 1000}, "lambda_timeout must be a whole number"),
    "fractional Lambda memory": (
        {"lambda_memory_size": 256.5},
        "lambda_memory_size must be a whole number",
    ),
    "tag key reserved by AWS": ({"tags": {"aws:owner": "me"}}, "no key starting with aws:"),
    "the same subnet twice": (
        {"subnet_ids": ["subnet-0a1b2c3d", "subnet-0a1b2c3d"]},
        "at most 16 (ECS's limit), no duplicates",
    ),
    "log level": ({"log_level": "TRACE"}, "log_level must be"),
    "cleanup interval": ({"cleanup_interval_minutes": 90}, "cleanup_interval_minutes must be"),
    "prebuilt zip that is not there": (
        {"lambda_zip_path": "/nonexistent/lambda.zip"},
        "lambda_zip_path must be an existing .zip file",
    ),
    "no allowed base image": (
        {"allowed_base_images": []},
        "allowed_base_images must be a non-empty list of patterns",
    ),
    "fractional image max age": ({"image_max_age_days": 2.5}, "image_max_age_days must be"),
    "metrics namespace reserved by AWS": (
        {"metrics_namespace": "AWS/Runners"},
        "metrics_namespace must be 1-255 letters",
    ),
    "metrics namespace with a comma": (
        {"metrics_namespace": "CI,Runners"},
        "metrics_namespace must be 1-255 letters",
    ),
    "negative price": ({"fargate_prices": {"x86_64_vcpu_hour": -0.04}}, "every price must be >= 0"),
    "Spot discount of 100%": (
        {"fargate_prices": {"spot_discount": 1}},
        "spot_discount a fraction from 0 up to (not including) 1",
    ),
    "SNS topic not an ARN": (
        {"alarm_sns_topic_arn": "ops-alerts"},
        "alarm_sns_topic_arn must be null or a standard SNS topic ARN",
    ),
    "no queue wait": ({"alarm_queue_wait_seconds": 0}, "alarm_queue_wait_seconds must be"),
    "stranded after seconds": (
        {"alarm_stranded_job_seconds": 30},
        "alarm_stranded_job_seconds must be a whole number of seconds, at least 60",
    ),
}

# Rules across variables: preconditions (see main.tf), one plan each.
BAD_COMBINATIONS = {
    "default class not a class": ({"default_class": "huge"}, "default_class must be one of"),
    "neither repository nor organization": (
        {"github_repo": WITHOUT},
        "Set exactly one of github_repo",
    ),
    "both repository and organization": (
        {"github_org": "octo-org"},
        "Set exactly one of github_repo",
    ),
    "neither PAT nor App": ({"github_pat": WITHOUT}, "No GitHub credentials"),
    "PAT and App": (
        {
            "github_app_id": "1",
            "github_app_installation_id": "2",
            "github_app_private_key": APP_KEY,
        },
        "not both",
    ),
    "App without its key": (
        {"github_pat": WITHOUT, "github_app_id": "1", "github_app_installation_id": "2"},
        "needs all three",
    ),
    "App key without its ids": (
        {"github_pat": WITHOUT, "github_app_private_key": APP_KEY},
        "needs all three",
    ),
    "region other than the provider's": (
        {"aws_region": "eu-west-1"},
        "differs from the AWS provider's region",
    ),
    # issue 14: Docker classes (a Fargate neighbour each, which these rules leave alone)
    "packed docker tasks on single-use instances": (
        {
            "runner_class_sizes": {"dind": {"cpu": 2048, "memory": 7168, "docker": True}},
            "docker_distinct_instance": False,
        },
        "docker_distinct_instance = false packs Docker tasks onto shared instances",
    ),
    "docker class with public IPs": (
        {
            "assign_public_ip": True,
            "runner_class_sizes": {
                "dind": {"cpu": 2048, "memory": 7168, "docker": True},
                "small": {"cpu": 512, "memory": 1024},
            },
        },
        "Docker classes (dind) need assign_public_ip = false",
    ),
    "docker class larger than its smallest instance type": (
        {
            "runner_class_sizes": {
                # m5.xlarge, the smallest default x86_64 type: 4 vCPUs, 16 GiB (90%: 14745 MiB)
                "huge": {"cpu": 4096, "memory": 14746, "docker": True},
                "fits": {"cpu": 4096, "memory": 14745, "docker": True},
                "small": {"cpu": 512, "memory": 1024},
            },
        },
        "Docker class huge (cpu 4096, memory 14746 MiB) does not fit the smallest of "
        "docker_instance_types.x86_64 (m7i.xlarge, m6i.xlarge, m5.xlarge): at most 4096 cpu "
        "units and 14745 MiB",
    ),
    "docker class with more cpu than its instance types": (
        {
            "runner_class_sizes": {"dind": {"cpu": 3072, "memory": 4096, "docker": True}},
            "docker_instance_types": {"x86_64": ["m5.xlarge", "m5.large"]},
        },
        "Docker class dind (cpu 3072, memory 4096 MiB) does not fit the smallest of "
        "docker_instance_types.x86_64 (m5.xlarge, m5.large): at most 2048 cpu units",
    ),
    "instance type of another architecture": (
        {
            "runner_class_sizes": {"dind": {"cpu": 1024, "memory": 2048, "docker": True}},
            "docker_instance_types": {"x86_64": ["m7i.xlarge", "m7g.xlarge"]},
        },
        "docker_instance_types lists m7g.xlarge under an architecture it does not support "
        "(it supports arm64)",
    ),
    "docker class without instance types of its architecture": (
        {
            "runner_class_sizes": {
                "dind": {"cpu": 1024, "memory": 2048, "docker": True, "architecture": "arm64"}
            },
            "docker_instance_types": {"x86_64": ["m7i.xlarge"]},
        },
        "A docker class runs on arm64, but docker_instance_types has no arm64 instance types",
    ),
    "docker classes under a prefix ECS refuses": (
        {
            "name_prefix": "ecs-ci",
            "runner_class_sizes": {"dind": {"cpu": 1024, "memory": 2048, "docker": True}},
        },
        "ECS refuses capacity provider names starting with aws, ecs or fargate",
    ),
    "more docker instances at least than at most": (
        {
            "runner_class_sizes": {"dind": {"cpu": 1024, "memory": 2048, "docker": True}},
            "docker_min_instances": 3,
            "docker_max_instances": 2,
        },
        "docker_min_instances must not exceed docker_max_instances",
    ),
}


def batches(cases: dict[str, tuple[Any, ...]]) -> list[list[str]]:
    """Case names grouped so that no two in a group set the same variable."""
    groups: list[tuple[set[str], list[str]]] = []
    for name, (change, *_) in cases.items():
        for variables, names in groups:
            if not variables & change.keys():
                variables.update(change)
                names.append(name)
                break
        else:
            groups.append((set(change), [name]))
    return [names for _, names in groups]


@pytest.fixture(scope="module")
def bad_value_plans(planner: ModulePlanner) -> dict[str, PlanResult]:
    """Each variable's validation sees only that variable, so one plan checks many: every
    bad value of a batch must fail with its own message."""
    results = {}
    # Literal values are validated before planning, values from root variables (the secrets)
    # while planning: a plan stops at the first stage with errors, so they go in their own.
    secret_cases = {name: case for name, case in BAD_VALUES.items() if set(case[0]) & SECRETS}
    other_cases = {name: case for name, case in BAD_VALUES.items() if name not in secret_cases}
    for names in batches(secret_cases) + batches(other_cases):
        changes: dict[str, Any] = {}
        for name in names:
            changes.update(BAD_VALUES[name][0])
        result = plan(planner, **changes)
        results.update(dict.fromkeys(names, result))
    return results


@pytest.mark.parametrize("name", BAD_VALUES)
def test_bad_value_fails_the_plan_with_its_message(
    bad_value_plans: dict[str, PlanResult], name: str
) -> None:
    change, *messages = BAD_VALUES[name]
    result = bad_value_plans[name]
    assert result.returncode != 0, f"plan accepted {change}"
    (variable,) = change
    error = flat(result.output)
    for message in messages:  # the rule, and for class rules the classes that break it
        assert flat(message) in error, result.output
    assert f'"{variable}":' in error, result.output  # the error points at this argument


@pytest.mark.parametrize("name", BAD_COMBINATIONS)
def test_bad_combination_fails_the_plan_with_its_message(planner: ModulePlanner, name: str) -> None:
    change, message = BAD_COMBINATIONS[name]
    result = plan(planner, **change)
    assert result.returncode != 0, f"plan accepted {change}"
    assert flat(message) in flat(result.output), result.output
    # one clear error, not provider errors about the resources first
    assert flat(result.output).count("Error:") == 1, result.output


def test_secrets_never_appear_in_plan_errors(bad_value_plans: dict[str, PlanResult]) -> None:
    names = ["PAT with spaces", "short webhook secret", "App key not PEM"]
    for name in [*names, "previous webhook secret with a space"]:
        result = bad_value_plans[name]
        ((_, secret),) = BAD_VALUES[name][0].items()
        assert flat(BAD_VALUES[name][1]) in flat(result.output)
        assert secret not in result.output


@pytest.fixture(scope="module")
def default_plan(planner: ModulePlanner) -> PlanResult:
    result = plan(planner)
    assert result.returncode == 0, result.output
    return result


def planned_statement_ids(result: PlanResult, policy_document: str) -> set[str]:
    """Sids of a policy document data source (read at apply: its ARNs are not known yet)."""
    address = f"aws_iam_policy_document.{policy_document}"
    (change,) = [
        c
        for c in result.plan["resource_changes"]
        if c["mode"] == "data" and c["address"].endswith(address)
    ]
    return {statement["sid"] for statement in change["change"]["after"]["statement"]}


def test_pat_auth_stores_the_token_and_no_app_key(default_plan: PlanResult) -> None:
    parameters = {
        r["change"]["after"]["name"]: r["change"]["after"]
        for r in default_plan.resources("aws_ssm_parameter")
    }
    assert set(parameters) == {
        "/runner-fleet/config/class-sizes",
        "/runner-fleet/secrets/webhook-secret",
        "/runner-fleet/secrets/github-pat",
    }
    assert parameters["/runner-fleet/secrets/github-pat"]["type"] == "SecureString"


def test_a_previous_webhook_secret_is_a_secure_string(planner: ModulePlanner) -> None:
    # (the Lambda's environment is known only at apply: test_fleet_apply.py checks it)
    result = plan(planner, webhook_secret_previous="previous-secret-0123456789")
    assert result.returncode == 0, result.output
    parameters = {
        r["change"]["after"]["name"]: r["change"]["after"]
        for r in result.resources("aws_ssm_parameter")
    }
    assert parameters["/runner-fleet/secrets/webhook-secret-previous"]["type"] == "SecureString"


def test_without_image_builds_nothing_of_codebuild_is_planned(default_plan: PlanResult) -> None:
    types = {r["type"] for r in default_plan.resources()}
    assert not {"aws_codebuild_project", "aws_s3_object"} & types
    assert "aws_ecr_repository" in types
    buckets = [
        r["change"]["after"]["bucket_prefix"] for r in default_plan.resources("aws_s3_bucket")
    ]
    assert buckets == ["runner-fleet-jit-"]  # the JIT configs' only
    rules = {
        r["change"]["after"]["name"] for r in default_plan.resources("aws_cloudwatch_event_rule")
    }
    assert rules == {
        "runner-fleet-workflow-job",
        "runner-fleet-ecs-task-state",
        "runner-fleet-cleanup",
    }
    sids = planned_statement_ids(default_plan, "lambda")
    assert "RunRunnerTasks" in sids
    assert "ImageBuilds" not in sids
    assert "DecryptSecrets" not in sids  # no customer KMS key given


def test_default_class_is_the_smallest_class_unless_set(planner: ModulePlanner) -> None:
    sizes = {
        "big": {"cpu": 4096, "memory": 8192},
        "mini": {"cpu": 256, "memory": 1024},
        "micro": {"cpu": 256, "memory": 512},
    }
    result = plan(planner, runner_class_sizes=sizes)
    assert result.returncode == 0, result.output
    value = json.loads(result.resource("aws_ssm_parameter.class_sizes")["value"])
    defaults = {
        "architecture": "x86_64",
        "ephemeral_storage_gib": None,
        "docker": False,
        "capacity_strategy": None,
    }
    classes = {name: {**size, **defaults} for name, size in sizes.items()}
    assert value == {"default_class": "micro", "classes": classes}
    families = {r["change"]["after"]["family"] for r in result.resources("aws_ecs_task_definition")}
    assert families == {"runner-fleet-big", "runner-fleet-mini", "runner-fleet-micro"}


def test_a_prebuilt_zip_is_deployed_as_given_and_nothing_is_built(
    planner: ModulePlanner, tmp_path: Path
) -> None:
    prebuilt = tmp_path / "prebuilt.zip"
    prebuilt.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip
    result = plan(planner, lambda_zip_path=str(prebuilt))
    assert result.returncode == 0, result.output
    assert not result.resources("terraform_data")
    function = result.resource("aws_lambda_function.control_plane")
    assert function["filename"] == str(prebuilt)


def test_the_module_builds_the_zip_itself_when_none_is_given(default_plan: PlanResult) -> None:
    result = default_plan
    (build,) = result.resources("terraform_data")
    assert build["address"] == "module.fleet.terraform_data.lambda_package[0]"
    # The zip's name and the code hash derive from the sources: known at plan, no zip needed.
    planned = build["change"]["after"]
    assert planned["input"].endswith(".zip") and "/.build/lambda-" in planned["input"]
    function = result.resource("aws_lambda_function.control_plane")
    assert function["source_code_hash"]


def test_without_ecs_exec_or_job_policies_tasks_run_with_no_role(planner: ModulePlanner) -> None:
    result = plan(planner, enable_execute_command=False)
    assert result.returncode == 0, result.output
    roles = {r["change"]["after"]["name"] for r in result.resources("aws_iam_role")}
    # names carry the region: IAM role names are account-wide
    assert roles >= {
        "runner-fleet-task-execution-us-east-1",
        "runner-fleet-control-plane-us-east-1",
    }
    assert "runner-fleet-task-us-east-1" not in roles
    for definition in result.resources("aws_ecs_task_definition"):
        assert definition["change"]["after"]["task_role_arn"] is None
    groups = {r["change"]["after"]["name"] for r in result.resources("aws_cloudwatch_log_group")}
    assert "/aws/ecs/runner-fleet/exec" not in groups


def test_ecs_exec_sessions_log_to_their_own_group(default_plan: PlanResult) -> None:
    cluster = default_plan.resource("aws_ecs_cluster.this")
    (configuration,) = cluster["configuration"]
    (exec_config,) = configuration["execute_command_configuration"]
    assert exec_config["logging"] == "OVERRIDE"
    assert exec_config["log_configuration"][0]["cloud_watch_log_group_name"] == (
        "/aws/ecs/runner-fleet/exec"
    )


def test_image_build_hardening_reaches_the_control_plane(default_plan: PlanResult) -> None:
    assert default_plan.plan is not None
    fleet = default_plan.plan["configuration"]["root_module"]["module_calls"]["fleet"]["module"]
    passed = fleet["module_calls"]["control_plane"]["expressions"]
    for name in ("allowed_base_images", "image_max_age_days"):
        assert passed[name]["references"] == [f"var.{name}"]
    sids = planned_statement_ids(default_plan, "lambda")
    assert {
        "TagImageTaskDefinitions",
        "DeregisterImageTaskDefinitions",
        "ListImageTaskDefinitions",
    } <= sids


def monitoring(result: PlanResult) -> tuple[list[str], set[str]]:
    """Names of the planned dashboards and alarms."""
    assert result.returncode == 0, result.output
    dashboards = [
        r["change"]["after"]["dashboard_name"] for r in result.resources("aws_cloudwatch_dashboard")
    ]
    alarms = {
        r["change"]["after"]["alarm_name"] for r in result.resources("aws_cloudwatch_metric_alarm")
    }
    return dashboards, alarms


def test_the_dashboard_and_four_alarms_are_planned_and_each_flag_turns_its_part_off(
    planner: ModulePlanner, default_plan: PlanResult
) -> None:
    alarms = {
        "runner-fleet-dlq-not-empty",
        "runner-fleet-lambda-errors",
        "runner-fleet-queue-wait-p90",
        "runner-fleet-jobs-stranded",
    }
    assert monitoring(default_plan) == (["runner-fleet"], alarms)
    assert monitoring(plan(planner, dashboard_enabled=False)) == ([], alarms)
    assert monitoring(plan(planner, alarms_enabled=False)) == (["runner-fleet"], set())


# ----------------------------------------------------------------------------- issue 14 classes

CLASSES_14 = {
    "small": {"cpu": 512, "memory": 1024},
    "arm": {
        "cpu": 1024,
        "memory": 2048,
        "architecture": "arm64",
        "ephemeral_storage_gib": 100,
        "capacity_strategy": "FARGATE_SPOT",
    },
    "dind": {"cpu": 2048, "memory": 7168, "docker": True},
    # an EC2 task size that is no Fargate size
    "dind-arm": {"cpu": 3000, "memory": 6000, "docker": True, "architecture": "arm64"},
}
GIVEN_ARM64_AMI = "ami-0123456789abcdef0"


@pytest.fixture(scope="module")
def docker_plan(planner: ModulePlanner) -> PlanResult:
    result = plan(
        planner,
        runner_class_sizes=CLASSES_14,
        docker_spot=True,
        docker_min_instances=1,
        docker_volume_size_gib=150,
        docker_ami_id={"arm64": GIVEN_ARM64_AMI},
        docker_distinct_instance=False,
        docker_instance_reuse=True,  # packing needs it
    )
    assert result.returncode == 0, result.output
    return result


def by_name(result: PlanResult, type_: str, key: str = "name") -> dict[str, dict[str, Any]]:
    return {r["change"]["after"][key]: r["change"]["after"] for r in result.resources(type_)}


def test_class_task_definitions_say_architecture_disk_and_ec2(docker_plan: PlanResult) -> None:
    definitions = by_name(docker_plan, "aws_ecs_task_definition", key="family")
    summary = {
        family.removeprefix("runner-fleet-"): (
            d["requires_compatibilities"],
            d["runtime_platform"][0]["cpu_architecture"],
            d["ephemeral_storage"],
            [(v["name"], v["docker_volume_configuration"][0]["scope"]) for v in d["volume"]],
            (d["cpu"], d["memory"]),
        )
        for family, d in definitions.items()
    }
    assert summary == {
        "small": (["FARGATE"], "X86_64", [], [], ("512", "1024")),
        "arm": (["FARGATE"], "ARM64", [{"size_in_gib": 100}], [], ("1024", "2048")),
        "dind": (["EC2"], "X86_64", [], [("docker", "task")], ("2048", "7168")),
        "dind-arm": (["EC2"], "ARM64", [], [("docker", "task")], ("3000", "6000")),
    }


def test_class_sizes_document_has_the_contract_fields(docker_plan: PlanResult) -> None:
    value = json.loads(docker_plan.resource("aws_ssm_parameter.class_sizes")["value"])
    fargate = {"docker": False, "ephemeral_storage_gib": None, "capacity_strategy": None}
    docker = {
        "docker": True,
        "ephemeral_storage_gib": None,
        "capacity_strategy": None,
        "distinct_instance": False,
    }
    assert value == {
        "default_class": "small",
        "classes": {
            "small": {"cpu": 512, "memory": 1024, "architecture": "x86_64", **fargate},
            "arm": {**CLASSES_14["arm"], "docker": False},
            "dind": {
                **CLASSES_14["dind"],
                **docker,
                "architecture": "x86_64",
                "capacity_provider": "runner-fleet-docker-x86_64",
            },
            "dind-arm": {
                **CLASSES_14["dind-arm"],
                **docker,
                "capacity_provider": "runner-fleet-docker-arm64",
            },
        },
    }


def test_each_docker_architecture_gets_a_launch_template_group_and_capacity_provider(
    docker_plan: PlanResult, emulator: Emulator
) -> None:
    names = {"x86_64": "runner-fleet-docker-x86_64", "arm64": "runner-fleet-docker-arm64"}
    templates = by_name(docker_plan, "aws_launch_template")
    groups = by_name(docker_plan, "aws_autoscaling_group")
    providers = by_name(docker_plan, "aws_ecs_capacity_provider")
    assert set(templates) == set(groups) == set(providers) == set(names.values())

    # x86_64 from the public SSM parameter (as the emulator holds it), arm64 as given
    recommended = emulator.client("ssm").get_parameter(
        Name="/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
    )["Parameter"]["Value"]
    assert templates[names["x86_64"]]["image_id"] == recommended
    assert templates[names["arm64"]]["image_id"] == GIVEN_ARM64_AMI

    for arch, name in names.items():
        template = templates[name]
        assert template["metadata_options"][0]["http_tokens"] == "required"
        assert template["metadata_options"][0]["http_put_response_hop_limit"] == 1
        (ebs,) = template["block_device_mappings"][0]["ebs"]
        assert (ebs["volume_size"], ebs["volume_type"], ebs["encrypted"]) == (150, "gp3", "true")
        config = base64.b64decode(template["user_data"]).decode().splitlines()
        assert {
            "ECS_CLUSTER=runner-fleet",
            "ECS_AWSVPC_BLOCK_IMDS=true",
            "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=1m",
        } <= set(config)

        group = groups[name]
        assert (group["min_size"], group["max_size"], group["protect_from_scale_in"]) == (
            1,
            10,
            True,
        )
        assert group["vpc_zone_identifier"] == VALID["subnet_ids"]
        (policy,) = group["mixed_instances_policy"]
        (distribution,) = policy["instances_distribution"]
        assert distribution["on_demand_percentage_above_base_capacity"] == 0  # docker_spot
        assert distribution["spot_allocation_strategy"] == "price-capacity-optimized"
        types = [o["instance_type"] for o in policy["launch_template"][0]["override"]]
        expected = {"x86_64": ["m7i.xlarge", "m6i.xlarge", "m5.xlarge"]}
        assert types == expected.get(arch, ["m7g.xlarge", "m6g.xlarge"])
        assert {"key": "AmazonECSManaged", "value": "true", "propagate_at_launch": True} in group[
            "tag"
        ]

        (provider,) = providers[name]["auto_scaling_group_provider"]
        assert provider["managed_termination_protection"] == "ENABLED"
        assert provider["managed_draining"] == "ENABLED"
        (scaling,) = provider["managed_scaling"]
        assert (scaling["status"], scaling["target_capacity"]) == ("ENABLED", 100)

    cluster = docker_plan.resource("aws_ecs_cluster_capacity_providers.this")
    assert sorted(cluster["capacity_providers"]) == sorted(
        ["FARGATE", "FARGATE_SPOT", *names.values()]
    )


def test_the_docker_instance_role_holds_only_the_ecs_agents_actions_on_the_cluster(
    docker_plan: PlanResult,
) -> None:
    (profile,) = docker_plan.resources("aws_iam_instance_profile")
    assert profile["change"]["after"]["name"] == "runner-fleet-docker-instance-us-east-1"
    policy = json.loads(docker_plan.resource("aws_iam_role_policy.docker_instance[0]")["policy"])
    cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/runner-fleet"
    grants = {
        action: statement["Resource"]
        for statement in policy["Statement"]
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    }
    instances = "arn:aws:ecs:us-east-1:123456789012:container-instance/runner-fleet/*"
    assert grants == {
        "ecs:DeregisterContainerInstance": cluster,
        "ecs:RegisterContainerInstance": cluster,
        "ecs:SubmitAttachmentStateChanges": cluster,
        "ecs:SubmitContainerStateChange": cluster,
        "ecs:SubmitTaskStateChange": cluster,
        "ecs:Poll": instances,
        "ecs:StartTelemetrySession": instances,
        "ecs:DiscoverPollEndpoint": "*",
    }


def test_docker_classes_add_the_capacity_wait_alarm(docker_plan: PlanResult) -> None:
    alarms = by_name(docker_plan, "aws_cloudwatch_metric_alarm", key="alarm_name")
    alarm = alarms["runner-fleet-capacity-wait"]
    assert (alarm["namespace"], alarm["metric_name"], alarm["dimensions"]) == (
        "AWSRunnerFleet",
        "TasksWaitingForCapacity",
        {"Fleet": "runner-fleet"},
    )
    assert (alarm["statistic"], alarm["threshold"], alarm["comparison_operator"]) == (
        "Maximum",
        0,
        "GreaterThanThreshold",
    )


def test_without_docker_classes_no_ec2_capacity_is_planned(default_plan: PlanResult) -> None:
    types = {r["type"] for r in default_plan.resources()}
    assert (
        not {
            "aws_launch_template",
            "aws_autoscaling_group",
            "aws_ecs_capacity_provider",
            "aws_iam_instance_profile",
        }
        & types
    )
    cluster = default_plan.resource("aws_ecs_cluster_capacity_providers.this")
    assert cluster["capacity_providers"] == ["FARGATE", "FARGATE_SPOT"]
