"""Runner image variants and architectures (issue 14): the tag of a class's image names its
variant (`runner`, or `docker` for a Docker class) and architecture, one build runs per
(base, variant, architecture), and an arm64 image is built on the arm64 CodeBuild environment
(IMAGE_BUILD_ENVIRONMENTS). Driven through the real handler against moto and the GitHub
stand-in, as tests/control_plane/test_image_builds.py."""

from __future__ import annotations

import json
import re

import pytest
from control_plane.images import builds
from control_plane.images.builds import resolve
from control_plane.images.refs import TAG_LENGTH, image_tag, tag_variant, variant_suffix
from control_plane.retry import Deadline
from control_plane.services import Services
from control_plane.settings import Settings, SettingsError

from tests.control_plane.harness import Fleet, job_payload
from tests.control_plane.image_harness import (
    ARM64_ENVIRONMENT,
    BUILD_ENVIRONMENTS,
    FINGERPRINT,
    ImageFleet,
    codebuild_proxy_fixture,  # noqa: F401 (a fixture)
    image_fleet_fixture,  # noqa: F401 (a fixture)
    image_settings,
    tag_of,
)

UBUNTU = "docker.io/library/ubuntu:22.04"
VARIANTS = [(False, "x86_64", ""), (False, "arm64", "-arm64"), (True, "x86_64", "-docker")]
VARIANTS.append((True, "arm64", "-docker-arm64"))
ARM_OVERRIDES = {
    "environmentTypeOverride": "ARM_CONTAINER",
    "imageOverride": ARM64_ENVIRONMENT["image"],
    "computeTypeOverride": "BUILD_GENERAL1_LARGE",
}
# A class-sizes entry of an arm64 Docker class (docs/CONTRACTS.md "Runner classes").
DOCKER_ARM = {
    "cpu": 2048,
    "memory": 8192,
    "architecture": "arm64",
    "docker": True,
    "capacity_provider": "fleet-docker-arm64",
    "distinct_instance": True,
}


def queue(fleet: Fleet, *labels: str) -> tuple[int, dict]:
    payload = job_payload(labels=["self-hosted", *labels])
    return payload["workflow_job"]["id"], fleet.deliver(payload)


def variables(request: dict) -> dict[str, str]:
    return {v["name"]: v["value"] for v in request["environmentVariablesOverride"]}


# ----------------------------------------------------------------------------- tags


@pytest.mark.parametrize(("docker", "architecture", "suffix"), VARIANTS)
def test_each_variant_has_its_suffix_and_a_hash_of_its_own(docker, architecture, suffix) -> None:
    assert variant_suffix(docker, architecture) == suffix
    tag = image_tag(UBUNTU, FINGERPRINT, docker=docker, architecture=architecture)
    assert re.fullmatch(r"[0-9a-f]{32}" + re.escape(suffix), tag)
    assert tag_variant(tag) == (docker, architecture)
    others = {
        image_tag(UBUNTU, FINGERPRINT, docker=d, architecture=a)[:TAG_LENGTH]
        for d, a, _ in VARIANTS
        if (d, a) != (docker, architecture)
    }
    assert tag[:TAG_LENGTH] not in others  # the hash covers variant and architecture too


def test_unknown_architectures_and_suffixes_are_refused() -> None:
    with pytest.raises(ValueError, match="architecture must be one of x86_64, arm64"):
        variant_suffix(False, "aarch64")
    with pytest.raises(ValueError, match="no known variant suffix"):
        tag_variant("0" * 32 + "-riscv")
    assert tag_variant("0" * 32) == (False, "x86_64")


# ----------------------------------------------------------------------------- settings


def test_build_environments_are_parsed_and_validated() -> None:
    assert image_settings().image_build_environments == {}
    parsed = image_settings(IMAGE_BUILD_ENVIRONMENTS=json.dumps(BUILD_ENVIRONMENTS))
    assert parsed.image_build_environments["arm64"].overrides() == ARM_OVERRIDES
    bad = {
        "[]": "must be a JSON object",
        "{": "is not JSON",
        '{"riscv64": {}}': "unknown architecture(s) riscv64",
        '{"arm64": {"type": "ARM_CONTAINER"}}': "exactly type, image, compute_type",
        json.dumps({"arm64": {**ARM64_ENVIRONMENT, "type": "ARM_LAMBDA_CONTAINER"}}): ".type",
        json.dumps({"arm64": {**ARM64_ENVIRONMENT, "compute_type": "large"}}): "BUILD_GENERAL1_",
        json.dumps({"arm64": {**ARM64_ENVIRONMENT, "image": " "}}): "non-empty strings",
    }
    for text, message in bad.items():
        with pytest.raises(SettingsError, match=re.escape(message)):
            image_settings(IMAGE_BUILD_ENVIRONMENTS=text)


