"""Hardening of image builds: only allowed bases are built (`allowed_base_images`), an image
on a mutable base tag is built again after `image_max_age_days`, and the `-img` task
definitions the control plane registers are tagged and deregistered once their image has
gone from ECR. Driven through the real handler, the CLI and the cleanup against moto
(tests/control_plane/image_harness.py)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from control_plane.images import builds
from control_plane.images.builds import resolve
from control_plane.images.refs import (
    DAY_SECONDS,
    DEFAULT_ALLOWED_BASE_IMAGES,
    base_allowed,
    image_tag,
    normalise,
    rebuild_day,
)
from control_plane.settings import SettingsError

from tests.cli.conftest import Cli, control_plane_function  # noqa: F401 (a fixture)
from tests.control_plane.cleanup_helpers import acted, clean
from tests.control_plane.harness import Fleet, job_payload
from tests.control_plane.image_harness import (
    DEFAULT_BASE,
    FINGERPRINT,
    ImageFleet,
    codebuild_proxy_fixture,  # noqa: F401 (a fixture)
    image_fleet_fixture,  # noqa: F401 (a fixture)
    image_settings,
    tag_of,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
NOW = 1_750_000_000.0  # a fixed moment: 2025-06-15, day 20254
PINNED = "debian@sha256:" + "0123456789abcdef" * 4


def queue(fleet: Fleet, *labels: str) -> tuple[int, dict]:
    payload = job_payload(labels=["self-hosted", *labels])
    return payload["workflow_job"]["id"], fleet.deliver(payload)


def definition_of(fleet: Fleet, job_id: int) -> dict:
    task = fleet.describe(fleet.record(job_id)["task_arn"])
    ecs = fleet.client("ecs")
    return ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]


def status_of(fleet: Fleet, arn: str) -> str:
    return fleet.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"][
        "status"
    ]


# ----------------------------------------------------------------------------- allowed bases


@pytest.mark.parametrize(
    ("label", "allowed"),
    [
        ("ubuntu:22.04", True),
        ("node", True),
        ("library/python:3.12-slim", True),
        ("public.ecr.aws/docker/library/node:20", True),
        (PINNED, True),
        ("bitnami/git:2", False),
        ("ghcr.io/octo-org/ci:v1", False),
        ("public.ecr.aws/someone/ubuntu:22.04", False),
        ("localhost:5000/library/ubuntu", False),
    ],
)
def test_by_default_only_the_docker_official_images_are_built(label: str, allowed: bool) -> None:
    decision = resolve(label, image_settings())
    base = str(normalise(label))
    if allowed:
        assert decision.rejection is None and decision.base_image == base
    else:
        assert decision.image_tag is None
        assert decision.rejection == (
            f"base image {base} is not allowed on this fleet: it matches none of "
            "allowed_base_images (public.ecr.aws/docker/library/*, docker.io/library/*)"
        )


def test_patterns_match_the_normalised_reference() -> None:
    own = image_settings(
        ALLOWED_BASE_IMAGES="ghcr.io/octo-org/*, docker.io/library/ubuntu:2?.04",
        RUNNER_IMAGE="123456789012.dkr.ecr.us-east-1.amazonaws.com/fleet-runner:v1",
    )
    assert own.allowed_base_images == ("ghcr.io/octo-org/*", "docker.io/library/ubuntu:2?.04")
    assert resolve("ghcr.io/octo-org/ci/base:v1", own).rejection is None
    assert resolve("ubuntu:24.04", own).rejection is None  # docker.io/library/ubuntu:24.04
    for refused in ("ghcr.io/octo-org-evil/ci:v1", "ubuntu:18.10", "node:20"):
        assert "is not allowed on this fleet" in (resolve(refused, own).rejection or "")
    # the default base must be allowed: here it is not
    with pytest.raises(SettingsError, match=re.escape(f"DEFAULT_BASE_IMAGE {DEFAULT_BASE}")):
        image_settings(ALLOWED_BASE_IMAGES="ghcr.io/octo-org/*")
    anything = image_settings(ALLOWED_BASE_IMAGES="*")
    assert resolve("ghcr.io/anyone/anything:1", anything).rejection is None
    assert not base_allowed("docker.io/library/ubuntu:22.04", [])


def test_the_default_base_must_be_allowed_unless_an_image_is_pinned() -> None:
    assert image_settings().allowed_base_images == DEFAULT_ALLOWED_BASE_IMAGES
    with pytest.raises(SettingsError, match="matches none of ALLOWED_BASE_IMAGES"):
        image_settings(DEFAULT_BASE_IMAGE="ghcr.io/octo-org/base:1")
    # allowed by a pattern, or not used at all (runner_image_tag pins the default image)
    image_settings(DEFAULT_BASE_IMAGE="ghcr.io/octo-org/base:1", ALLOWED_BASE_IMAGES="ghcr.io/*")
    image_settings(DEFAULT_BASE_IMAGE="ghcr.io/octo-org/base:1", RUNNER_IMAGE="r.example/x:v1")


def test_a_job_asking_for_a_base_not_allowed_is_rejected_and_nothing_is_built(
    image_fleet: ImageFleet,
) -> None:
    fleet = image_fleet.fleet
    job_id, result = queue(fleet, "image:bitnami/git:2")

    assert result["result"] == "rejected"
    record = fleet.record(job_id)
    assert record["status"] == "rejected"
    assert record["reason"].startswith("base image docker.io/bitnami/git:2 is not allowed")
    assert "docker.io/library/*" in record["reason"]
    assert image_fleet.start_builds() == [] and fleet.tasks() == []
    assert fleet.jit_requests() == []


@pytest.fixture
def builds_function(image_fleet: ImageFleet, control_plane_function: str) -> str:  # noqa: F811
    """The control-plane Lambda of the image-builds fleet (its settings: image_fleet's)."""
    return control_plane_function


def test_the_cli_refuses_a_base_not_allowed_like_the_control_plane(
    image_fleet: ImageFleet, builds_function: str
) -> None:
    result = Cli(image_fleet.fleet)("images", "build", "ghcr.io/someone/miner:latest")

    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: base image ghcr.io/someone/miner:latest is not allowed on this fleet"
    )
    assert image_fleet.start_builds() == [] and image_fleet.build_ids() == []


