"""A runner that took another job than the one it was made for (GitHub's matching).

GitHub gives a queued job to any idle runner of the scope whose labels cover the job's, so
runner R, launched for job B, may take an older job A. Then, on `in_progress` for A by R:
- B's record: `busy`, `served_job_id` A (its runner works, on A);
- A's record (when A is this fleet's): `served_by` R. A's own runner is spare: it is
  deregistered at GitHub first (GitHub refuses to remove a runner that has just taken a job,
  which then stays), and only then is its task stopped;
- B gets a new runner at once while GitHub shows it queued (recovery.recover, displaced); R's
  task is handed over and runs A to its end.
On `completed` for A by R, A's record keeps the conclusion, and B's record completes while R
is still its runner. Each step is conditional on the records, so a repeated event changes
nothing more; the cleanup stops a spare runner this missed (cleanup/policy.py: `spare`).
"""

from __future__ import annotations

from typing import Any

from control_plane import launcher, log, recovery, retry
from control_plane.cleanup.policy import STOP_REASON_PREFIX, WAITING, displacement
from control_plane.github import GitHubError
from control_plane.services import Services
from control_plane.workflow_job import WorkflowJob


def on_other_job(job: WorkflowJob, runner_job: int, svc: Services) -> dict[str, Any]:
    """`in_progress` / `completed` for `job` by a runner made for job `runner_job`."""
    runner = str(job.runner_name)
    log.bind(served_job_id=job.job_id)
    if job.action == "completed":
        svc.store.transition(
            runner_job,
            "completed",
            fields={"served_job_id": job.job_id, "conclusion": job.conclusion},
            runner=runner,
        )
        svc.store.annotate(job.job_id, {"served_by": runner, "conclusion": job.conclusion})
        log.info("job ran on a runner made for another job", conclusion=job.conclusion)
        return {"result": "moved", "status": "completed", "served_by": runner}

    svc.store.transition(runner_job, "busy", fields={"served_job_id": job.job_id}, runner=runner)
    served = svc.store.annotate(job.job_id, {"served_by": runner})
    spare = bool(served) and retire_spare(svc, served)
    displaced = svc.store.get(runner_job)
    outcome = "kept"
    cause = displacement(displaced)
    if displaced and displaced.get("runner_name") == runner and cause:
        with log.bound(job_id=runner_job):
            outcome = recovery.recover(svc, displaced, cause, displaced=True)
    log.info("runner took another job", displaced_job=runner_job, outcome=outcome, spare=spare)
    return {"result": "moved", "status": "busy", "displaced": outcome, "spare_stopped": spare}


def retire_spare(svc: Services, record: dict[str, Any]) -> bool:
    """Stops the record's runner, whose job another runner runs, unless it has taken a job:
    deregistered first, so that GitHub can no longer give it one; True if it was stopped."""
    name, task_arn = record.get("runner_name"), record.get("task_arn")
    if record.get("status") not in WAITING or not name:
        return False
    with log.bound(spare_runner=name, task_arn=task_arn):
        registration = svc.github.find_runner(name)
        if registration and registration.get("busy"):
            log.info("spare runner kept: it has taken a job")
            return False
        if registration:
            try:
                svc.github.delete_runner(int(registration["id"]))
            except GitHubError as exc:
                if exc.status == 422:  # "still running a job": it took one just now
                    log.info("spare runner kept: it has taken a job")
                    return False
                raise
        if not task_arn:
            return False  # its launch is still under way: the cleanup stops it
        reason = f"spare runner: job {record['job_id']} ran on {record.get('served_by')}"
        retry.with_retries(
            lambda: svc.ecs.stop_task(
                cluster=svc.settings.cluster_name,
                task=task_arn,
                reason=f"{STOP_REASON_PREFIX}: {reason}"[:255],
            ),
            launcher.transient_delay,
            svc.deadline,
            max_attempts=3,
            what="ecs:StopTask",
        )
        svc.store.transition(
            int(record["job_id"]),
            "stopped",
            reason=reason,
            task_arn=task_arn,
            fields={"stopped_by": "spare"},
        )
        log.info("spare runner deregistered and stopped", reason=reason)
        return True
