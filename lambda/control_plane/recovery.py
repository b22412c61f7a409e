"""A job whose runner will not run it gets a new one: the one place that decides and does it.

Two causes (policy.interruption and .displacement say which records have them):
- interrupted: the runner stopped before it took a job, whatever stopped it (Spot, no
  capacity, a failed start, the entrypoint exiting, the task gone);
- displaced: GitHub gave the runner another queued job its labels cover (GitHub matches any
  idle runner, not the one made for the job), so this job has none.

While GitHub still shows the job queued, the record goes back to `pending` under a new runner
name (attempt n+1, a new RunTask clientToken) and the webhook path's own launch code starts it,
after a death at most MAX_RELAUNCHES times, after a displacement whenever one happens
(relaunches off: never). Otherwise an interrupted record becomes `failed`
with the reason, and a displaced one keeps its status (its runner works, on the other job) and
says why in `not_relaunched`.
The ECS and webhook events call this at once; the scheduled cleanup calls it for what they
missed. Every step is conditional on the record, so a repeated event relaunches once; a
relaunch whose launch failed raises, and the redelivered event resumes it (`resume`).
"""

from __future__ import annotations

import time
import uuid
from functools import partial
from typing import Any

from control_plane import jit_config, jobs, log, metrics, state
from control_plane.cleanup import policy
from control_plane.services import Services
from control_plane.state import DISPLACEMENTS, RELAUNCHES, in_flight, launch_attempt
from control_plane.workflow_job import runner_name

RELAUNCHED = "relaunched"


class RelaunchFailed(RuntimeError):
    """The job was reopened for a new runner but its launch failed: the event is retried."""


def github_job(svc: Services, record: dict[str, Any]) -> dict[str, Any] | None:
    return svc.github.get_job(record["repository"], int(record["job_id"]))


def recover(
    svc: Services,
    record: dict[str, Any],
    cause: str,
    *,
    displaced: bool = False,
    job: dict[str, Any] | None = None,
) -> str:
    """Relaunches the record's job or settles it; returns what happened: `relaunched`,
    `failed`, `kept` or `decided` (another invocation acted first). Raises RelaunchFailed
    when the new runner's launch failed. `job`: GitHub's view, if the caller has read it."""
    job_id = int(record["job_id"])
    decision = policy.recovery(
        record,
        cause,
        job if job is not None else github_job(svc, record),
        svc.settings.max_relaunches,
        displaced=displaced,
    )
    if decision.action == "fail":
        if displaced:  # its runner keeps serving the other job; no cleanup asks again
            svc.store.annotate(
                job_id,
                {"recovery_checked": state.iso(time.time()), "not_relaunched": decision.reason},
                task_arn=record["task_arn"],
            )
            log.info("not relaunched", reason=decision.reason)
            return "kept"
        if svc.store.fail_interrupted(job_id, record["task_arn"], decision.reason):
            log.warning("job not relaunched", reason=decision.reason)
            return "failed"
        return "decided"
    name = runner_name(svc.settings.name_prefix, job_id, launch_attempt(record) + 1)
    owner = uuid.uuid4().hex
    reopened = svc.store.reopen_for_relaunch(
        job_id,
        task_arn=record["task_arn"],
        done=int(record.get(DISPLACEMENTS if displaced else RELAUNCHES) or 0),
        runner_name=name,
        jit_object=jit_config.new_key(name),
        owner=owner,
        lease_seconds=jobs.lease_seconds(svc),
        reason=decision.reason,
        displaced=displaced,
    )
    if reopened is None:
        log.info("relaunch decided elsewhere already")
        return "decided"
    log.warning("relaunching", reason=decision.reason, new_runner_name=name)
    metrics.emit(svc.settings, "Relaunches", 1, record.get("class_name"))
    if launch_reopened(svc, reopened, owner) is None:
        # The record is pending with its lease released: the event's redelivery resumes it
        # (resume), else the cleanup's stalled-launch step.
        raise RelaunchFailed(f"relaunch of job {job_id} failed: {reopened.get('reason', '')}")
    return RELAUNCHED


def resume(svc: Services, record: dict[str, Any] | None) -> str | None:
    """A relaunch whose launch failed (pending, no task, lease free): launched as the
    redelivered event that finds it; None if the record is not such a one."""
    if not record or not in_flight(record):
        return None
    if float(record.get("lease_until") or 0) >= time.time():
        return None  # a live launch holds it
    return str(jobs.launch_recorded(int(record["job_id"]), svc)["result"])


def launch_reopened(svc: Services, record: dict[str, Any], owner: str) -> str | None:
    """Launches a record this caller holds the lease of, through the webhook path's code; the
    task ARN, or None: the failure released the lease with the reason (the cleanup resumes it)."""
    launch = partial(jobs.launch_under_lease, record, svc, owner, True)
    try:
        task_arn = jobs.guarded(record, svc, owner, launch)
    except Exception:  # logged, and the lease released with the reason
        return None
    log.info("runner launched", task_arn=task_arn, attempt=launch_attempt(record))
    return task_arn