def test_an_architecture_without_a_build_environment_rejects_the_job() -> None:
    without = image_settings()
    rejected = resolve("ubuntu:22.04", without, architecture="arm64")
    assert rejected.image_tag is None
    assert "no CodeBuild environment builds arm64 runner images" in rejected.rejection
    assert resolve("ubuntu:22.04", without, docker=True).image_tag.endswith("-docker")
    on = image_settings(IMAGE_BUILD_ENVIRONMENTS=json.dumps(BUILD_ENVIRONMENTS))
    arm = resolve("ubuntu:22.04", on, docker=True, architecture="arm64")
    assert arm.rejection is None and arm.image_tag == tag_of(
        "ubuntu:22.04", docker=True, architecture="arm64"
    )


def test_start_build_runs_each_tag_as_its_variant_on_its_architecture() -> None:
    on = image_settings(IMAGE_BUILD_ENVIRONMENTS=json.dumps(BUILD_ENVIRONMENTS))
    for docker, architecture, _ in VARIANTS:
        tag = tag_of("ubuntu", docker=docker, architecture=architecture)
        arguments = builds.start_build_arguments(on, UBUNTU, tag)
        assert variables(arguments)["RUNNER_VARIANT"] == ("docker" if docker else "runner")
        overrides = {k: v for k, v in arguments.items() if k in ARM_OVERRIDES}
        assert overrides == (ARM_OVERRIDES if architecture == "arm64" else {})


# ----------------------------------------------------------------------------- the flow


