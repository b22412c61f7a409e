"""Pure rules: label selection, class sizes (also used by the CLI), settings, runner names."""

from __future__ import annotations

import json

import pytest
from control_plane.classes import (
    FARGATE_MEMORY,
    ClassSize,
    ClassSizesError,
    ec2_size_problem,
    fargate_size_problem,
    parse_class_sizes,
)
from control_plane.labels import select
from control_plane.launcher import Placement, RunnerTask, placement, run_task_request
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


# The contract's document (docs/CONTRACTS.md): every key, as the control-plane module writes it
EVERY_KIND = {
    "default_class": "small",
    "classes": {
        "small": {"cpu": 512, "memory": 1024, "architecture": "x86_64",
                  "ephemeral_storage_gib": None, "docker": False, "capacity_strategy": None},
        "arm": {"cpu": 1024, "memory": 2048, "architecture": "arm64",
                "ephemeral_storage_gib": 100, "docker": False, "capacity_strategy": "FARGATE_SPOT"},
        "docker": {"cpu": 3000, "memory": 7000, "architecture": "x86_64",
                   "ephemeral_storage_gib": None, "docker": True, "capacity_strategy": None,
                   "capacity_provider": "runner-fleet-docker-x86_64", "distinct_instance": True},
        "packed": {"cpu": 128, "memory": 128, "architecture": "arm64", "docker": True,
                   "capacity_provider": "runner-fleet-docker-arm64", "distinct_instance": False},
    },
}  # fmt: skip


def test_class_sizes_of_every_kind() -> None:
    classes = parse_class_sizes(json.dumps(EVERY_KIND)).classes
    assert classes["small"] == ClassSize(512, 1024)
    assert classes["arm"] == ClassSize(1024, 2048, "arm64", 100, capacity_strategy="FARGATE_SPOT")
    assert classes["docker"] == ClassSize(
        3000, 7000, docker=True, capacity_provider="runner-fleet-docker-x86_64"
    )
    assert classes["packed"] == ClassSize(
        128, 128, "arm64", docker=True, capacity_provider="runner-fleet-docker-arm64",
        distinct_instance=False,
    )  # fmt: skip


def test_where_each_kind_of_class_runs() -> None:
    classes = parse_class_sizes(json.dumps(EVERY_KIND)).classes
    spot_preferred = Settings.from_env({**BASE, "CAPACITY_STRATEGY": "spotPreferred"})
    assert placement(classes["small"], spot_preferred) == Placement(("FARGATE_SPOT", "FARGATE"))
    assert placement(classes["arm"], spot_preferred) == Placement(("FARGATE_SPOT",))
    assert placement(classes["docker"], spot_preferred) == Placement(
        ("runner-fleet-docker-x86_64",), docker=True, distinct_instance=True
    )
    assert placement(classes["packed"], spot_preferred).distinct_instance is False


def refused(classes: dict) -> str:
    """The error parsing `classes` (given as the module's documents) raises."""
    with pytest.raises(ClassSizesError) as raised:
        parse_class_sizes(json.dumps({"default_class": "ok", "classes": classes}))
    return str(raised.value)


DOCKER_CLASS = {"cpu": 2048, "memory": 4096, "docker": True, "capacity_provider": "p-docker"}


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ({**DOCKER_CLASS, "cpu": 64}, "cpu 64 is not an EC2 task size (128-196608 units)"),
        ({**DOCKER_CLASS, "cpu": 200000}, "cpu 200000 is not an EC2 task size"),
        ({**DOCKER_CLASS, "memory": 64}, "memory 64 MiB is below the EC2 task minimum of 128"),
        ({**DOCKER_CLASS, "ephemeral_storage_gib": 50}, "ephemeral_storage_gib is for Fargate"),
        ({**DOCKER_CLASS, "capacity_strategy": "FARGATE"}, "capacity_strategy is for Fargate"),
        ({**DOCKER_CLASS, "capacity_provider": None}, "needs its capacity_provider"),
        ({**DOCKER_CLASS, "capacity_provider": ""}, "capacity_provider must be a name"),
        ({**DOCKER_CLASS, "docker": "yes"}, "docker must be true or false"),
        ({**DOCKER_CLASS, "distinct_instance": 1}, "distinct_instance must be true or false"),
        ({"cpu": 3000, "memory": 7000}, "cpu 3000 is not a Fargate size"),  # an EC2 size
        ({"cpu": 512, "memory": 1024, "capacity_strategy": "SPOT"}, "capacity_strategy must be"),
        ({"cpu": 512, "memory": 1024, "capacity_provider": "p"}, "are for Docker classes"),
        ({"cpu": 512, "memory": 1024, "distinct_instance": True}, "are for Docker classes"),
        ({"cpu": 512, "memory": 1024, "ephemeral_storage_gib": 20}, "must be 21-200"),
        ({"cpu": 512, "memory": 1024, "architecture": "arm"}, "architecture must be one of"),
    ],
)
def test_refused_classes_are_named(size: dict, message: str) -> None:
    error = refused({"ok": {"cpu": 512, "memory": 1024}, "bad-class": size})
    assert error.startswith("class 'bad-class'")
    assert message in error


def test_ec2_task_sizes() -> None:
    assert ec2_size_problem(128, 128) is None
    assert ec2_size_problem(196608, 1_000_000) is None
    assert ec2_size_problem(127, 512) is not None
    assert ec2_size_problem(1024, 127) is not None


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


def test_a_docker_task_gets_no_public_ip_and_its_own_client_token() -> None:
    def task(where: Placement) -> RunnerTask:
        return RunnerTask("f-7", "f-docker", "arn", 7, 1, 2, "o/r", "docker", where)

    public = Settings.from_env({**BASE, "ASSIGN_PUBLIC_IP": "true"})
    docker = run_task_request(public, task(Placement(("f-docker-x86_64",), True, True)), "f-d")
    fargate = run_task_request(public, task(Placement(("FARGATE_SPOT",))), "FARGATE_SPOT")
    assert docker["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
    assert fargate["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "ENABLED"
    assert (docker["clientToken"], fargate["clientToken"]) == ("7-2-docker", "7-2-spot")
    assert docker["placementConstraints"] == [{"type": "distinctInstance"}]
    assert "placementConstraints" not in fargate and "group" not in fargate


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
        placement=Placement(("FARGATE",)),
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
