"""Pure rules: label selection, class sizes (also used by the CLI), settings, runner names."""

from __future__ import annotations

import json

import pytest
from control_plane.classes import (
    FARGATE_MEMORY,
    ClassSizesError,
    fargate_size_problem,
    parse_class_sizes,
)
from control_plane.labels import select
from control_plane.launcher import RunnerTask, run_task_request
from control_plane.settings import Settings, SettingsError
from control_plane.workflow_job import job_id_of_runner, runner_name

EXTRA = ("linux", "gpu-a10")

# ---------------------------------------------------------------- labels


@pytest.mark.parametrize(
    ("labels", "class_name", "image"),
    [
        (["self-hosted"], None, None),
        (["self-hosted", "class:medium"], "medium", None),
        (["SELF-HOSTED", "Class:Medium"], "Medium", None),
        (["self-hosted", "image:ubuntu:22.04"], None, "ubuntu:22.04"),
        (
            ["self-hosted", "class:large", "image:debian:12", "linux", "GPU-A10"],
            "large",
            "debian:12",
        ),
        (["class:small"], "small", None),  # every label served, even without self-hosted
        (["self-hosted", "class:small", "CLASS:SMALL"], "small", None),  # the same label twice
        ([" self-hosted ", "class: small "], "small", None),
    ],
)
def test_served_labels(labels: list[str], class_name: str | None, image: str | None) -> None:
    selection = select(labels, EXTRA)
    assert selection.ours and selection.problem is None
    assert (selection.class_name, selection.image) == (class_name, image)


@pytest.mark.parametrize(
    ("labels", "foreign"),
    [
        (["ubuntu-latest"], ("ubuntu-latest",)),
        (["self-hosted", "windows"], ("windows",)),
        (["self-hosted", "class:small", "macOS", "arm64"], ("macOS", "arm64")),
        (["self-hosted", "linux-x64"], ("linux-x64",)),  # not a prefix match
    ],
)
def test_a_label_the_fleet_does_not_serve_makes_the_job_not_ours(
    labels: list[str], foreign: tuple[str, ...]
) -> None:
    selection = select(labels, EXTRA)
    assert not selection.ours
    assert selection.foreign == foreign


def test_no_labels_is_not_ours() -> None:
    assert not select([], EXTRA).ours
    assert not select(["", "  "], EXTRA).ours


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        (["self-hosted", "class:small", "class:large"], "more than one class label (small, large)"),
        (["self-hosted", "image:a", "image:b"], "more than one image label (a, b)"),
        (["self-hosted", "class:"], "a class: or image: label without a value"),
        (["self-hosted", "image:"], "a class: or image: label without a value"),
    ],
)
def test_ours_but_unservable(labels: list[str], problem: str) -> None:
    selection = select(labels, EXTRA)
    assert selection.ours
    assert selection.problem == problem


def test_extra_labels_are_served_only_when_configured() -> None:
    assert not select(["self-hosted", "linux"]).ours
    assert select(["self-hosted", "linux"], ["Linux"]).ours


# ---------------------------------------------------------------- classes

DOCUMENT = {
    "default_class": "small",
    "classes": {"small": {"cpu": 512, "memory": 1024}, "Large": {"cpu": 4096, "memory": 30720}},
}


def test_class_sizes_parse() -> None:
    sizes = parse_class_sizes(json.dumps(DOCUMENT))
    assert sizes.default_class == "small"
    assert sizes.classes["Large"].cpu == 4096
    assert sizes.resolve(None) == "small"
    assert sizes.resolve("LARGE") == "Large"
    assert sizes.resolve("medium") is None


def test_a_single_class_is_the_default() -> None:
    sizes = parse_class_sizes('{"classes": {"only": {"cpu": 256, "memory": 512}}}')
    assert sizes.default_class == "only"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "not JSON"),
        ("[]", '"classes" object'),
        ('{"classes": {}}', "no class"),
        (
            '{"default_class": "x", "classes": {"a": {"cpu": 256, "memory": 512}, '
            '"b": {"cpu": 256, "memory": 512}}}',
            "default_class 'x'",
        ),
        ('{"classes": {"a b": {"cpu": 256, "memory": 512}}}', "class name 'a b'"),
        (
            '{"classes": {"a": {"cpu": 256, "memory": 512}, "A": {"cpu": 256, "memory": 512}}, '
            '"default_class": "a"}',
            "differ only in case",
        ),
        ('{"classes": {"a": {"cpu": "256", "memory": 512}}}', "must be an integer"),
        ('{"classes": {"a": {"cpu": 256, "memory": true}}}', "must be an integer"),
        ('{"classes": {"a": {"cpu": 300, "memory": 512}}}', "cpu 300 is not a Fargate size"),
        ('{"classes": {"a": {"cpu": 256, "memory": 4096}}}', "does not fit cpu 256"),
        ('{"classes": {"a": []}}', "must be an object"),
    ],
)
def test_invalid_class_sizes(document: str, message: str) -> None:
    with pytest.raises(ClassSizesError, match=message):
        parse_class_sizes(document)


