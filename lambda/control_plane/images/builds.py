"""Runner images for `image:<ref>` labels and the default image: found in ECR, or built once.

A job's runner image is runner/Dockerfile built on a base image as its class's variant
(target `runner`, or `docker` for a Docker class) and architecture, tagged by a digest of the
normalised base, the runner files' fingerprint, the variant and the architecture, plus the
variant's suffix (images/refs.py). One build per tag, so per (base, variant, architecture); an
arm64 build runs on the CodeBuild environment IMAGE_BUILD_ENVIRONMENTS names for arm64
(images/environments.py). For each queued job:

1. `decide_image` (no side effect): the class's own task definition when the fleet pins an
   image (RUNNER_IMAGE, or image builds off) and the job has no `image:` label; otherwise the
   base image, its tag (with the day its max-age period began, for a mutable base tag) and
   whether that tag is in ECR. A bad reference, a base that `allowed_base_images` does not
   match, or an `image:` label while builds are off, rejects the job with the reason.
2. Tag in ECR: the job launches at once on a `${name_prefix}-${class}-img` task definition
   revision running that image (`task_definition`: registered once per class revision and
   tag, a copy of the class's own definition, remembered in the build record).
3. Tag missing: `wait_for_image` joins the tag's build, or starts it (one CodeBuild build per
   tag however many jobs arrive: images/records.py), and parks the job as `image-building`.
   CodeBuild's state change event then launches or fails every waiting job (images/events.py).

`ImageBuilds` holds the clients, so the CLI (`ecsrunner images build`) starts pre-builds
through this same code with its own AWS session.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from control_plane import aws, launcher, log, retry
from control_plane.images.environments import PROJECT_ARCHITECTURE
from control_plane.images.records import BUILDING, FAILED, SUCCEEDED, BuildStore
from control_plane.images.refs import (
    InvalidReference,
    base_allowed,
    image_tag,
    normalise,
    rebuild_day,
    tag_variant,
    variant,
)
from control_plane.services import Services
from control_plane.settings import Settings

BUILDS_DISABLED = (
    "image builds are not enabled: set the module input image_build_project (the name of a "
    "CodeBuild project the module creates) to build runner images for image: labels, or "
    "remove the image: label"
)
START_LEASE_SECONDS = 60.0  # StartBuild answers in about a second
STUCK_GRACE_SECONDS = 15 * 60  # a build still running this long after its own timeout is stuck
DEFAULT_BUILD_TIMEOUT_MINUTES = 60
MAX_RACES = 5  # record changes under our feet before the event is retried instead
# One registration at a time in this process: jobs launched together after a build (threads)
# then share one new revision instead of registering one each.
_registering = threading.Lock()
# What RegisterTaskDefinition accepts of what DescribeTaskDefinition returns.
TASK_DEFINITION_FIELDS = (
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
)
IMG_SUFFIX = "-img"  # family `${name_prefix}-${class}-img` of the registered revisions


class BuildContention(RuntimeError):
    """The build record kept changing while this invocation worked on it: retry the event."""


@dataclass(frozen=True)
class ImageDecision:
    """How a job gets its runner image (see the module docstring)."""

    rejection: str | None = None
    base_image: str | None = None  # normalised; None: the class's own task definition
    image_tag: str | None = None
    ready: bool = True  # the image exists: launch now

    def fields(self) -> dict[str, Any]:
        return {"base_image": self.base_image, "image_tag": self.image_tag}


def resolve(
    image_ref: str | None,
    settings: Settings,
    now: float | None = None,
    *,
    docker: bool = False,
    architecture: str = "x86_64",
) -> ImageDecision:
    """The base image and tag a job of a class with `docker` and `architecture` needs at epoch
    time `now` (default: the current time; no AWS call; `ready` not yet known)."""
    if image_ref is None:
        if settings.runner_image or not settings.image_build_project:
            return ImageDecision()  # the pinned image of the class task definitions
        image_ref, what = settings.default_base_image, "the default base image (DEFAULT_BASE_IMAGE)"
    else:
        if not settings.image_build_project:
            return ImageDecision(rejection=BUILDS_DISABLED)
        what = "image reference"
    try:
        ref = normalise(image_ref)
    except InvalidReference as exc:
        return ImageDecision(rejection=f"invalid {what} {image_ref!r}: {exc}")
    base = str(ref)
    # The privileged build project runs whatever the base holds and pushes it to the fleet's
    # repository: only bases the fleet's owner allowed are built.
    if not base_allowed(base, settings.allowed_base_images):
        return ImageDecision(
            rejection=f"base image {base} is not allowed on this fleet: it matches none of "
            f"allowed_base_images ({', '.join(settings.allowed_base_images)})"
        )
    # The project's own environment builds x86_64 images: any other needs one of its own.
    if (
        architecture != PROJECT_ARCHITECTURE
        and architecture not in settings.image_build_environments
    ):
        return ImageDecision(
            rejection=f"no CodeBuild environment builds {architecture} runner images: the "
            f"image-build module's build_environments (IMAGE_BUILD_ENVIRONMENTS) has no "
            f"{architecture!r} entry"
        )
    day = rebuild_day(ref, settings.image_max_age_days, time.time() if now is None else now)
    tag = image_tag(
        base, settings.runner_image_fingerprint, day, docker=docker, architecture=architecture
    )
    return ImageDecision(base_image=base, image_tag=tag, ready=False)


def decide_image(
    image_ref: str | None, svc: Services, *, docker: bool = False, architecture: str = "x86_64"
) -> ImageDecision:
    """`resolve`, and whether the image is in ECR already."""
    decision = resolve(image_ref, svc.settings, docker=docker, architecture=architecture)
    if decision.image_tag is None:
        return decision
    found = ImageBuilds.of(svc).find_image(decision.image_tag)
    log.info(
        "runner image found in ECR" if found else "runner image not built yet",
        base_image=decision.base_image,
        image_tag=decision.image_tag,
    )
    return replace(decision, ready=found is not None)


def build_environment(settings: Settings, base_image: str, tag: str) -> list[dict[str, str]]:
    """StartBuild's environmentVariablesOverride: the variables runner/buildspec.yml reads
    (RUNNER_VARIANT: the Dockerfile target the tag's suffix names)."""
    docker, _ = tag_variant(tag)
    values = {
        "BASE_IMAGE": base_image,
        "IMAGE_TAG": tag,
        "ECR_REPOSITORY_URL": settings.ecr_repository_url,
        "RUNNER_IMAGE_FINGERPRINT": settings.runner_image_fingerprint,
        "RUNNER_VARIANT": variant(docker),
    }
    return [{"name": name, "value": value, "type": "PLAINTEXT"} for name, value in values.items()]


def start_build_arguments(settings: Settings, base_image: str, tag: str) -> dict[str, Any]:
    """StartBuild's arguments for a tag but the idempotency token: the project, the buildspec's
    variables and, for an architecture with an environment of its own, that environment."""
    _, architecture = tag_variant(tag)
    arguments: dict[str, Any] = {
        "projectName": settings.image_build_project,
        "environmentVariablesOverride": build_environment(settings, base_image, tag),
    }
    environment = settings.image_build_environments.get(architecture)
    if environment is not None:
        arguments |= environment.overrides()
    return arguments


@dataclass
class ImageBuilds:
    settings: Settings
    builds: BuildStore
    ecr: Any
    codebuild: Any

    @classmethod
    def of(cls, svc: Services) -> ImageBuilds:
        store = svc.store
        return cls(
            svc.settings,
            BuildStore(store.table, store.dynamodb, store.clock),
            aws.client("ecr"),
            aws.client("codebuild"),
        )

    @property
    def repository_name(self) -> str:
        return self.settings.ecr_repository_url.split("/", 1)[1]

    def image_uri(self, tag: str) -> str:
        return f"{self.settings.ecr_repository_url}:{tag}"

    def find_image(self, tag: str) -> dict[str, Any] | None:
        """The ECR image with this tag, or None."""
        try:
            details = self.ecr.describe_images(
                repositoryName=self.repository_name, imageIds=[{"imageTag": tag}]
            )["imageDetails"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ImageNotFoundException":
                return None
            raise
        return details[0] if details else None

    def request(self, base_image: str, tag: str, job_id: int | None = None) -> dict[str, Any]:
        """The build record of `tag` after making sure it is built: a running build (joined,
        with `job_id` in its waiting list), a new one (started), or `succeeded` with the
        image in ECR. One build per tag: only the writer that opened the record starts it."""
        owner = uuid.uuid4().hex
        for _ in range(MAX_RACES):
            record = self.builds.get(tag)
            if record is None:
                opened = self.builds.create(
                    tag, base_image, self.image_uri(tag), owner, START_LEASE_SECONDS, job_id
                )
                if opened is not None:
                    return self._start(opened, owner)
                continue  # someone else opened it: look again
            if record["status"] == BUILDING:
                if job_id is not None:
                    record = self.builds.join(tag, record["request_id"], job_id) or {}
                    if not record:
                        continue  # it ended meanwhile: look again
                if not record.get("build_id") and self.builds.take_start(
                    tag, record["request_id"], owner, START_LEASE_SECONDS
                ):
                    log.warning("starting a build an earlier attempt opened but never started")
                    return self._start(record, owner)
                log.info("joined the running image build", build_id=record.get("build_id"))
                return record
            if record["status"] == SUCCEEDED and self.find_image(tag):
                return record
            # failed, or built but the image has gone from ECR since (lifecycle policy)
            opened = self.builds.replace(record, owner, START_LEASE_SECONDS, job_id)
            if opened is not None:
                log.info("building the image again", previous=record.get("build_id"))
                return self._start(opened, owner)
        raise BuildContention(f"the build record of image tag {tag} kept changing")

    def _start(self, record: dict[str, Any], owner: str) -> dict[str, Any]:
        tag = record["image_tag"]
        try:
            build = self.codebuild.start_build(
                **start_build_arguments(self.settings, record["base_image"], tag),
                # a retry within 5 minutes (the starter died after StartBuild) gets the same build
                idempotencyToken=record["request_id"],
            )["build"]
        except Exception as exc:
            self.builds.release_start(tag, owner, f"StartBuild failed: {retry.describe(exc)}")
            raise
        minutes = int(build.get("timeoutInMinutes") or DEFAULT_BUILD_TIMEOUT_MINUTES)
        timeout_at = int(self.builds.clock() + minutes * 60 + STUCK_GRACE_SECONDS)
        log.info(
            "image build started",
            build_id=build["id"],
            base_image=record["base_image"],
            image_tag=tag,
            project=self.settings.image_build_project,
            environment=(build.get("environment") or {}).get("type"),
        )
        return self.builds.record_started(tag, owner, build, timeout_at) or (
            self.builds.get(tag) or record
        )


# ---------------------------------------------------------------------- jobs waiting for images


@dataclass(frozen=True)
class Waiting:
    """A job parked for its image's build (the lease is released), and the build's state
    right after: `building`, or `succeeded`/`failed` when it ended while the job was parked."""

    build_id: str | None
    status: str


def wait_for_image(record: dict[str, Any], svc: Services, owner: str) -> Waiting | None:
    """For a claimed job whose image is not in ECR: joins or starts the build of its tag and
    parks the job as `image-building`. None: the image turned out to be ready (the lease is
    still held: launch now)."""
    job_id = int(record["job_id"])
    builds = ImageBuilds.of(svc)
    build = builds.request(record["base_image"], record["image_tag"], job_id)
    if build["status"] == SUCCEEDED:
        return None
    build_id = build.get("build_id")
    reason = f"waiting for image build {build_id or '(starting)'} of {record['base_image']}"
    first = record.get("status") == "pending"
    fields = {"build_id": build_id} if build_id else {}
    if svc.store.await_build(job_id, owner, reason, fields, first):
        log.info("waiting for the runner image build", build_id=build_id)
    # The build may have ended while the job was being parked, after its event handler read
    # the waiting list (it skips a job it cannot lease): the outcome is applied here then.
    now = builds.builds.get(record["image_tag"]) or build
    if now["status"] == FAILED:
        fail_waiting_job(job_id, now, svc)
    return Waiting(build_id=now.get("build_id") or build_id, status=now["status"])


def failure_reason(build: dict[str, Any]) -> str:
    what = build.get("reason") or "failed"
    text = f"image build {build.get('build_id') or '(never started)'} {what}"
    text += f" (base {build.get('base_image')})"
    if build.get("log_link"):
        text += f"; logs: {build['log_link']}"
    return text


def fail_waiting_job(job_id: int, build: dict[str, Any], svc: Services) -> bool:
    """Marks a job still waiting for `build` failed (with the build id and log link); False
    when it is not waiting any more (launched, failed already) or is being handled."""
    owner = uuid.uuid4().hex
    if svc.store.take_lease(job_id, owner, START_LEASE_SECONDS) is None:
        return False
    reason = failure_reason(build)
    fields = {"build_id": build.get("build_id"), "build_logs": build.get("log_link")}
    svc.store.transition(job_id, "failed", reason=reason, fields=fields)
    svc.store.release(job_id, owner, reason)
    log.warning("job failed: its runner image could not be built", job_id=job_id, reason=reason)
    return True


# ---------------------------------------------------------------------- task definitions


def task_definition(record: dict[str, Any], svc: Services) -> str:
    """What RunTask runs for a job: the class's family, or the `-img` revision for the job's
    image tag (registered on first use as a copy of the class's current definition with the
    image replaced, so both always agree on roles, logs, sizes and platform)."""
    family = f"{svc.settings.name_prefix}-{record['class_name']}"
    tag = record.get("image_tag")
    if not tag:
        return family
    builds = ImageBuilds.of(svc)
    current = svc.ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    class_arn = current["taskDefinitionArn"]
    with _registering:
        known = ((builds.builds.get(tag) or {}).get("task_definitions") or {}).get(class_arn)
        if known:
            return known
        spec = {name: current[name] for name in TASK_DEFINITION_FIELDS if current.get(name)}
        spec["family"] = f"{family}{IMG_SUFFIX}"
        spec["containerDefinitions"] = [
            {**c, "image": builds.image_uri(tag)} if c.get("name") == launcher.CONTAINER else c
            for c in current["containerDefinitions"]
        ]
        # Terraform does not know these revisions: the tags say whose they are and which
        # image they run; the cleanup deregisters them once the image is gone from ECR.
        spec["tags"] = [
            {"key": "runner-fleet", "value": svc.settings.name_prefix},
            {"key": "runner-class", "value": str(record["class_name"])},
            {"key": "runner-image-tag", "value": tag},
        ]
        registered = svc.ecs.register_task_definition(**spec)["taskDefinition"]
        arn = registered["taskDefinitionArn"]
        builds.builds.remember_task_definition(tag, record.get("base_image", ""), class_arn, arn)
    log.info("registered a task definition for the image", task_definition=arn)
    return arn