# ----------------------------------------------------------------------------- rebuild by age


def test_a_mutable_base_gets_a_new_tag_each_period_and_a_pinned_one_never() -> None:
    ref = normalise("ubuntu:22.04")
    first = rebuild_day(ref, 7, NOW)
    assert first is not None and first <= NOW // DAY_SECONDS < first + 7
    # the same day for the whole period, the next one after it
    start = first * DAY_SECONDS
    assert {rebuild_day(ref, 7, start + s) for s in (0, 3 * DAY_SECONDS, 7 * DAY_SECONDS - 1)} == {
        first
    }
    assert rebuild_day(ref, 7, start + 7 * DAY_SECONDS) == first + 7
    assert rebuild_day(ref, 7, start - 1) == first - 7
    # digests never change; 0 days turns rebuilding off (and the tag is what it used to be)
    assert rebuild_day(normalise(PINNED), 7, NOW) is None
    assert rebuild_day(ref, 0, NOW) is None
    # periods are offset per base: the bases of a fleet do not all rebuild on one day
    bases = ["ubuntu:22.04", "ubuntu:24.04", "debian:12", "node:20", "python:3.12", "alpine"]
    assert len({rebuild_day(normalise(b), 7, NOW) for b in bases}) > 1

    weekly = image_settings()
    assert weekly.image_max_age_days == 7
    now_tag = resolve("ubuntu:22.04", weekly, now=start).image_tag
    assert now_tag == image_tag(str(ref), FINGERPRINT, first)
    assert resolve("ubuntu:22.04", weekly, now=start + 6 * DAY_SECONDS).image_tag == now_tag
    assert resolve("ubuntu:22.04", weekly, now=start + 7 * DAY_SECONDS).image_tag != now_tag
    pinned = resolve(PINNED, weekly, now=NOW).image_tag
    assert pinned == resolve(PINNED, weekly, now=NOW + 400 * DAY_SECONDS).image_tag
    assert pinned == image_tag(str(normalise(PINNED)), FINGERPRINT)
    never = image_settings(IMAGE_MAX_AGE_DAYS="0")
    assert resolve("ubuntu:22.04", never, now=NOW).image_tag == image_tag(str(ref), FINGERPRINT)
    with pytest.raises(SettingsError, match="IMAGE_MAX_AGE_DAYS must be at least 0"):
        image_settings(IMAGE_MAX_AGE_DAYS="-1")


