"""The cleanup's recovery of jobs whose runner never ran them (what the events missed).

- Interrupted or displaced: recovery.py relaunches the job while GitHub still shows it
  queued (or settles the record), as the ECS and webhook events do at once; the cleanup
  finds the records those events failed to handle.
- Stalled: a `pending` launch that every delivery of its event failed to finish (the record
  is resumable: no task, lease free). If GitHub still shows the job queued, the launch is
  resumed exactly as a redelivered webhook would resume it; otherwise it becomes `failed`.
"""

from __future__ import annotations

import uuid

from control_plane import jobs, log, recovery
from control_plane.cleanup import policy
from control_plane.cleanup.context import CleanupRun

OUTCOME_COUNTS = {
    recovery.RELAUNCHED: "jobs_relaunched",
    "failed": "records_failed",
    "launch-failed": "errors",
}


def relaunch_interrupted(run: CleanupRun) -> None:
    """Relaunches (or settles) the jobs whose runner stopped before it took a job, or took
    another job, as the events would have."""
    for job_id in run.recent:
        record = run.record(job_id)
        cause = policy.interruption(record)
        displaced = cause is None
        if displaced:
            cause = policy.displacement(record)
        if cause is None or record is None:
            continue
        if not (run.take("github_reads") and run.take("launches")):
            return
        with log.bound(job_id=job_id, runner_name=record.get("runner_name")):
            try:
                outcome = recovery.recover(run.svc, record, cause, displaced=displaced)
            except recovery.RelaunchFailed:  # pending, its lease released: resumed later
                outcome = "launch-failed"
            run.changed(job_id)
            if outcome in OUTCOME_COUNTS:
                run.count(OUTCOME_COUNTS[outcome])


def resume_stalled_launches(run: CleanupRun) -> None:
    """Resumes (or closes as failed) launches that every delivery of their event failed."""
    for job_id in run.recent:
        record = run.record(job_id)
        if not policy.stalled_launch(record, run.now, run.thresholds) or record is None:
            continue
        if not run.take("github_reads"):
            return
        with log.bound(job_id=job_id, runner_name=record.get("runner_name")):
            job = recovery.github_job(run.svc, record)
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
                launched = recovery.launch_reopened(run.svc, taken, owner)
                run.count("launches_resumed" if launched else "errors")
                continue
            reason = (
                f"launch never finished ({record.get('reason') or 'no error recorded'}); "
                f"not resumed: {policy.github_view(job)}"
            )
            if run.svc.store.transition(job_id, "failed", reason=reason):
                run.count("records_failed")
                log.warning("cleanup: stalled launch closed", reason=reason)
            run.svc.store.release(job_id, owner, reason)
