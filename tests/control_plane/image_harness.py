"""Test harness of image builds: the control-plane fleet with image builds on, as the module
configures it (an ECR repository, a CodeBuild project with an S3 source, the Lambda's image
settings), a fault proxy in front of CodeBuild that records every request the control plane
makes, and CodeBuild's "Build State Change" events shaped as AWS sends them.

moto's CodeBuild accepts StartBuild's environmentVariablesOverride but neither keeps nor runs
it, and its BatchGetBuilds reports every build SUCCEEDED: what the control plane asks is read
from the proxy's record, a build's end is the event below, and BatchGetBuilds answers are
canned through the proxy where a test needs another one. A finished build's image is pushed
to moto's ECR with PutImage (a manifest), as the buildspec's `docker push` would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from control_plane.images.refs import (
    DEFAULT_MAX_AGE_DAYS,
    FINGERPRINT_FILES,
    image_tag,
    normalise,
    rebuild_day,
    runner_fingerprint,
)
from control_plane.settings import Settings

from local_mode.codebuild import build_state_change, image_manifest
from local_mode.fault_proxy import FaultProxy
from local_mode.moto_server import MotoServer
from tests.control_plane.harness import REGION, Fleet

RUNNER_DIR = Path(__file__).resolve().parents[2] / "runner"
RUNNER_FILES = {name: (RUNNER_DIR / name).read_bytes() for name in FINGERPRINT_FILES}
FINGERPRINT = runner_fingerprint(RUNNER_FILES)
DEFAULT_BASE = "public.ecr.aws/docker/library/ubuntu:22.04"


# The image-build module's build_environments (IMAGE_BUILD_ENVIRONMENTS): arm64 builds run on
# an ARM_CONTAINER environment.
ARM64_ENVIRONMENT = {
    "type": "ARM_CONTAINER",
    "image": "aws/codebuild/amazonlinux-aarch64-standard:3.0",
    "compute_type": "BUILD_GENERAL1_LARGE",
}
BUILD_ENVIRONMENTS = {"arm64": ARM64_ENVIRONMENT}


def image_settings(**env: str) -> Settings:
    """Lambda settings of a fleet with image builds on (and `env` on top): for the pure
    image decisions, with no AWS behind them."""
    base = {
        "NAME_PREFIX": "fleet",
        "JIT_BUCKET": "fleet-jit",
        "GITHUB_OWNER": "octo",
        "GITHUB_REPO": "app",
        "SUBNET_IDS": "subnet-1",
        "SECURITY_GROUP_IDS": "sg-1",
        "IMAGE_BUILD_PROJECT": "fleet-images",
        "ECR_REPOSITORY_URL": "123456789012.dkr.ecr.us-east-1.amazonaws.com/fleet-runner",
        "RUNNER_IMAGE_FINGERPRINT": FINGERPRINT,
        "DEFAULT_BASE_IMAGE": DEFAULT_BASE,
    }
    return Settings.from_env({**base, **env})


def tag_of(
    base: str,
    fingerprint: str = FINGERPRINT,
    *,
    now: float | None = None,
    max_age_days: int = DEFAULT_MAX_AGE_DAYS,
    docker: bool = False,
    architecture: str = "x86_64",
) -> str:
    """The tag the control plane gives `base` at `now` (default: the current time), with its
    max-age period for a mutable base tag (image_max_age_days, default 7), for a class of
    `docker` and `architecture`."""
    ref = normalise(base)
    day = rebuild_day(ref, max_age_days, time.time() if now is None else now)
    return image_tag(str(ref), fingerprint, day, docker=docker, architecture=architecture)


@dataclass
class ImageFleet:
    """A fleet with image builds on (its CodeBuild calls go through `codebuild`)."""

    fleet: Fleet
    codebuild: FaultProxy
    project: str
    repository: str
    repository_url: str

    # ---------------------------------------------------------------- what was asked

    def start_builds(self) -> list[dict[str, Any]]:
        """The StartBuild requests the control plane made (their parameters)."""
        return [
            r["body"]
            for r in self.codebuild.requests("StartBuild")
            if not r["injected"] and r["status"] == 200
        ]

    def build_ids(self) -> list[str]:
        return self.fleet.client("codebuild").list_builds_for_project(projectName=self.project)[
            "ids"
        ]

    def build_record(self, tag: str) -> dict[str, Any] | None:
        return self.fleet.item(f"build#{tag}")

    def add_class(self, name: str, size: dict[str, Any], **definition: Any) -> None:
        """A runner class as the module makes it: its entry in the class-sizes parameter and
        its task definition `<prefix>-<name>` (the runner container, plus `definition`)."""
        ssm = self.fleet.client("ssm")
        parameter = f"/{self.fleet.prefix}/config/class-sizes"
        sizes = json.loads(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
        sizes["classes"][name] = size
        ssm.put_parameter(Name=parameter, Value=json.dumps(sizes), Type="String", Overwrite=True)
        container = definition.pop("container", {})
        self.fleet.client("ecs").register_task_definition(
            family=f"{self.fleet.prefix}-{name}",
            networkMode="awsvpc",
            cpu=str(size["cpu"]),
            memory=str(size["memory"]),
            containerDefinitions=[
                {
                    "name": "runner",
                    "image": "runner:test",
                    "memory": size["memory"],
                    "essential": True,
                    **container,
                }
            ],
            **{"requiresCompatibilities": ["FARGATE"], **definition},
        )

    # ---------------------------------------------------------------- what CodeBuild does

    def push_image(self, tag: str) -> str:
        """Pushes an image under `tag` (a build's `docker push`); returns its digest."""
        image = self.fleet.client("ecr").put_image(
            repositoryName=self.repository, imageManifest=image_manifest(tag), imageTag=tag
        )["image"]
        return image["imageId"]["imageDigest"]

    def build_event(
        self, status: str, build_id: str | None = None, *, tag: str | None = None
    ) -> dict[str, Any]:
        """A "CodeBuild Build State Change" event as AWS sends it to the rule's target, for a
        build the control plane started (default: the latest), from what BatchGetBuilds says
        of it (the emulator keeps StartBuild's overrides); `tag` stands in for its IMAGE_TAG."""
        build_id = build_id or self.build_ids()[-1]
        (build,) = self.fleet.client("codebuild").batch_get_builds(ids=[build_id])["builds"]
        if tag is not None:
            for variable in build["environment"]["environmentVariables"]:
                if variable["name"] == "IMAGE_TAG":
                    variable["value"] = tag
        return build_state_change(build, status)

    def log_link(self, build_id: str) -> str:
        group = f"/aws/codebuild/{self.project}"
        return (
            f"https://console.aws.amazon.com/cloudwatch/home?region={REGION}"
            f"#logEvent:group={group};stream={build_id.split(':', 1)[1]}"
        )


@pytest.fixture(name="codebuild_proxy")
def codebuild_proxy_fixture(moto_server: MotoServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of CodeBuild (import this fixture into a test module to use it)."""
    proxy = FaultProxy(moto_server.url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(name="image_fleet")
def image_fleet_fixture(
    fleet: Fleet, codebuild_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> ImageFleet:
    """The fleet with image builds on, as the module sets them up: ECR repository
    `<prefix>-runner`, CodeBuild project `<prefix>-images` (S3 source), the Lambda's image
    settings, no pinned image (the default image is built on DEFAULT_BASE_IMAGE)."""
    repository = f"{fleet.prefix}-runner"
    url = fleet.client("ecr").create_repository(
        repositoryName=repository, imageTagMutability="IMMUTABLE"
    )["repository"]["repositoryUri"]
    bucket = f"{fleet.prefix}-build-context"
    fleet.client("s3").create_bucket(Bucket=bucket)
    role = fleet.service_role(f"{fleet.prefix}-image-build", "codebuild.amazonaws.com")
    project = f"{fleet.prefix}-images"
    fleet.client("codebuild").create_project(
        name=project,
        source={"type": "S3", "location": f"{bucket}/runner/", "buildspec": "buildspec.yml"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "privilegedMode": True,
            "environmentVariables": [{"name": "ECR_REPOSITORY_URL", "value": url}],
        },
        serviceRole=role,
        timeoutInMinutes=30,
    )
    env = {
        "IMAGE_BUILD_PROJECT": project,
        "ECR_REPOSITORY_URL": url,
        "RUNNER_IMAGE": "",
        "DEFAULT_BASE_IMAGE": DEFAULT_BASE,
        "RUNNER_IMAGE_FINGERPRINT": FINGERPRINT,
        "IMAGE_BUILD_ENVIRONMENTS": json.dumps(BUILD_ENVIRONMENTS),
        "AWS_ENDPOINT_URL_CODEBUILD": codebuild_proxy.url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    fleet.env.update(env)
    return ImageFleet(fleet, codebuild_proxy, project, repository, url)
