"""A runner that took another job than the one it was made for (GitHub's matching).

GitHub gives a queued job to any idle runner of the scope whose labels cover the job's, so
runner R, launched for job B, may take an older job A. Then, on `in_progress` for A by R:
- B's record: `busy`, `served_job_id` A (its runner works, on A);
- A's record (when A is this fleet's): `served_by` R. A's own runner is spare: it is
  deregistered at GitHub first (GitHub refuses to remove a runner that has just taken a job,
  which then stays), and only then is its task stopped;
- B gets a new runner at once while GitHub shows it queued (recovery.recover, displaced; first,
  before the spare is retired); R's task is handed over and runs A to its end.
`completed` for A by R does the same (it may come alone), keeping A's conclusion on A's record
and, as `served_conclusion`, on B's record while R is still its runner. Each step is
conditional on the records, so a repeated event changes nothing more; the cleanup stops a
spare runner this missed (cleanup/policy.py: `spare`).
"""

from __future__ import annotations

from typing import Any

from control_plane import labels, log, recovery, retire, retry
from control_plane.cleanup import policy
from control_plane.services import Services
from control_plane.workflow_job import WorkflowJob


def on_other_job(job: WorkflowJob, runner_job: int, svc: Services) -> dict[str, Any]:
    """`in_progress` / `completed` for `job` by a runner made for job `runner_job` (either may
    come first, or alone: GitHub does not redeliver)."""
    runner = str(job.runner_name)
    log.bind(served_job_id=job.job_id)
    fields: dict[str, Any] = {"served_job_id": job.job_id}
    served: dict[str, Any] = {"served_by": runner}
    if job.action == "completed":  # the other job's outcome, not this record's job's
        fields["served_conclusion"] = served["conclusion"] = job.conclusion
    status = "completed" if job.action == "completed" else "busy"
    svc.store.transition(runner_job, status, fields=fields, runner=runner)
    own = svc.store.annotate(job.job_id, served)
    # The displaced job first: its new runner matters more than stopping the spare one.
    outcome = relaunch_displaced(svc, runner_job, runner)
    spare = retire_quietly(svc, own)
    log.info("runner took another job", displaced_job=runner_job, outcome=outcome, spare=spare)
    return {"result": "moved", "status": status, "displaced": outcome, "spare_stopped": spare}


def on_job_without_our_runner(job: WorkflowJob, svc: Services) -> dict[str, Any]:
    """A job of ours ran on a runner of another fleet, or ended before any runner took it
    (cancelled while queued): its own runner, if it has one, is spare."""
    if not labels.select(job.labels, svc.settings.runner_extra_labels).ours:
        log.info("ignored: not this fleet's labels", runner=job.runner_name)
        return {"result": "ignored", "reason": "labels not served by this fleet"}
    served = {"served_by": job.runner_name or ""}
    if job.action == "completed":
        served["conclusion"] = job.conclusion
    own = svc.store.annotate(job.job_id, served)  # only if the job is this fleet's
    spare = retire_quietly(svc, own)
    if job.runner_name:
        log.info("the job ran on a runner of another fleet", runner=job.runner_name, spare=spare)
    else:
        log.info("the job ended before a runner took it", conclusion=job.conclusion, spare=spare)
    return {"result": "ignored", "reason": "not this fleet's runner", "spare_stopped": spare}


def relaunch_displaced(svc: Services, runner_job: int, runner: str) -> str | None:
    """A new runner for the job whose runner `runner` took another job (once: conditional on
    the record), or the resumption of one whose launch failed."""
    record = svc.store.get(runner_job)
    with log.bound(job_id=runner_job):
        cause = policy.displacement(record)
        if cause and record and record.get("runner_name") == runner:
            return recovery.recover(svc, record, cause, displaced=True)
        return recovery.resume(svc, record)


def retire_quietly(svc: Services, record: dict[str, Any] | None) -> bool:
    """retire_spare, whose failure is left to the cleanup (its `spare` verdict)."""
    if not record:
        return False
    try:
        return retire_spare(svc, record)
    except Exception as exc:
        log.warning("could not retire the spare runner", error=retry.describe(exc))
        return False


def retire_spare(svc: Services, record: dict[str, Any]) -> bool:
    """Stops the record's runner, whose job another runner ran, unless it has taken a job."""
    reason = f"spare runner: job {record['job_id']} {policy.settled_elsewhere(record)}"
    return retire.retire(svc, record, reason, "spare")