def test_an_arm64_class_builds_on_arm_and_runs_on_an_arm64_revision(
    image_fleet: ImageFleet,
) -> None:
    fleet = image_fleet.fleet
    image_fleet.add_class(
        "arm",
        {"cpu": 1024, "memory": 2048, "architecture": "arm64", "ephemeral_storage_gib": 100},
        runtimePlatform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        ephemeralStorage={"sizeInGiB": 100},
    )
    tag = tag_of("ubuntu:22.04", architecture="arm64")
    job_id, result = queue(fleet, "image:ubuntu:22.04", "class:arm")

    assert result["result"] == "image-building"
    (request,) = image_fleet.start_builds()
    assert {k: request.get(k) for k in ARM_OVERRIDES} == ARM_OVERRIDES
    sent = variables(request)
    assert (sent["IMAGE_TAG"], sent["RUNNER_VARIANT"]) == (tag, "runner")
    assert tag.endswith("-arm64") and fleet.record(job_id)["image_tag"] == tag
    # BatchGetBuilds (and so the build's event) says what the build ran on
    (build,) = fleet.client("codebuild").batch_get_builds(ids=image_fleet.build_ids())["builds"]
    environment = build["environment"]
    assert (environment["type"], environment["image"], environment["computeType"]) == (
        "ARM_CONTAINER",
        ARM64_ENVIRONMENT["image"],
        "BUILD_GENERAL1_LARGE",
    )
    assert image_fleet.build_event("IN_PROGRESS")["detail"]["additional-information"][
        "environment"
    ]["type"] == ("ARM_CONTAINER")

    image_fleet.push_image(tag)
    done = fleet.invoke(image_fleet.build_event("SUCCEEDED"))

    assert done["launched"] == [job_id]
    definition = fleet.describe(fleet.record(job_id)["task_arn"])["taskDefinitionArn"]
    copied = fleet.client("ecs").describe_task_definition(taskDefinition=definition)
    copied = copied["taskDefinition"]
    assert copied["family"] == f"{fleet.prefix}-arm-img"
    assert copied["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    assert copied["ephemeralStorage"] == {"sizeInGiB": 100}
    assert copied["containerDefinitions"][0]["image"] == f"{image_fleet.repository_url}:{tag}"


def test_one_base_on_an_x86_and_an_arm64_class_is_two_builds(image_fleet: ImageFleet) -> None:
    fleet = image_fleet.fleet
    image_fleet.add_class(
        "arm",
        {"cpu": 1024, "memory": 2048, "architecture": "arm64"},
        runtimePlatform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
    )
    x86, _ = queue(fleet, "image:node:20")
    arm, _ = queue(fleet, "image:node:20", "class:arm")
    again, _ = queue(fleet, "image:node:20", "class:arm")  # joins the arm64 build

    x86_request, arm_request = image_fleet.start_builds()
    assert len(image_fleet.build_ids()) == 2
    x86_tag, arm_tag = tag_of("node:20"), tag_of("node:20", architecture="arm64")
    assert variables(x86_request)["IMAGE_TAG"] == x86_tag
    assert "environmentTypeOverride" not in x86_request  # the project's own (x86_64)
    assert variables(arm_request)["IMAGE_TAG"] == arm_tag
    assert arm_request["environmentTypeOverride"] == "ARM_CONTAINER"
    assert image_fleet.build_record(x86_tag)["waiting_jobs"] == {x86}
    assert image_fleet.build_record(arm_tag)["waiting_jobs"] == {arm, again}


def test_an_arm64_docker_class_starts_one_docker_build_on_arm(image_fleet: ImageFleet) -> None:
    fleet = image_fleet.fleet
    image_fleet.add_class(
        "dockerarm",
        {**DOCKER_ARM, "capacity_provider": f"{fleet.prefix}-docker-arm64"},
        requiresCompatibilities=["EC2"],
        runtimePlatform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
    )
    first, result = queue(fleet, "image:ubuntu:22.04", "class:dockerarm")
    second, _ = queue(fleet, "image:ubuntu:22.04", "class:dockerarm")

    assert result["result"] == "image-building"
    (request,) = image_fleet.start_builds()
    tag = tag_of("ubuntu:22.04", docker=True, architecture="arm64")
    assert tag.endswith("-docker-arm64")
    sent = variables(request)
    assert (sent["IMAGE_TAG"], sent["RUNNER_VARIANT"]) == (tag, "docker")
    assert {k: request.get(k) for k in ARM_OVERRIDES} == ARM_OVERRIDES
    assert image_fleet.build_record(tag)["waiting_jobs"] == {first, second}


def test_the_img_revision_of_a_docker_class_keeps_its_ec2_definition(
    image_fleet: ImageFleet,
) -> None:
    """builds.task_definition copies the class's own definition: EC2 compatibility, the
    privileged runner, the task-scoped /var/lib/docker volume and the platform stay."""
    fleet = image_fleet.fleet
    volume = {
        "name": "docker",
        "dockerVolumeConfiguration": {"scope": "task", "driver": "local"},
    }
    image_fleet.add_class(
        "dockerarm",
        DOCKER_ARM,
        requiresCompatibilities=["EC2"],
        runtimePlatform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        volumes=[volume],
        container={
            "privileged": True,
            "mountPoints": [{"sourceVolume": "docker", "containerPath": "/var/lib/docker"}],
            "environment": [{"name": "RUNNER_DOCKER", "value": "true"}],
        },
    )
    tag = tag_of("ubuntu:22.04", docker=True, architecture="arm64")
    svc = Services(Settings.from_env(), Deadline(60))
    record = {"class_name": "dockerarm", "image_tag": tag, "base_image": UBUNTU}

    arn = builds.task_definition(record, svc)

    copied = fleet.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert copied["family"] == f"{fleet.prefix}-dockerarm-img"
    assert copied["requiresCompatibilities"] == ["EC2"]
    assert copied["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    assert copied["volumes"][0]["dockerVolumeConfiguration"]["scope"] == "task"
    (runner,) = copied["containerDefinitions"]
    assert runner["privileged"] is True
    assert runner["mountPoints"][0]["containerPath"] == "/var/lib/docker"
    assert runner["environment"] == [{"name": "RUNNER_DOCKER", "value": "true"}]
    assert runner["image"] == f"{image_fleet.repository_url}:{tag}"
    assert builds.task_definition(record, svc) == arn  # remembered: registered once
