"""A job's times and cost: recorded once on its state record, and published as metrics.

| measurement        | from                                   | when                         |
|--------------------|----------------------------------------|------------------------------|
| queue_wait_seconds | GitHub created_at → started_at         | the job's `in_progress`      |
| job_seconds        | GitHub started_at → completed_at       | the job's `completed`        |
| start_seconds      | ECS createdAt (RunTask) → startedAt    | the task's RUNNING           |
| billed_seconds, cost_usd | cost.py: pull start → stop, prices | the task's STOPPED        |

(cost_usd only for Fargate tasks: EC2 bills the instance.)

Each write is conditional (the attribute not set yet; for a bill, the task not billed yet), and
the metric follows only a write that happened: a repeated event neither measures nor counts
twice. A measurement that fails is logged and never fails the event.
"""

from __future__ import annotations

from typing import Any

from control_plane import cost, log, metrics, retry
from control_plane.services import Services
from control_plane.times import seconds_between
from control_plane.workflow_job import WorkflowJob

METRIC_OF = {
    "queue_wait_seconds": "QueueWaitSeconds",
    "job_seconds": "JobSeconds",
    "start_seconds": "StartSeconds",
}


def _record_once(
    svc: Services, job_id: int, name: str, value: float | None, task_arn: str | None = None
) -> None:
    if value is None:
        return
    try:
        record = svc.store.annotate(job_id, {name: value}, task_arn=task_arn, unless_set=name)
    except Exception as exc:
        log.warning("measurement not recorded", measurement=name, error=retry.describe(exc))
        return
    if record is not None:
        metrics.emit(svc.settings, METRIC_OF[name], value, record.get("class_name"))


def job_started(job: WorkflowJob, svc: Services) -> None:
    """A runner of this fleet took `job`: how long it waited in GitHub's queue."""
    _record_once(
        svc, job.job_id, "queue_wait_seconds", seconds_between(job.created_at, job.started_at)
    )


def job_completed(job: WorkflowJob, svc: Services) -> None:
    """A runner of this fleet finished `job`: how long it ran."""
    _record_once(svc, job.job_id, "job_seconds", seconds_between(job.started_at, job.completed_at))


def task_running(detail: dict[str, Any], svc: Services, job_id: int) -> None:
    """The job's task runs: how long Fargate took to provision it and pull its image."""
    start = seconds_between(detail.get("createdAt"), detail.get("startedAt"))
    _record_once(svc, job_id, "start_seconds", start, task_arn=detail.get("taskArn"))


def task_stopped(detail: dict[str, Any], svc: Services, record: dict[str, Any] | None) -> None:
    """The task of the job `record` stopped: what it cost, added to the job's total once."""
    if record is None:
        return
    task_arn = str(detail.get("taskArn") or "")
    try:
        bill = cost.bill(detail, record, svc.settings.fargate_prices)
        billed = svc.store.add_bill(int(record["job_id"]), task_arn, bill.fields())
    except Exception as exc:
        log.warning("cost not recorded", error=retry.describe(exc))
        return
    if billed is not None:
        log.info("task billed", billed_seconds=bill.billed_seconds, cost_usd=bill.cost_usd)
        # a task that never pulled its image costs nothing; an EC2 one has no cost of its own
        if bill.billed_seconds and bill.cost_usd is not None:
            cost_usd = round(bill.cost_usd, 9)
            metrics.emit(svc.settings, "JobCostUSD", cost_usd, record.get("class_name"))
