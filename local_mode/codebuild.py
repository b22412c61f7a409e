"""Local mode's CodeBuild: what a build of the fleet's image-build project does, seen from
outside, played against the emulator.

moto's CodeBuild records StartBuild (local_mode/emulator.py keeps the environment the build
was started with, as CodeBuild's BatchGetBuilds reports it) but runs nothing and emits no
event. This process watches the project's builds (ListBuildsForProject, BatchGetBuilds) and,
for each new one, does what CodeBuild running runner/buildspec.yml does:

1. the "CodeBuild Build State Change" event with build-status IN_PROGRESS;
2. by default the build succeeds: the buildspec's `docker push` of ECR_REPOSITORY_URL:IMAGE_TAG,
   here an image manifest put into the emulator's ECR (PutImage) with the project's service
   role, then the SUCCEEDED event;
3. on request, when the build's BASE_IMAGE matches a glob pattern of the stack's
   `fail_builds` (`python -m local_mode up --fail-builds`, or FAIL_BUILDS), the build fails:
   nothing is pushed, and the FAILED event is sent;
4. as the buildspec does, a build fails (nothing pushed) when its RUNNER_VARIANT is not
   runner/docker, or its built tag's suffix names another variant or architecture than the
   one it builds: RUNNER_VARIANT's Dockerfile target, on its environment's machine (arm64 on
   ARM_CONTAINER, which StartBuild's overrides select; local_mode/emulator.py keeps them).

The events go where the module's EventBridge rule sends CodeBuild's: the webhook endpoint's
/events (the default bus; local_mode/webhook_server.py), as the runner simulator sends ECS's.
The manifest names no real layers: nothing pulls images in local mode. Each build is played
once by this process; a tag already in ECR (tags are immutable) counts as pushed.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import json
import logging
import re
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.exceptions import ClientError
from control_plane.images.refs import TAG_LENGTH, variant_suffix

from local_mode.moto_server import role_session
from local_mode.webhook_server import eventbridge_envelope

LOG = logging.getLogger("local_mode.codebuild")
SUCCEEDED, FAILED, IN_PROGRESS = "SUCCEEDED", "FAILED", "IN_PROGRESS"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def variables(build: dict[str, Any]) -> dict[str, str]:
    """The build's environment variables (the project's, with StartBuild's overrides)."""
    found = (build.get("environment") or {}).get("environmentVariables") or []
    return {v["name"]: v.get("value", "") for v in found}


def fails(build: dict[str, Any], patterns: list[str]) -> bool:
    """Whether the build was asked to fail: its BASE_IMAGE matches one of `patterns`."""
    base = variables(build).get("BASE_IMAGE", "")
    return any(fnmatch.fnmatchcase(base, pattern) for pattern in patterns)


def built_as(build: dict[str, Any]) -> tuple[bool, str]:
    """(docker, architecture) of the image a build makes: the Dockerfile target its
    RUNNER_VARIANT names, for the machine of its environment."""
    docker = variables(build).get("RUNNER_VARIANT") == "docker"
    arm = (build.get("environment") or {}).get("type") == "ARM_CONTAINER"
    return docker, "arm64" if arm else "x86_64"


def refusal(build: dict[str, Any]) -> str | None:
    """Why runner/buildspec.yml's pre_build refuses the build's variant or tag, or None."""
    env = variables(build)
    if env.get("RUNNER_VARIANT", "") not in ("", "runner", "docker"):
        return "RUNNER_VARIANT must be runner or docker"
    tag = env.get("IMAGE_TAG", "")
    docker, architecture = built_as(build)
    expected = variant_suffix(docker, architecture)
    if re.match(r"[0-9a-f]{32}", tag) and tag[TAG_LENGTH:] != expected:
        return (
            f"IMAGE_TAG {tag} is not a {'docker' if docker else 'runner'} image for {architecture}"
        )
    return None


def image_manifest(tag: str) -> str:
    """A Docker image manifest (schema 2) for `tag`: one config, one layer, digests derived
    from the tag (what `docker push` uploads, without the blobs)."""
    config = hashlib.sha256(f"config {tag}".encode()).hexdigest()
    layer = hashlib.sha256(f"layer {tag}".encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 7023,
                "digest": f"sha256:{config}",
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 29_000_000,
                    "digest": f"sha256:{layer}",
                }
            ],
        }
    )


def _console_time(moment: datetime) -> str:
    """CodeBuild's event time format: "Sep 1, 2017 4:12:29 PM"."""
    return moment.strftime("%b %-d, %Y %-I:%M:%S %p")


def build_state_change(build: dict[str, Any], status: str) -> dict[str, Any]:
    """A "CodeBuild Build State Change" event for a build (BatchGetBuilds' description), shaped
    as CodeBuild sends it (codebuild/latest/userguide/sample-build-notifications.html)."""
    arn = build["arn"]
    region, account = arn.split(":")[3], arn.split(":")[4]
    now = datetime.now(UTC)
    environment = build.get("environment") or {}
    logs = build.get("logs") or {}
    ended = status != IN_PROGRESS
    return eventbridge_envelope(
        {
            "source": "aws.codebuild",
            "detail-type": "CodeBuild Build State Change",
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "resources": [arn],
            "detail": {
                "build-status": status,
                "project-name": build["projectName"],
                "build-id": arn,
                "additional-information": {
                    "cache": build.get("cache") or {"type": "NO_CACHE"},
                    "timeout-in-minutes": build.get("timeoutInMinutes"),
                    "build-complete": ended,
                    "build-number": build.get("buildNumber"),
                    "initiator": build.get("initiator", ""),
                    "build-start-time": _console_time(now),
                    "source": {
                        k: v
                        for k, v in (build.get("source") or {}).items()
                        if k in ("location", "type")
                    },
                    "logs": {
                        "group-name": logs.get("groupName"),
                        "stream-name": logs.get("streamName"),
                        "deep-link": logs.get("deepLink"),
                    },
                    "environment": {
                        "image": environment.get("image"),
                        "privileged-mode": bool(environment.get("privilegedMode")),
                        "compute-type": environment.get("computeType"),
                        "type": environment.get("type"),
                        "environment-variables": [
                            {
                                "name": v["name"],
                                "type": v.get("type", "PLAINTEXT"),
                                "value": v.get("value", ""),
                            }
                            for v in (environment.get("environmentVariables") or [])
                        ],
                    },
                },
                "current-phase": "COMPLETED" if ended else "BUILD",
                "current-phase-context": "[]",
                "version": "1",
            },
        },
        account=account,
        region=region,
    )


