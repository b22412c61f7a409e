"""Local mode's CodeBuild (local_mode/codebuild.py) against the emulator: what a build of the
image-build project does, seen from outside. Events go over HTTP to a recorder standing where
the webhook endpoint's /events is (fast: no Terraform, no stack)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_mode import codebuild, webhook_server
from local_mode.moto_server import MotoServer

REGION = "us-east-1"
RULE = json.dumps(  # the module's codebuild-state rule (modules/control-plane/main.tf)
    {
        "source": ["aws.codebuild"],
        "detail-type": ["CodeBuild Build State Change"],
        "detail": {"project-name": ["{project}"]},
    }
)


class Recorder(ThreadingHTTPServer):
    """Records the events POSTed to /events, answering 202 as the webhook endpoint does."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # `self` is the recorder
                length = int(handler.headers.get("Content-Length") or 0)
                self.events.append(json.loads(handler.rfile.read(length)))
                handler.send_response(202)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            def log_message(handler, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/events"


@pytest.fixture(name="recorder")
def recorder_fixture() -> Iterator[Recorder]:
    server = Recorder()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class Project:
    """An image-build project as the module makes it: S3 source, ECR_REPOSITORY_URL variable."""

    def __init__(self, moto_server: MotoServer) -> None:
        kwargs = {"endpoint_url": moto_server.url, "region_name": REGION}
        self.name = f"images-{uuid.uuid4().hex[:8]}"
        self.ecr = boto3.client("ecr", **kwargs)
        self.codebuild = boto3.client("codebuild", **kwargs)
        self.repository = f"{self.name}-runner"
        self.repository_url = self.ecr.create_repository(
            repositoryName=self.repository, imageTagMutability="IMMUTABLE"
        )["repository"]["repositoryUri"]
        role = boto3.client("iam", **kwargs).create_role(
            RoleName=f"{self.name}-build",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "codebuild.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        self.codebuild.create_project(
            name=self.name,
            source={"type": "S3", "location": f"{self.name}-context/runner/"},
            artifacts={"type": "NO_ARTIFACTS"},
            environment={
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
                "computeType": "BUILD_GENERAL1_SMALL",
                "privilegedMode": True,
                "environmentVariables": [
                    {"name": "ECR_REPOSITORY_URL", "value": self.repository_url},
                    {"name": "BASE_IMAGE", "value": "overridden"},
                ],
            },
            serviceRole=role,
            timeoutInMinutes=30,
            logsConfig={"cloudWatchLogs": {"status": "ENABLED", "groupName": "/builds"}},
        )

    def start(self, base: str, tag: str, variant: str | None = None, **environment: str) -> str:
        """StartBuild as the control plane makes it (control_plane/images/builds.py), with
        RUNNER_VARIANT if given and `environment` (environmentTypeOverride, ...)."""
        overrides = {
            "BASE_IMAGE": base,
            "IMAGE_TAG": tag,
            "ECR_REPOSITORY_URL": self.repository_url,
            **({"RUNNER_VARIANT": variant} if variant else {}),
        }
        return self.codebuild.start_build(
            projectName=self.name,
            environmentVariablesOverride=[
                {"name": n, "value": v, "type": "PLAINTEXT"} for n, v in overrides.items()
            ],
            **environment,
        )["build"]["id"]

    def tags(self) -> list[str]:
        images = self.ecr.describe_images(repositoryName=self.repository)["imageDetails"]
        return [tag for image in images for tag in image.get("imageTags", [])]


@pytest.fixture(name="project")
def project_fixture(aws_env: MotoServer) -> Project:
    return Project(aws_env)


def tag_of(event: dict[str, Any]) -> str:
    """The IMAGE_TAG of a build state change event (what the control plane reads)."""
    info = event["detail"]["additional-information"]
    variables = info["environment"]["environment-variables"]
    return next(v["value"] for v in variables if v["name"] == "IMAGE_TAG")


def local_codebuild(
    tmp_path: Path, moto_server: MotoServer, recorder: Recorder, project: Project, **stack: Any
) -> codebuild.LocalCodeBuild:
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(
        json.dumps(
            {
                "image_build_project": project.name,
                "events_url": recorder.url,
                "aws_endpoint_url": moto_server.url,
                "region": REGION,
                **stack,
            }
        )
    )
    return codebuild.LocalCodeBuild(stack_file, build_seconds=0)


def test_the_emulator_keeps_what_a_build_was_started_with(project: Project) -> None:
    """BatchGetBuilds reports the project's environment with StartBuild's overrides (moto
    alone drops them), its source and its log stream, as CodeBuild does."""
    build_id = project.start("docker.io/library/ubuntu:24.04", "t1")
    (build,) = project.codebuild.batch_get_builds(ids=[build_id])["builds"]
    assert codebuild.variables(build) == {
        "ECR_REPOSITORY_URL": project.repository_url,
        "BASE_IMAGE": "docker.io/library/ubuntu:24.04",
        "IMAGE_TAG": "t1",
    }
    assert build["environment"]["privilegedMode"] is True
    assert build["source"]["location"] == f"{project.name}-context/runner/"
    assert build["timeoutInMinutes"] == 30
    stream = build_id.split(":", 1)[1]
    assert (build["logs"]["groupName"], build["logs"]["streamName"]) == ("/builds", stream)
    assert build["logs"]["deepLink"].endswith(f"#logEvent:group=/builds;stream={stream}")


def test_a_build_pushes_its_tag_and_sends_codebuilds_events(
    tmp_path: Path, moto_server: MotoServer, recorder: Recorder, project: Project
) -> None:
    player = local_codebuild(tmp_path, moto_server, recorder, project)
    build_id = project.start("docker.io/library/ubuntu:24.04", "t-ok")
    for build in player.new_builds():
        player.play(build)
    assert player.new_builds() == []  # each build is played once

    assert project.tags() == ["t-ok"]
    assert [e["detail"]["build-status"] for e in recorder.events] == ["IN_PROGRESS", "SUCCEEDED"]
    event = recorder.events[-1]
    arn = f"arn:aws:codebuild:{REGION}:123456789012:build/{build_id}"
    assert (event["source"], event["detail-type"]) == (
        "aws.codebuild",
        "CodeBuild Build State Change",
    )
    assert event["resources"] == [arn] and event["detail"]["build-id"] == arn
    assert event["detail"]["project-name"] == project.name
    assert webhook_server.pattern_matches(RULE.replace("{project}", project.name), event)
    info = event["detail"]["additional-information"]
    assert {"name": "IMAGE_TAG", "type": "PLAINTEXT", "value": "t-ok"} in info["environment"][
        "environment-variables"
    ]
    assert info["build-complete"] is True and event["detail"]["current-phase"] == "COMPLETED"
    assert info["logs"]["deep-link"].endswith(f"stream={build_id.split(':', 1)[1]}")

    # a second build of the same tag (tags are immutable) counts as pushed
    project.start("docker.io/library/ubuntu:24.04", "t-ok")
    for build in player.new_builds():
        player.play(build)
    assert recorder.events[-1]["detail"]["build-status"] == "SUCCEEDED"


def test_a_build_asked_to_fail_pushes_nothing_and_sends_failed(
    tmp_path: Path, moto_server: MotoServer, recorder: Recorder, project: Project
) -> None:
    player = local_codebuild(
        tmp_path, moto_server, recorder, project, fail_builds=["docker.io/library/debian:*"]
    )
    project.start("docker.io/library/debian:bookworm", "t-bad")
    project.start("docker.io/library/ubuntu:22.04", "t-good")
    for build in player.new_builds():
        player.play(build)

    assert project.tags() == ["t-good"]
    outcomes = {
        tag_of(event): event["detail"]["build-status"]
        for event in recorder.events
        if event["detail"]["build-status"] != "IN_PROGRESS"
    }
    assert outcomes == {"t-bad": "FAILED", "t-good": "SUCCEEDED"}

    # `up --fail-builds ''` on the running stack: the next build reads the patterns afresh
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps({**json.loads(stack_file.read_text()), "fail_builds": []}))
    project.start("docker.io/library/debian:bookworm", "t-bad-2")
    for build in player.new_builds():
        player.play(build)
    assert sorted(project.tags()) == ["t-bad-2", "t-good"]


