"""A queued `workflow_job` → at most one runner task, however often the event arrives.

Order of work (state.py explains the record and its lease):
1. decide without side effects: repository scope, labels, class, image;
2. record the job (`rejected` with a reason, or `pending` under a lease) with a conditional
   write; a job already recorded launches nothing more (a live attempt elsewhere → JobBusy,
   so the event is retried later and finds the outcome);
3. a job whose runner image is not in ECR yet joins (or starts) that image's build and is
   parked as `image-building` (builds.py); the build's end launches it (`launch_recorded`);
4. launch: JIT config from GitHub → its own S3 object (jit_config.py) → ecs:RunTask with
   that object as the container's environment file, then record the task.
   A resumed attempt first looks for what an earlier one left: a task started for this
   runner name (adopted), the record's JIT config object (reused), a runner already registered
   under the name (GitHub 409: deleted if it never connected, then registered again).
5. any failure releases the lease with the reason and re-raises: the Lambda fails, the event
   is delivered again, and the next attempt resumes from step 3.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from control_plane import jit_config, labels, launcher, log, metrics, retry
from control_plane.classes import ClassSize, ClassSizesError
from control_plane.github import GitHubClient, JitConfig, RunnerNameTaken
from control_plane.images import builds
from control_plane.images.records import SUCCEEDED
from control_plane.launcher import LaunchError, RunnerTask
from control_plane.pacing import NoSlotInTime
from control_plane.services import Services
from control_plane.settings import Settings
from control_plane.state import RESUMABLE, in_flight, launch_attempt
from control_plane.workflow_job import WorkflowJob, runner_name

LEASE_MARGIN_SECONDS = 5.0
T = TypeVar("T")


class JobBusy(RuntimeError):
    """Another live invocation is launching this job: retry the event later."""


def lease_seconds(svc: Services) -> float:
    """How long a launch holds its job's lease: the invocation's remaining time and a margin."""
    return svc.deadline.remaining() + LEASE_MARGIN_SECONDS


def in_scope(repository: str, settings: Settings) -> bool:
    """Whether the job's repository belongs to the fleet's repo or org (case-insensitive)."""
    if settings.github_scope == "repo":
        return repository.lower() == settings.scope_name.lower()
    return repository.split("/", 1)[0].lower() == settings.github_owner.lower()


def _result(result: str, **fields: Any) -> dict[str, Any]:
    return {"result": result, **{k: v for k, v in fields.items() if v is not None}}


def handle_queued(job: WorkflowJob, svc: Services, delivery_id: str) -> dict[str, Any]:
    s = svc.settings
    if not in_scope(job.repository, s):
        log.warning("refused: repository outside the fleet's scope", scope=s.scope_name)
        return _result("refused", reason="repository outside the fleet's scope")
    selection = labels.select(job.labels, s.runner_extra_labels)
    if not selection.ours:
        log.info("ignored: not this fleet's labels", labels=list(job.labels))
        return _result("ignored", reason="labels not served by this fleet")
    name = runner_name(s.name_prefix, job.job_id, job.run_attempt)
    log.bind(runner_name=name)

    fields, rejection, image_ready = _plan(job, selection, name, delivery_id, svc)
    if rejection is not None:
        if svc.store.create_rejected(job.job_id, fields, rejection):
            log.warning("rejected: no runner started", reason=rejection)
            # fleet-wide only: a rejected job's class label may be anything a workflow says
            metrics.emit(s, "JobsRejected", 1)
        else:
            log.info("duplicate: job already recorded")
        return _result("rejected", reason=rejection)
    # Where this runner's config will be stored: random, so no one can guess it.
    fields["jit_object"] = jit_config.new_key(name)
    return _claim_and_launch(job, fields, svc, image_ready)


def _plan(
    job: WorkflowJob,
    selection: labels.Selection,
    name: str,
    delivery_id: str,
    svc: Services,
) -> tuple[dict[str, Any], str | None, bool]:
    """The job's record fields, why no runner can serve it (None: it can), and whether its
    runner image is ready."""
    fields: dict[str, Any] = {
        "runner_name": name,
        "job_id": job.job_id,
        "run_id": job.run_id,
        "run_attempt": job.run_attempt,
        "repository": job.repository,
        "workflow_name": job.workflow_name,
        "job_name": job.job_name,
        "labels": list(job.labels),
        "image": selection.image,
        "delivery_id": delivery_id,
    }
    if selection.problem:
        return fields, selection.problem, False
    try:
        sizes = svc.class_sizes()
    except ClassSizesError as exc:  # a deployment problem: fail, the event is retried
        log.error("class sizes parameter is invalid", error=str(exc))
        raise
    class_name = sizes.resolve(selection.class_name)
    if class_name is None:
        fields["class_name"] = selection.class_name
        known = ", ".join(sorted(sizes.classes))
        return fields, f"unknown class {selection.class_name!r} (this fleet has: {known})", False
    size = sizes.classes[class_name]
    fields.update(
        class_name=class_name,
        cpu=size.cpu,
        memory=size.memory,
        architecture=size.architecture,
        ephemeral_storage_gib=size.ephemeral_storage_gib,
        docker=size.docker,
    )
    image = builds.decide_image(selection.image, svc)
    fields.update(image.fields())
    return fields, image.rejection, image.ready


def _claim_and_launch(
    job: WorkflowJob, fields: dict[str, Any], svc: Services, image_ready: bool
) -> dict[str, Any]:
    owner = uuid.uuid4().hex
    lease = lease_seconds(svc)
    claim = svc.store.claim(job.job_id, fields, owner, lease)
    if claim.outcome == "busy":
        log.warning("another invocation is launching this job: will be retried")
        raise JobBusy(f"job {job.job_id} is being launched by another invocation")
    if claim.outcome == "done":
        _finish_interrupted(claim.record, svc)
        log.info("duplicate: job already handled", status=claim.record.get("status"))
        return _result("duplicate", status=claim.record.get("status"))

    log.info("job recorded" if claim.outcome == "new" else "resuming an interrupted launch")
    if claim.outcome == "new":
        metrics.emit(svc.settings, "JobsQueued", 1, fields["class_name"])
    if not image_ready and claim.record.get("image_tag"):
        waiting = guarded(
            claim.record, svc, owner, lambda: builds.wait_for_image(claim.record, svc, owner)
        )
        if waiting is not None:  # parked, the lease released
            if waiting.status == SUCCEEDED:  # built while it was being parked
                return launch_recorded(job.job_id, svc)
            return _result(
                "image-building" if waiting.status != "failed" else "failed",
                build_id=waiting.build_id,
            )
    resumed = claim.outcome == "resumed"
    launch = partial(launch_under_lease, claim.record, svc, owner, resumed)
    task_arn = guarded(claim.record, svc, owner, launch)
    return _result("launched", task_arn=task_arn)


def launch_recorded(job_id: int, svc: Services) -> dict[str, Any]:
    """Launches a recorded job that waited for its runner image (images/events.py) or whose
    relaunch failed (recovery.resume), taking its lease as a redelivery would: a job
    launched, failed or being launched elsewhere is left."""
    owner = uuid.uuid4().hex
    record = svc.store.take_lease(job_id, owner, lease_seconds(svc))
    if record is None:
        current = svc.store.get(job_id) or {}
        _finish_interrupted(current, svc)
        return _result("busy" if in_flight(current) else "duplicate", status=current.get("status"))
    with log.bound(job_id=job_id, runner_name=record.get("runner_name")):
        log.info("launching a recorded job")
        launch = partial(launch_under_lease, record, svc, owner, True)
        task_arn = guarded(record, svc, owner, launch)
    return _result("launched", task_arn=task_arn)


def guarded(record: dict[str, Any], svc: Services, owner: str, work: Callable[[], T]) -> T:
    """Runs `work` under the lease of the record's job; a failure releases the lease with the
    reason (the record stays resumable), is counted, and propagates, so that the event is
    delivered again."""
    try:
        return work()
    except Exception as exc:
        log.error("launch failed: the job stays pending for a retry", error=retry.describe(exc))
        if not isinstance(exc, NoSlotInTime):  # the fleet's pace deferred it: no failure
            metrics.emit(svc.settings, "LaunchFailures", 1, record.get("class_name"))
        job_id = int(record["job_id"])
        try:
            svc.store.release(job_id, owner, f"launch attempt failed: {retry.describe(exc)}")
        except Exception as release_error:  # the lease then ends with this invocation's time
            log.error("could not release the lease", error=retry.describe(release_error))
        raise


def _finish_interrupted(record: dict[str, Any], svc: Services) -> None:
    """A task was recorded but the status never left `pending` (crash in between)."""
    if record.get("status") in RESUMABLE and record.get("task_arn"):
        svc.store.transition(int(record["job_id"]), "starting", task_arn=record["task_arn"])


def launch_under_lease(record: dict[str, Any], svc: Services, owner: str, resumed: bool) -> str:
    """Registers the record's runner and starts its task; the caller holds the lease."""
    s = svc.settings
    job_id = int(record["job_id"])
    # A record from before configs moved to S3 has no key yet: the object gets a new one (the
    # RUNNING event deletes it by the task's overrides; the cleanup keeps it while pending).
    jit_key = record.get("jit_object") or jit_config.new_key(record["runner_name"])
    size = class_size(record, svc)
    task = RunnerTask(
        runner_name=record["runner_name"],
        family=builds.task_definition(record, svc),
        jit_config_arn=jit_config.arn(s.jit_bucket, jit_key, s.partition),
        job_id=job_id,
        run_id=int(record.get("run_id") or 0),
        # GitHub's attempt plus the cleanup's relaunches: each launch its own clientToken.
        run_attempt=launch_attempt(record),
        repository=record["repository"],
        class_name=record["class_name"],
        placement=launcher.placement(size, s),
    )
    earlier = launcher.launched_task(svc.ecs, s.cluster_name, task.runner_name) if resumed else None
    if earlier:
        log.info("an earlier attempt already started the task: adopting it", task_arn=earlier)
        svc.store.record_task(job_id, owner, earlier)
        svc.store.transition(job_id, "starting", task_arn=earlier)
        return earlier

    if not (resumed and jit_config.exists(svc.s3, s.jit_bucket, jit_key)):
        jit = register_runner(svc.github, task.runner_name, list(record["labels"]), s)
        # A resumed launch overwrites what a failed attempt left under the same key.
        jit_config.put(svc.s3, s.jit_bucket, jit_key, jit.encoded)
        log.info("JIT config stored", jit_object=jit_key, runner_id=jit.runner_id)
    else:
        log.info("reusing the JIT config an earlier attempt stored", jit_object=jit_key)

    launched = launcher.launch(svc.ecs, s, task, svc.deadline)
    provider = {"capacity_provider": launched.capacity_provider}
    recorded = svc.store.record_task(job_id, owner, launched.task_arn, starting=True, **provider)
    if not recorded:
        # The status moved on meanwhile (a task event came first) or the lease was lost.
        recorded = svc.store.record_task(job_id, owner, launched.task_arn, **provider)
        if not recorded:
            log.warning("lease expired before the task was recorded", task_arn=launched.task_arn)
        svc.store.transition(job_id, "starting", task_arn=launched.task_arn)
    if recorded:  # counted by the launch that holds the lease, once
        metrics.emit(s, "RunnersLaunched", 1, record["class_name"])
    log.info(
        "runner launched",
        task_arn=launched.task_arn,
        capacity_provider=launched.capacity_provider,
        class_name=record["class_name"],
        cpu=int(record.get("cpu") or 0),
        memory=int(record.get("memory") or 0),
    )
    return launched.task_arn


