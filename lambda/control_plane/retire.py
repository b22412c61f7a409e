"""Stopping a runner that waits for a job, never one that has just taken a job.

GitHub may give a waiting runner a job at any moment. So the runner is deregistered first:
GitHub refuses to remove a runner that is running a job (422) and shows it busy, and such a
runner is kept. Once deregistered, no job can reach it, and its task is stopped. Used for
spare runners (their job ran on another runner: displacement.py) and idle ones (the cleanup).
"""

from __future__ import annotations

from typing import Any

from control_plane import launcher, log, metrics, retry
from control_plane.cleanup.policy import STOP_REASON_PREFIX, WAITING
from control_plane.github import GitHubError
from control_plane.services import Services


def retire(svc: Services, record: dict[str, Any], reason: str, kind: str) -> bool:
    """Deregisters and stops the record's waiting runner; the record becomes `stopped` with
    `reason` and `stopped_by` `kind`. True if it was stopped; False if it has taken a job, is
    no longer waiting, or has no task yet (its launch is under way: the cleanup comes back)."""
    name, task_arn = record.get("runner_name"), record.get("task_arn")
    if record.get("status") not in WAITING or not name:
        return False
    with log.bound(retired_runner=name, task_arn=task_arn):
        registration = svc.github.find_runner(name)
        if registration and registration.get("busy"):
            log.info("runner kept: it has taken a job", kind=kind)
            return False
        if registration:
            try:
                svc.github.delete_runner(int(registration["id"]))
            except GitHubError as exc:
                if exc.status == 422:  # "still running a job": it took one just now
                    log.info("runner kept: it has taken a job", kind=kind)
                    return False
                raise
        if not task_arn:
            return False
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
        moved = svc.store.transition(
            int(record["job_id"]),
            "stopped",
            reason=reason,
            task_arn=task_arn,
            fields={"stopped_by": kind},
        )
        if moved and kind == "spare":  # counted once, by whoever stopped it first
            metrics.emit(svc.settings, "SpareRunnersStopped", 1, record.get("class_name"))
        log.info("runner deregistered and stopped", kind=kind, reason=reason)
        return True