def test_fail_patterns_match_the_normalised_base() -> None:
    def build(base: str) -> dict:
        return {"environment": {"environmentVariables": [{"name": "BASE_IMAGE", "value": base}]}}

    patterns = ["docker.io/library/debian:*", "ghcr.io/acme/*"]
    assert codebuild.fails(build("docker.io/library/debian:bookworm"), patterns)
    assert codebuild.fails(build("ghcr.io/acme/ci/base:1"), patterns)  # `*` spans `/`
    assert not codebuild.fails(build("docker.io/library/ubuntu:24.04"), patterns)
    assert not codebuild.fails(build("docker.io/library/debian:bookworm"), [])


ARM64 = {
    "environmentTypeOverride": "ARM_CONTAINER",
    "imageOverride": "aws/codebuild/amazonlinux-aarch64-standard:3.0",
    "computeTypeOverride": "BUILD_GENERAL1_LARGE",
}


def test_an_arm64_docker_build_runs_on_arm_and_pushes_its_tag(
    tmp_path: Path, moto_server: MotoServer, recorder: Recorder, project: Project
) -> None:
    """An arm64 Docker class's image (control_plane/images/builds.py): RUNNER_VARIANT=docker
    and the arm64 environment's overrides, which BatchGetBuilds and the events report."""
    player = local_codebuild(tmp_path, moto_server, recorder, project)
    tag = "0123456789abcdef" * 2 + "-docker-arm64"
    build_id = project.start("docker.io/library/ubuntu:24.04", tag, variant="docker", **ARM64)

    (build,) = project.codebuild.batch_get_builds(ids=[build_id])["builds"]
    environment = build["environment"]
    assert (environment["type"], environment["image"], environment["computeType"]) == (
        "ARM_CONTAINER",
        ARM64["imageOverride"],
        "BUILD_GENERAL1_LARGE",
    )
    assert environment["privilegedMode"] is True  # the project's, kept
    assert codebuild.variables(build)["RUNNER_VARIANT"] == "docker"
    assert codebuild.built_as(build) == (True, "arm64")
    for build in player.new_builds():
        player.play(build)

    assert project.tags() == [tag]
    event = recorder.events[-1]
    assert event["detail"]["build-status"] == "SUCCEEDED"
    reported = event["detail"]["additional-information"]["environment"]
    assert (reported["type"], reported["compute-type"]) == ("ARM_CONTAINER", "BUILD_GENERAL1_LARGE")


@pytest.mark.parametrize(
    ("suffix", "variant"),
    [
        ("-arm64", "runner"),  # an arm64 tag on the project's x86_64 environment
        ("-docker", "runner"),  # a docker tag built as the runner target
        ("", "docker"),
        ("-docker-arm64", "docker"),  # no arm64 environment asked for
        ("", "dind"),  # not a target
    ],
)
def test_a_build_of_another_variant_or_architecture_fails_and_pushes_nothing(
    tmp_path: Path,
    moto_server: MotoServer,
    recorder: Recorder,
    project: Project,
    suffix: str,
    variant: str,
) -> None:
    player = local_codebuild(tmp_path, moto_server, recorder, project)
    project.start("docker.io/library/ubuntu:24.04", "ab" * 16 + suffix, variant=variant)
    for build in player.new_builds():
        player.play(build)

    assert project.tags() == []
    assert recorder.events[-1]["detail"]["build-status"] == "FAILED"
