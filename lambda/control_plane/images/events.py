"""The end of a runner image build: CodeBuild's "Build State Change" event, or the cleanup
finding a build stuck past its timeout. Either way the build record moves `building` →
`succeeded`/`failed` once (images/records.py), then every job waiting for it is launched or
failed.

Idempotent: a redelivered or late event finds the record finished and each job launched or
failed already (a job is taken with its lease, as a redelivered webhook would: state.py), so
it launches nothing twice. A waiting job that cannot be launched now (GitHub or ECS error,
the invocation's time running out) stays `image-building` and resumable, and the handler
raises so that the event is delivered again.

The event (https://docs.aws.amazon.com/codebuild/latest/userguide/sample-build-notifications.html):
`detail.build-status` (IN_PROGRESS, SUCCEEDED, FAILED, FAULT, STOPPED, TIMED_OUT),
`detail.build-id` (the build's ARN), `detail.project-name`, and
`detail.additional-information` with `environment.environment-variables` (our IMAGE_TAG
says which image) and `logs.deep-link`.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from control_plane import jobs, log, retry
from control_plane.images.builds import ImageBuilds, fail_waiting_job
from control_plane.images.records import BUILDING, FAILED, SUCCEEDED
from control_plane.services import Services
from control_plane.state import iso

FINAL_STATUSES = ("SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT")
LAUNCH_WORKERS = 8  # parallel launches after a build (RunTask allows 20 calls/s)
MIN_LAUNCH_SECONDS = 20.0  # a launch is not begun with less time left than this
STUCK_LOOKBACK_SECONDS = 2 * 86400  # builds older than this are long finished or expired


class LaunchesIncomplete(RuntimeError):
    """Some jobs waiting for a finished build are not launched yet: deliver the event again."""


def _ignored(reason: str, **fields: Any) -> dict[str, Any]:
    log.info(f"ignored: {reason}", **fields)
    return {"result": "ignored", "reason": reason}


def on_build_state_change(event: dict[str, Any], svc: Services) -> dict[str, Any]:
    detail = event.get("detail") or {}
    project, status = detail.get("project-name"), detail.get("build-status")
    build_arn = str(detail.get("build-id") or "")
    log.bind(build_id=build_arn, build_status=status)
    if not svc.settings.image_build_project or project != svc.settings.image_build_project:
        return _ignored("build of another CodeBuild project", project=project)
    if status not in FINAL_STATUSES:
        return _ignored("the build has not ended")
    info = detail.get("additional-information") or {}
    variables = (info.get("environment") or {}).get("environment-variables") or []
    tag = next((v.get("value") for v in variables if v.get("name") == "IMAGE_TAG"), None)
    if not tag:
        return _ignored("the build has no IMAGE_TAG: not started by the control plane")
    log.bind(image_tag=tag)
    log_link = (info.get("logs") or {}).get("deep-link")
    if status == "SUCCEEDED":
        return finish_build(svc, tag, build_arn, SUCCEEDED, log_link=log_link)
    return finish_build(svc, tag, build_arn, FAILED, reason=status, log_link=log_link)


def finish_build(
    svc: Services,
    tag: str,
    build_arn: str | None,
    outcome: str,
    reason: str | None = None,
    log_link: str | None = None,
) -> dict[str, Any]:
    """Records the end of a build (once) and launches or fails the jobs waiting for it."""
    store = ImageBuilds.of(svc).builds
    record = store.get(tag)
    if record is None:
        return _ignored("no build record for this image tag")
    if record.get("build_arn") and build_arn != record["build_arn"]:
        return _ignored("an earlier build of this image tag", current=record.get("build_id"))
    finished = store.finish(tag, build_arn, outcome, reason, log_link)
    if finished is not None:
        log.info("image build ended", outcome=outcome, waiting=len(finished["waiting_jobs"]))
        record = finished
    elif record["status"] == BUILDING:
        record = store.get(tag) or record  # finished meanwhile by another delivery
    if record["status"] != outcome:
        return _ignored("the build record says otherwise", status=record["status"])
    if outcome == SUCCEEDED:
        return _launch_waiting(record, svc)
    failed = [job for job in record["waiting_jobs"] if fail_waiting_job(job, record, svc)]
    return {"result": "failed", "build_id": record.get("build_id"), "jobs_failed": failed}


def _launch_waiting(record: dict[str, Any], svc: Services) -> dict[str, Any]:
    waiting = record["waiting_jobs"]
    if not waiting:
        return {"result": "built", "build_id": record.get("build_id"), "launched": []}
    _ = svc.store, svc.github  # created once here, shared by the launch threads

    def launch(job_id: int) -> dict[str, Any]:
        if svc.deadline.remaining() < MIN_LAUNCH_SECONDS:
            return {"result": "deferred"}
        with log.bound(job_id=job_id):
            try:
                return jobs.launch_recorded(job_id, svc)
            except Exception as exc:  # logged by the launch; the job stays resumable
                return {"result": "error", "error": retry.describe(exc)}

    with ThreadPoolExecutor(max_workers=min(LAUNCH_WORKERS, len(waiting))) as pool:
        futures = {job: pool.submit(contextvars.copy_context().run, launch, job) for job in waiting}
        results = {job: future.result() for job, future in futures.items()}
    by_result: dict[str, list[int]] = {}
    for job, result in results.items():
        by_result.setdefault(result["result"], []).append(job)
    log.info("jobs waiting for the image", **{k: len(v) for k, v in by_result.items()})
    unfinished = by_result.get("error", []) + by_result.get("deferred", [])
    if unfinished:
        raise LaunchesIncomplete(
            f"{len(unfinished)} of {len(waiting)} jobs waiting for image {record['image_tag']} "
            "are not launched yet (the event will be delivered again)"
        )
    return {
        "result": "built",
        "build_id": record.get("build_id"),
        "launched": by_result.get("launched", []),
        "duplicate": by_result.get("duplicate", []) + by_result.get("busy", []),
    }


def fail_stuck_builds(svc: Services, now: float, limit: int = 20) -> dict[str, Any]:
    """For the scheduled cleanup: every build still `building` past its `timeout_at` (the
    build's own timeout plus a grace; for a build never started, 10 minutes after it was
    opened) is settled with what CodeBuild says: ended (its event was lost) → that outcome;
    still running, or unknown to CodeBuild → stopped and `failed` as stuck; never started →
    `failed`. The waiting jobs are launched or failed accordingly. At most `limit` builds per
    call; `now` in epoch seconds."""
    if not svc.settings.image_build_project:
        return {"checked": 0, "settled": []}
    builds = ImageBuilds.of(svc)
    settled: list[dict[str, Any]] = []
    checked = 0
    for record in builds.builds.newest(since=iso(now - STUCK_LOOKBACK_SECONDS)):
        if checked >= limit:
            break
        if record.get("status") != BUILDING or int(record.get("timeout_at") or 0) >= now:
            continue
        if int(record.get("lease_until") or 0) >= now:
            continue  # being started right now
        checked += 1
        with log.bound(image_tag=record["image_tag"], build_id=record.get("build_id")):
            settled.append(_settle(builds, svc, record))
    return {"checked": checked, "settled": settled}


def _settle(builds: ImageBuilds, svc: Services, record: dict[str, Any]) -> dict[str, Any]:
    tag = record["image_tag"]
    build_id = record.get("build_id")
    arn = record.get("build_arn")
    if not build_id:
        log.warning("image build never started: failing its waiting jobs")
        result = finish_build(svc, tag, None, FAILED, reason="never started")
        return {"image_tag": tag, "outcome": FAILED, **result}
    found = builds.codebuild.batch_get_builds(ids=[build_id]).get("builds") or []
    status = found[0].get("buildStatus") if found else None
    log_link = ((found[0].get("logs") or {}).get("deepLink") if found else None) or None
    if status == "SUCCEEDED":
        log.warning("image build succeeded but its event never arrived: launching its jobs")
        result = finish_build(svc, tag, arn, SUCCEEDED, log_link=log_link)
        return {"image_tag": tag, "outcome": SUCCEEDED, **result}
    if status in FINAL_STATUSES:
        reason = status
    else:
        reason = "stuck past its timeout" if found else "unknown to CodeBuild"
        if found:
            builds.codebuild.stop_build(id=build_id)  # it must not push an image later
    log.warning("image build settled as failed", reason=reason)
    result = finish_build(svc, tag, arn, FAILED, reason=reason, log_link=log_link)
    return {"image_tag": tag, "outcome": FAILED, **result}