class LocalCodeBuild:
    """Plays every new build of one CodeBuild project in the emulator."""

    def __init__(self, stack_file: Path, build_seconds: float = 1.0) -> None:
        self.stack_file = stack_file
        self.build_seconds = build_seconds
        stack = self.stack()
        self.project = stack["image_build_project"]
        self.events_url = stack["events_url"]
        self.kwargs = {"endpoint_url": stack["aws_endpoint_url"], "region_name": stack["region"]}
        self.codebuild = boto3.client("codebuild", **self.kwargs)
        self.seen: set[str] = set()
        self.stop_event = threading.Event()

    def stack(self) -> dict[str, Any]:
        return json.loads(self.stack_file.read_text())

    def fail_patterns(self) -> list[str]:
        """Read for each build, so `up --fail-builds` changes a running stack."""
        with contextlib.suppress(OSError, ValueError):
            return list(self.stack().get("fail_builds") or [])
        return []

    def new_builds(self) -> list[dict[str, Any]]:
        ids = self.codebuild.list_builds_for_project(projectName=self.project).get("ids", [])
        new = [build_id for build_id in ids if build_id not in self.seen]
        found: list[dict[str, Any]] = []
        for start in range(0, len(new), 100):
            found += self.codebuild.batch_get_builds(ids=new[start : start + 100])["builds"]
        self.seen.update(new)  # only once described: a failed poll retries them
        return found

    def send(self, build: dict[str, Any], status: str) -> None:
        event = build_state_change(build, status)
        response = requests.post(self.events_url, json=event, timeout=60)
        if response.status_code >= 300:
            LOG.error("event %s refused: %s %s", event["id"], response.status_code, response.text)

    def push(self, build: dict[str, Any]) -> None:
        """The buildspec's push, with the project's service role."""
        env = variables(build)
        repository = env["ECR_REPOSITORY_URL"].split("/", 1)[1]
        project = self.codebuild.batch_get_projects(names=[self.project])["projects"][0]
        sts = boto3.client("sts", **self.kwargs)
        ecr = boto3.client(
            "ecr", **self.kwargs, **role_session(sts, project["serviceRole"], "codebuild")
        )
        try:
            ecr.put_image(
                repositoryName=repository,
                imageManifest=image_manifest(env["IMAGE_TAG"]),
                imageManifestMediaType=MANIFEST_TYPE,
                imageTag=env["IMAGE_TAG"],
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("ImageAlreadyExistsException",):
                raise

    def play(self, build: dict[str, Any]) -> None:
        env = variables(build)
        docker, architecture = built_as(build)
        LOG.info(
            "build %s: %s on %s (%s, %s)",
            build["id"],
            env.get("IMAGE_TAG"),
            env.get("BASE_IMAGE"),
            "docker" if docker else "runner",
            architecture,
        )
        self.send(build, IN_PROGRESS)
        if self.stop_event.wait(self.build_seconds):
            return
        if fails(build, self.fail_patterns()):
            LOG.info("build %s FAILED (its base matches fail_builds): nothing pushed", build["id"])
            self.send(build, FAILED)
            return
        refused = refusal(build)
        if refused:
            LOG.info("build %s FAILED (buildspec: %s): nothing pushed", build["id"], refused)
            self.send(build, FAILED)
            return
        self.push(build)
        LOG.info("build %s pushed %s:%s", build["id"], env["ECR_REPOSITORY_URL"], env["IMAGE_TAG"])
        self.send(build, SUCCEEDED)

    def safe_play(self, build: dict[str, Any]) -> None:
        """Plays the build; one that cannot be played ends FAILED, as a broken build would."""
        try:
            self.play(build)
        except Exception:
            LOG.exception("playing build %s failed: it ends FAILED", build.get("id"))
            with contextlib.suppress(Exception):
                self.send(build, FAILED)

    def run(self, poll_seconds: float = 0.5) -> None:
        LOG.info("watching the builds of CodeBuild project %s", self.project)
        while not self.stop_event.is_set():
            try:
                for build in self.new_builds():
                    threading.Thread(target=self.safe_play, args=(build,), daemon=True).start()
            except Exception:
                LOG.exception("poll failed")
            self.stop_event.wait(poll_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local mode's CodeBuild (image builds)")
    parser.add_argument("--stack-file", type=Path, required=True)
    parser.add_argument("--build-seconds", type=float, default=1.0, help="how long a build runs")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    codebuild = LocalCodeBuild(args.stack_file, args.build_seconds)
    signal.signal(signal.SIGTERM, lambda *_: codebuild.stop_event.set())
    with contextlib.suppress(KeyboardInterrupt):
        codebuild.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