def test_an_image_older_than_its_period_is_built_again_once(
    image_fleet: ImageFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = image_fleet.fleet
    old_tag = tag_of("ubuntu:22.04")
    image_fleet.push_image(old_tag)
    first, launched = queue(fleet, "image:ubuntu:22.04")
    assert launched["result"] == "launched" and fleet.record(first)["image_tag"] == old_tag

    # a week later: the image is too old, every job of the new period waits for one build
    later = time.time() + 7 * DAY_SECONDS
    monkeypatch.setattr(builds, "time", SimpleNamespace(time=lambda: later))
    new_tag = tag_of("ubuntu:22.04", now=later)
    assert new_tag != old_tag
    waiting = [queue(fleet, "image:ubuntu:22.04", "class:medium")[0] for _ in range(3)]

    (request,) = image_fleet.start_builds()
    variables = {v["name"]: v["value"] for v in request["environmentVariablesOverride"]}
    assert (variables["IMAGE_TAG"], variables["BASE_IMAGE"]) == (
        new_tag,
        "docker.io/library/ubuntu:22.04",
    )
    assert {fleet.record(job)["image_tag"] for job in waiting} == {new_tag}
    assert image_fleet.build_record(new_tag)["waiting_jobs"] == set(waiting)
    image_fleet.push_image(new_tag)
    assert set(fleet.invoke(image_fleet.build_event("SUCCEEDED"))["launched"]) == set(waiting)
    image = {c["image"] for c in definition_of(fleet, waiting[0])["containerDefinitions"]}
    assert image == {f"{image_fleet.repository_url}:{new_tag}"}

    # a pinned base is never rebuilt for age
    pinned_tag = tag_of(PINNED)
    assert pinned_tag == tag_of(PINNED, now=0)
    image_fleet.push_image(pinned_tag)
    assert queue(fleet, f"image:{PINNED}")[1]["result"] == "launched"
    assert len(image_fleet.start_builds()) == 1


# ----------------------------------------------------------------------------- -img definitions


def test_image_task_definitions_are_tagged_with_fleet_class_and_image(
    image_fleet: ImageFleet,
) -> None:
    fleet = image_fleet.fleet
    tag = tag_of("ubuntu:24.04")
    image_fleet.push_image(tag)
    job_id, result = queue(fleet, "image:ubuntu:24.04", "class:large")
    assert result["result"] == "launched"

    definition = definition_of(fleet, job_id)
    assert definition["family"] == f"{fleet.prefix}-large-img"
    tags = fleet.client("ecs").list_tags_for_resource(resourceArn=definition["taskDefinitionArn"])[
        "tags"
    ]
    assert {t["key"]: t["value"] for t in tags} == {
        "runner-fleet": fleet.prefix,
        "runner-class": "large",
        "runner-image-tag": tag,
    }


def test_the_cleanup_deregisters_image_task_definitions_whose_image_is_gone(
    image_fleet: ImageFleet,
) -> None:
    fleet = image_fleet.fleet
    ecr, ecs = fleet.client("ecr"), fleet.client("ecs")
    gone, kept = tag_of("ubuntu:22.04"), tag_of("debian:12")
    for tag in (gone, kept):
        image_fleet.push_image(tag)
    gone_jobs = [queue(fleet, "image:ubuntu:22.04", f"class:{c}")[0] for c in ("small", "large")]
    kept_job, _ = queue(fleet, "image:debian:12")
    gone_arns = [definition_of(fleet, job)["taskDefinitionArn"] for job in gone_jobs]
    kept_arn = definition_of(fleet, kept_job)["taskDefinitionArn"]
    # an `-img` family that is not this fleet's: another fleet's prefix starts with ours
    foreign = ecs.register_task_definition(
        family=f"{fleet.prefix}-other-small-img",
        containerDefinitions=[{"name": "runner", "image": "elsewhere/runner:gone", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecr.batch_delete_image(repositoryName=image_fleet.repository, imageIds=[{"imageTag": gone}])

    summary = clean(task_definition_deregisters=1)  # one per run: the next run goes on

    assert acted(summary).get("task_definitions_deregistered") == 1
    assert "task_definition_deregisters" in summary["deferred"]
    assert sorted(status_of(fleet, arn) for arn in gone_arns) == ["ACTIVE", "INACTIVE"]
    assert acted(clean()).get("task_definitions_deregistered") == 1
    assert [status_of(fleet, arn) for arn in gone_arns] == ["INACTIVE", "INACTIVE"]
    assert status_of(fleet, kept_arn) == "ACTIVE" and status_of(fleet, foreign) == "ACTIVE"
    assert "task_definitions_deregistered" not in acted(clean())  # nothing more to do

    # the image is built again (the lifecycle policy expired it): new revisions, not the old
    job_id, result = queue(fleet, "image:ubuntu:22.04")
    assert result["result"] == "image-building"
    image_fleet.push_image(gone)
    assert fleet.invoke(image_fleet.build_event("SUCCEEDED"))["launched"] == [job_id]
    relaunched = definition_of(fleet, job_id)
    assert relaunched["taskDefinitionArn"] not in gone_arns
    assert relaunched["status"] == "ACTIVE"


def test_the_privileged_build_skip_names_the_base_allowlist() -> None:
    main = (REPO_ROOT / "modules" / "image-build" / "main.tf").read_text()
    (skip,) = [line for line in main.splitlines() if "checkov:skip=CKV_AWS_316" in line]
    assert "privileged mode is needed for docker build" in skip
    assert "runner/Dockerfile" in skip and "allowed_base_images" in skip
