"""The cleanup's recovery of jobs whose runner never ran them.

- Interrupted: the record's task stopped before the runner took its job (Spot interruption,
  no capacity, TaskFailedToStart, or the task is gone). If GitHub still shows the job
  queued, it is relaunched, at most MAX_RELAUNCHES times: the record goes back to `pending`
  (state.reopen_for_relaunch) with attempt n+1 (runner name `${name_prefix}-${job_id}-${n}`,
  a new RunTask clientToken), and the launch runs the webhook path's own code
  (jobs.launch_under_lease).
  Otherwise the record becomes `failed`, saying why.
- Stalled: a `pending` launch that every delivery of its event failed to finish (the record
  is resumable: no task, lease free). If GitHub still shows the job queued, the launch is
  resumed exactly as a redelivered webhook would resume it; otherwise it becomes `failed`.
"""

from __future__ import annotations

import uuid
from typing import Any

from control_plane import cleanup_policy, jit_config, jobs, log, retry
from control_plane.cleanup_context import CleanupRun
from control_plane.workflow_job import runner_name


def _github_job(run: CleanupRun, record: dict[str, Any]) -> dict[str, Any] | None:
    return run.svc.github.get_job(record["repository"], int(record["job_id"]))


def _launch(run: CleanupRun, record: dict[str, Any], owner: str, counter: str) -> None:
    """Launches the record's runner under this run's lease, through the webhook path's code;
    a failure releases the lease with the reason (the next run resumes it)."""
    job_id = int(record["job_id"])
    # The attempt number (not GitHub's run attempt) makes the runner name and the clientToken
    # of this launch differ from the interrupted one's.
    attempt = cleanup_policy.launch_attempt(record)
    try:
        task_arn = jobs.launch_under_lease(record, run.svc, owner, resumed=True)
    except Exception as exc:
        run.count("errors")
        log.error("cleanup: launch failed, the next run resumes it", error=retry.describe(exc))
        try:
            run.svc.store.release(job_id, owner, f"launch attempt failed: {retry.describe(exc)}")
        except Exception as release_error:  # the lease then ends with this invocation's time
            log.error("could not release the lease", error=retry.describe(release_error))
        return
    run.count(counter)
    log.info("cleanup: runner launched", task_arn=task_arn, attempt=attempt)


def relaunch_interrupted(run: CleanupRun) -> None:
    """Relaunches (or closes as failed) the jobs whose task stopped before it ran them."""
    settings = run.svc.settings
    for job_id in run.recent:
        record = run.record(job_id)
        cause = cleanup_policy.interruption(record)
        if cause is None or record is None:
            continue
        if not run.take("github_reads"):
            return
        with log.bound(job_id=job_id, runner_name=record.get("runner_name")):
            decision = cleanup_policy.recovery(
                record, cause, _github_job(run, record), settings.max_relaunches
            )
            if decision.action == "fail":
                if not run.take("record_updates"):
                    return
                if run.svc.store.fail_interrupted(job_id, record["task_arn"], decision.reason):
                    run.count("records_failed")
                    log.warning("cleanup: job not relaunched", reason=decision.reason)
                run.changed(job_id)
                continue
            if not run.take("launches"):
                return
            relaunches = int(record.get("relaunches") or 0)
            name = runner_name(
                settings.name_prefix, job_id, cleanup_policy.launch_attempt(record) + 1
            )
            owner = uuid.uuid4().hex
            reopened = run.svc.store.reopen_for_relaunch(
                job_id,
                task_arn=record["task_arn"],
                relaunches=relaunches,
                runner_name=name,
                jit_object=jit_config.new_key(name),
                owner=owner,
                lease_seconds=jobs.lease_seconds(run.svc),
                reason=decision.reason,
            )
            run.changed(job_id)
            if reopened is None:
                log.info("cleanup: relaunch decided elsewhere already")
                continue
            log.warning("cleanup: relaunching", reason=decision.reason, new_runner_name=name)
            _launch(run, reopened, owner, "jobs_relaunched")


def resume_stalled_launches(run: CleanupRun) -> None:
    """Resumes (or closes as failed) launches that every delivery of their event failed."""
    for job_id in run.recent:
        record = run.record(job_id)
        if not cleanup_policy.stalled_launch(record, run.now, run.thresholds) or record is None:
            continue
        if not run.take("github_reads"):
            return
        with log.bound(job_id=job_id, runner_name=record.get("runner_name")):
            job = _github_job(run, record)
            queued = bool(job) and job.get("status") == "queued"
            if not run.take("launches" if queued else "record_updates"):
                return
            owner = uuid.uuid4().hex
            taken = run.svc.store.take_lease(job_id, owner, jobs.lease_seconds(run.svc))
            run.changed(job_id)
            if taken is None:
                continue  # a delivery of its event is launching it right now
            if queued:
                log.warning("cleanup: resuming a stalled launch", last_error=record.get("reason"))
                _launch(run, taken, owner, "launches_resumed")
                continue
            reason = (
                f"launch never finished ({record.get('reason') or 'no error recorded'}); "
                f"not resumed: {cleanup_policy.github_view(job)}"
            )
            if run.svc.store.transition(job_id, "failed", reason=reason):
                run.count("records_failed")
                log.warning("cleanup: stalled launch closed", reason=reason)
            run.svc.store.release(job_id, owner, reason)