@pytest.mark.parametrize(
    ("cpu", "memory", "valid"),
    [
        (256, 512, True),
        (256, 2048, True),
        (256, 3072, False),
        (512, 1024, True),
        (512, 4096, True),
        (512, 5120, False),
        (1024, 2048, True),
        (1024, 8192, True),
        (1024, 1024, False),
        (2048, 16384, True),
        (2048, 4608, False),  # not a 1 GB step
        (4096, 30720, True),
        (4096, 31744, False),
        (8192, 16384, True),
        (8192, 20480, True),
        (8192, 17408, False),  # 4 GB steps
        (8192, 61440, True),
        (16384, 32768, True),
        (16384, 40960, True),
        (16384, 36864, False),  # 8 GB steps
        (16384, 122880, True),
        (16384, 131072, False),
    ],
)
def test_fargate_sizes(cpu: int, memory: int, valid: bool) -> None:
    assert (fargate_size_problem(cpu, memory) is None) == valid


def test_every_fargate_cpu_has_a_memory_range() -> None:
    assert sorted(FARGATE_MEMORY) == [256, 512, 1024, 2048, 4096, 8192, 16384]


# ---------------------------------------------------------------- runner names


def test_runner_names_round_trip() -> None:
    assert runner_name("runner-fleet", 42, 1) == "runner-fleet-42"
    assert runner_name("runner-fleet", 42, 3) == "runner-fleet-42-3"
    assert job_id_of_runner("runner-fleet", "runner-fleet-42") == 42
    assert job_id_of_runner("runner-fleet", "runner-fleet-42-3") == 42
    assert job_id_of_runner("runner-fleet", "runner-fleet-x") is None
    assert job_id_of_runner("runner-fleet", "other-fleet-42") is None
    assert job_id_of_runner("runner-fleet", "runner-fleet-42-3-4") is None
    assert job_id_of_runner("runner-fleet", None) is None
    assert job_id_of_runner("a.b", "aXb-1") is None  # the prefix is matched literally


# ---------------------------------------------------------------- settings

BASE = {
    "NAME_PREFIX": "runner-fleet",
    "JIT_BUCKET": "runner-fleet-jit",
    "GITHUB_OWNER": "octo-org",
    "GITHUB_REPO": "octo-repo",
    "SUBNET_IDS": "subnet-1, subnet-2",
    "SECURITY_GROUP_IDS": "sg-1",
}


def test_settings_defaults_follow_the_contract_names() -> None:
    s = Settings.from_env(BASE)
    assert s.state_table == "runner-fleet-state"
    assert s.class_sizes_param == "/runner-fleet/config/class-sizes"
    assert s.webhook_secret_param == "/runner-fleet/secrets/webhook-secret"
    assert s.jit_bucket == "runner-fleet-jit"
    assert s.enable_execute_command is True
    assert s.partition == "aws"
    assert s.subnet_ids == ("subnet-1", "subnet-2")
    assert (s.github_auth, s.github_scope, s.capacity_strategy) == ("pat", "repo", "FARGATE")
    assert s.github_api_url == "https://api.github.com"
    assert s.scope_name == "octo-org/octo-repo"
    assert s.assign_public_ip is False


def test_settings_accept_owner_slash_repo_and_ghes_urls() -> None:
    s = Settings.from_env(
        {**BASE, "GITHUB_REPO": "octo-org/octo-repo", "GITHUB_API_URL": "https://ghe.io/api/v3/"}
    )
    assert s.github_repo == "octo-repo"
    assert s.github_api_url == "https://ghe.io/api/v3"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"NAME_PREFIX": ""}, "NAME_PREFIX"),
        ({"GITHUB_AUTH": "oauth"}, "GITHUB_AUTH"),
        ({"GITHUB_SCOPE": "enterprise"}, "GITHUB_SCOPE"),
        ({"CAPACITY_STRATEGY": "SPOT"}, "CAPACITY_STRATEGY"),
        ({"RUNNER_GROUP_ID": "default"}, "RUNNER_GROUP_ID"),
        ({"GITHUB_REPO": ""}, "GITHUB_REPO"),
        ({"GITHUB_AUTH": "app"}, "GITHUB_APP_ID"),
        ({"SUBNET_IDS": ""}, "SUBNET_IDS"),
    ],
)
def test_settings_errors_name_the_variable(change: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({**BASE, **change})


def test_org_scope_needs_no_repository() -> None:
    s = Settings.from_env({**BASE, "GITHUB_SCOPE": "org", "GITHUB_REPO": ""})
    assert s.scope_name == "octo-org"


def test_runner_tasks_follow_the_ecs_exec_switch_and_get_their_config_as_a_file() -> None:
    task = RunnerTask(
        runner_name="runner-fleet-7",
        family="runner-fleet-small",
        jit_config_arn="arn:aws-cn:s3:::bkt/jit/runner-fleet-7/ab.env",
        job_id=7,
        run_id=1,
        run_attempt=1,
        repository="octo-org/octo-repo",
        class_name="small",
    )
    on = run_task_request(Settings.from_env(BASE), task, "FARGATE")
    off = Settings.from_env({**BASE, "ENABLE_EXECUTE_COMMAND": "false"})
    assert on["enableExecuteCommand"] is True
    assert run_task_request(off, task, "FARGATE")["enableExecuteCommand"] is False
    (override,) = on["overrides"]["containerOverrides"]
    assert override == {
        "name": "runner",
        "environmentFiles": [{"value": task.jit_config_arn, "type": "s3"}],
    }
    china = Settings.from_env({**BASE, "AWS_REGION": "cn-north-1"})
    assert (
        china.partition,
        Settings.from_env({**BASE, "AWS_REGION": "us-gov-west-1"}).partition,
    ) == (
        "aws-cn",
        "aws-us-gov",
    )