def class_size(record: dict[str, Any], svc: Services) -> ClassSize:
    """The record's class as configured now: a launch, relaunch or resumed launch runs the
    class's current task definition, so it runs where the class runs now too (a record from
    before Docker classes, without `docker`, is a Fargate class's)."""
    name = record["class_name"]
    size = svc.class_sizes().classes.get(name)
    if size is None:  # its task definition went with it
        raise LaunchError(f"class {name!r} is no longer configured")
    return size


def register_runner(
    github: GitHubClient, name: str, job_labels: list[str], settings: Settings
) -> JitConfig:
    """A JIT config for `name`; a leftover registration that never connected is replaced."""
    runner_labels = labels.distinct(job_labels)  # GitHub compares labels case-insensitively
    try:
        return github.generate_jit_config(name, runner_labels, settings.runner_group_id)
    except RunnerNameTaken:
        existing = github.find_runner(name)
        if existing and (existing.get("busy") or existing.get("status") == "online"):
            raise LaunchError(f"runner {name} is registered and connected already") from None
        if existing:
            github.delete_runner(int(existing["id"]))
            log.info(
                "deleted a registration an earlier attempt left (it never connected)",
                runner_id=existing["id"],
            )
        return github.generate_jit_config(name, runner_labels, settings.runner_group_id)
